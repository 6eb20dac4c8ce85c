/*
 * test_digest.c - the task digest of done records: 64 hex digits, the same
 * for the JSON and the protobuf encoding of one task and whatever its id,
 * reply_to and metadata; different when any field that affects the answer
 * differs, when a field is absent rather than empty, and when bytes move
 * from one field to the next.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/codec.h"
#include "wire/digest.h"

#include "base/banned.h"

/* The fields of the base task, one per entry. */
static const char *const base_fields[] = {
    "\"type\":\"answer\"",
    "\"tenant\":\"acme\"",
    "\"input\":\"hi\"",
    "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]",
    "\"instructions\":\"be brief\"",
    "\"output_schema\":{\"type\":\"object\"}",
    "\"hints\":{\"max_tier\":\"mid\",\"max_output_tokens\":64}",
};
#define N_FIELDS (sizeof(base_fields) / sizeof(base_fields[0]))

#define BASE                                                                   \
    "\"type\":\"answer\",\"tenant\":\"acme\",\"input\":\"hi\","                \
    "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"                    \
    "\"instructions\":\"be brief\",\"output_schema\":{\"type\":\"object\"},"   \
    "\"hints\":{\"max_tier\":\"mid\",\"max_output_tokens\":64}"

static struct ks_task *decode(enum ks_format fmt, const char *buf, size_t len)
{
    struct ks_codec_limits lim;
    struct ks_codec_error cerr = {0};
    struct ks_task *task = NULL;

    ks_codec_limits_default(&lim);
    if (ks_task_decode(fmt, buf, len, &lim, &task, &cerr) != KS_OK) {
        fail_msg("decode: %s", cerr.detail);
    }
    return task;
}

/* The digest of the JSON task json into hex. */
static void digest_of(const char *json, char hex[KS_TASK_DIGEST_SIZE])
{
    struct ks_task *task = decode(KS_FORMAT_JSON, json, strlen(json));

    assert_int_equal(ks_task_digest(task, hex), KS_OK);
    ks_task_destroy(task);
}

static void digest_is_64_hex_digits_and_stable(void **state)
{
    char a[KS_TASK_DIGEST_SIZE], b[KS_TASK_DIGEST_SIZE];

    (void)state;
    digest_of("{\"id\":\"t1\"," BASE "}", a);
    digest_of("{\"id\":\"t1\"," BASE "}", b);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_equal(a, b);
}

static void digest_is_the_same_for_json_and_protobuf(void **state)
{
    struct ks_task *task = decode(KS_FORMAT_JSON, "{\"id\":\"t1\"," BASE "}",
                                  strlen("{\"id\":\"t1\"," BASE "}"));
    struct ks_task *again;
    char a[KS_TASK_DIGEST_SIZE], b[KS_TASK_DIGEST_SIZE];
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(ks_task_encode(KS_FORMAT_PROTOBUF, task, &buf, &len),
                     KS_OK);
    again = decode(KS_FORMAT_PROTOBUF, buf, len);
    assert_int_equal(ks_task_digest(task, a), KS_OK);
    assert_int_equal(ks_task_digest(again, b), KS_OK);
    assert_string_equal(a, b);
    free(buf);
    ks_task_destroy(again);
    ks_task_destroy(task);
}

static void digest_ignores_id_reply_to_and_metadata(void **state)
{
    char a[KS_TASK_DIGEST_SIZE], b[KS_TASK_DIGEST_SIZE];

    (void)state;
    digest_of("{\"id\":\"t1\"," BASE "}", a);
    digest_of("{\"id\":\"other\",\"reply_to\":\"r\","
              "\"metadata\":{\"k\":\"v\"}," BASE "}",
              b);
    assert_string_equal(a, b);
}

/* The base task as JSON into json, with base field `field` replaced by
 * repl (field N_FIELDS: none). */
static void build_json(char *json, size_t size, size_t field, const char *repl)
{
    snprintf(json, size, "{\"id\":\"t1\"");
    for (size_t f = 0; f < N_FIELDS; f++) {
        size_t n = strlen(json);

        snprintf(json + n, size - n, ",%s", f == field ? repl : base_fields[f]);
    }
    strncat(json, "}", size - strlen(json) - 1);
}

/* Each variant replaces base field `field` with one that affects the
 * answer. */
static void digest_changes_with_each_field_that_affects_the_answer(void **state)
{
    static const struct {
        size_t field;
        const char *json;
    } variants[] = {
        {0, "\"type\":\"review\""},
        {1, "\"tenant\":\"globex\""},
        {2, "\"input\":\"hi!\""},
        {3, "\"messages\":[{\"role\":\"assistant\",\"content\":\"q\"}]"},
        {3, "\"messages\":[{\"role\":\"user\",\"content\":\"q2\"}]"},
        {4, "\"instructions\":\"be long\""},
        {5, "\"output_schema\":{\"type\":\"string\"}"},
        {6, "\"hints\":{\"max_tier\":\"frontier\",\"max_output_tokens\":64}"},
        {6, "\"hints\":{\"max_tier\":\"mid\",\"max_output_tokens\":65}"},
        {6, "\"hints\":{\"max_tier\":\"mid\",\"max_output_tokens\":64,"
            "\"local_only\":true}"},
    };
    char base[KS_TASK_DIGEST_SIZE], v[KS_TASK_DIGEST_SIZE], json[1024];

    (void)state;
    build_json(json, sizeof(json), N_FIELDS, NULL);
    digest_of(json, base);
    digest_of("{\"id\":\"t1\"," BASE "}", v);
    assert_string_equal(base, v);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        build_json(json, sizeof(json), variants[i].field, variants[i].json);
        digest_of(json, v);
        if (strcmp(base, v) == 0) {
            fail_msg("variant %zu (%s) has the base digest", i,
                     variants[i].json);
        }
    }
}

static void digest_tells_absent_from_empty_and_field_boundaries(void **state)
{
    char a[KS_TASK_DIGEST_SIZE], b[KS_TASK_DIGEST_SIZE];

    (void)state;
    digest_of("{\"id\":\"t\",\"type\":\"x\",\"input\":\"ab\","
              "\"instructions\":\"c\"}",
              a);
    digest_of("{\"id\":\"t\",\"type\":\"x\",\"input\":\"a\","
              "\"instructions\":\"bc\"}",
              b);
    assert_string_not_equal(a, b);
    digest_of("{\"id\":\"t\",\"type\":\"x\",\"input\":\"a\"}", a);
    digest_of("{\"id\":\"t\",\"type\":\"x\",\"input\":\"a\","
              "\"instructions\":\"\"}",
              b);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digest_is_64_hex_digits_and_stable),
        cmocka_unit_test(digest_is_the_same_for_json_and_protobuf),
        cmocka_unit_test(digest_ignores_id_reply_to_and_metadata),
        cmocka_unit_test(
            digest_changes_with_each_field_that_affects_the_answer),
        cmocka_unit_test(digest_tells_absent_from_empty_and_field_boundaries),
    };

    return cmocka_run_group_tests_name("digest", tests, NULL, NULL);
}
