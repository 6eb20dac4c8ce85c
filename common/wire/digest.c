/*
 * digest.c - SHA-256 (OpenSSL libcrypto, EVP) over a task's canonical form.
 *
 * The canonical form is a version string, then each field in a fixed
 * order as a one-byte field tag and, for a string, a presence byte and its
 * length (8 bytes, big-endian) before its bytes, so absent and empty
 * differ and no two field lists run together into the same bytes
 * ("ab" + "c" is not "a" + "bc"). Numbers are fixed-width big-endian.
 * Changing the form changes every digest: bump the version with it (a
 * done record of the old form then reads as a conflict, never as a match).
 */
#include "wire/digest.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/banned.h"

#define FORM_VERSION "kascade-task-digest-v1"

/* Field tags of the canonical form. */
enum {
    F_TYPE = 1,
    F_TENANT,
    F_INPUT,
    F_MESSAGES,
    F_INSTRUCTIONS,
    F_OUTPUT_SCHEMA,
    F_MIN_TIER,
    F_MAX_TIER,
    F_LOCAL_ONLY,
    F_RISK,
    F_LATENCY,
    F_MAX_COST,
    F_MAX_OUTPUT,
};

static void put_u64(EVP_MD_CTX *md, uint64_t v)
{
    unsigned char b[8];

    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    EVP_DigestUpdate(md, b, sizeof(b));
}

static void put_byte(EVP_MD_CTX *md, unsigned v)
{
    unsigned char b = (unsigned char)v;

    EVP_DigestUpdate(md, &b, 1);
}

/* A string: presence, then length and bytes. */
static void put_str(EVP_MD_CTX *md, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    put_byte(md, s != NULL);
    put_u64(md, n);
    if (n) {
        EVP_DigestUpdate(md, s, n);
    }
}

static void put_field_str(EVP_MD_CTX *md, unsigned tag, const char *s)
{
    put_byte(md, tag);
    put_str(md, s);
}

static void put_field_num(EVP_MD_CTX *md, unsigned tag, uint64_t v)
{
    put_byte(md, tag);
    put_u64(md, v);
}

static void put_task(EVP_MD_CTX *md, const struct ks_task *task)
{
    const struct ks_hints *h = &task->hints;

    EVP_DigestUpdate(md, FORM_VERSION, sizeof(FORM_VERSION));
    put_field_str(md, F_TYPE, task->type);
    put_field_str(md, F_TENANT, task->tenant);
    put_field_str(md, F_INPUT, task->input);
    put_field_num(md, F_MESSAGES, task->n_messages);
    for (size_t i = 0; i < task->n_messages; i++) {
        put_str(md, task->messages[i].role);
        put_str(md, task->messages[i].content);
    }
    put_field_str(md, F_INSTRUCTIONS, task->instructions);
    put_field_str(md, F_OUTPUT_SCHEMA, task->output_schema);
    /* Hints choose the tier, the model, the output cap or whether the
     * call runs at all: each can change the answer. */
    put_field_str(md, F_MIN_TIER, h->min_tier);
    put_field_str(md, F_MAX_TIER, h->max_tier);
    put_field_num(md, F_LOCAL_ONLY, h->local_only);
    put_field_num(md, F_RISK, (uint64_t)h->risk);
    put_field_num(md, F_LATENCY, (uint64_t)h->latency);
    put_field_num(md, F_MAX_COST, (uint64_t)h->max_cost_micro);
    put_field_num(md, F_MAX_OUTPUT, h->max_output_tokens);
}

enum ks_err ks_task_digest(const struct ks_task *task,
                           char hex[KS_TASK_DIGEST_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    enum ks_err err = KS_ERR_NOMEM;

    hex[0] = '\0';
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        goto out;
    }
    put_task(md, task);
    if (EVP_DigestFinal_ex(md, sum, &n) != 1 || n != 32) {
        goto out;
    }
    for (unsigned int i = 0; i < n; i++) {
        hex[2 * i] = digits[sum[i] >> 4];
        hex[2 * i + 1] = digits[sum[i] & 15];
    }
    hex[2 * n] = '\0';
    err = KS_OK;
out:
    EVP_MD_CTX_free(md);
    return err;
}
