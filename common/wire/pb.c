/*
 * pb.c - the protobuf form of the envelopes (schemas/kascade.proto,
 * protobuf-c).
 *
 * Decoding unpacks with the default allocator, then copies into the
 * in-memory structs with the same refusals as JSON: unknown field numbers
 * (kept by protobuf-c as unknown fields), bad enum strings, out-of-range
 * numbers, too many entries, NUL bytes in strings (found in the raw bytes:
 * protobuf-c's C strings would cut them); decode.c then runs the shared
 * checks. The
 * output_schema string must hold a JSON object and is stored compact, as
 * JSON decoding stores it. Absent optional fields keep the "unset" markers.
 *
 * Encoding points the generated structs at the caller's strings (nothing
 * is copied but the entry arrays) and packs into one malloc'd buffer.
 */
#include "wire/codec.h"
/* the module header stays first: it must stand alone */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "base/util.h"
#include "kascade.pb-c.h"
#include "wire/codec_internal.h"

#include "base/banned.h"

/* ---- decoding helpers ---- */

/* Refuses a message carrying field numbers the schema does not know. */
static enum ks_err pb_unknown(const ProtobufCMessage *msg,
                              const char *prefix,
                              struct ks_codec_error *cerr)
{
    char name[24], path[CODEC_PATH_MAX];

    if (msg->n_unknown_fields == 0) {
        return KS_OK;
    }
    snprintf(name, sizeof(name), "#%u", (unsigned)msg->unknown_fields[0].tag);
    return codec_invalid(cerr, codec_path(path, sizeof(path), prefix, name),
                         "unknown");
}

/* Reads a varint at *p (before end); returns false when it runs out. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;

        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            return true;
        }
    }
    return false;
}

/* Does a string field of the message in buf (of type desc, nested
 * messages followed to PB_NUL_DEPTH) hold a NUL byte? protobuf-c hands
 * strings out as C strings, so "b\0evil" would silently be read as "b";
 * JSON refuses the same. Run on bytes protobuf-c has already unpacked, so
 * malformed input only ends the walk. */
#define PB_NUL_DEPTH 8
static bool pb_has_nul(const uint8_t *buf,
                       size_t len,
                       const ProtobufCMessageDescriptor *desc,
                       int depth)
{
    const uint8_t *p = buf, *end = buf + len;
    const ProtobufCFieldDescriptor *fd;
    uint64_t key, n;

    while (p < end && pb_varint(&p, end, &key)) {
        switch (key & 7) {
        case 0:
            if (!pb_varint(&p, end, &n)) {
                return false;
            }
            continue;
        case 1:
        case 5:
            n = (key & 7) == 1 ? 8 : 4;
            break;
        case 2:
            if (!pb_varint(&p, end, &n) || n > (uint64_t)(end - p)) {
                return false;
            }
            fd = protobuf_c_message_descriptor_get_field(desc,
                                                         (unsigned)(key >> 3));
            if (fd && fd->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, n)) {
                return true;
            }
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                depth < PB_NUL_DEPTH &&
                pb_has_nul(p, n, fd->descriptor, depth + 1)) {
                return true;
            }
            break;
        default:
            return false; /* groups: protobuf-c refused them already */
        }
        if (n > (uint64_t)(end - p)) {
            return false;
        }
        p += n;
    }
    return false;
}

/* Unpacked msg of buf: refused when a string in it holds a NUL byte. */
static enum ks_err pb_check_nul(const uint8_t *buf,
                                size_t len,
                                const ProtobufCMessageDescriptor *desc,
                                struct ks_codec_error *cerr)
{
    if (pb_has_nul(buf, len, desc, 0)) {
        return codec_invalid(cerr, NULL, "a string holds a NUL byte (\\u0000)");
    }
    return KS_OK;
}

static char *pb_dup(const char *s)
{
    return s ? ks_xstrdup(s) : NULL;
}

/* A counter (tokens, latency): uint64 on the wire, int64 in memory. */
static enum ks_err pb_count(const char *field,
                            uint64_t v,
                            int64_t *out,
                            struct ks_codec_error *cerr)
{
    if (v > (uint64_t)CODEC_MAX_COUNT) {
        return codec_bad_integer(field, CODEC_MAX_COUNT, cerr);
    }
    *out = (int64_t)v;
    return KS_OK;
}

/* One map entry; protobuf map semantics: a missing key or value is "". */
static enum ks_err pb_kv(const ProtobufCMessage *entry,
                         const char *key,
                         const char *value,
                         struct ks_kv *kv,
                         struct ks_codec_error *cerr)
{
    kv->key = ks_xstrdup(key ? key : "");
    kv->value = ks_xstrdup(value ? value : "");
    return pb_unknown(entry, "metadata", cerr);
}

/* ---- Task ---- */

static enum ks_err pb_messages(const Kascade__Task *pt,
                               const struct ks_codec_limits *lim,
                               struct ks_task *task,
                               struct ks_codec_error *cerr)
{
    char prefix[CODEC_PATH_MAX];
    const Kascade__ChatMessage *pm;
    size_t n = pt->n_messages;
    enum ks_err err;

    err = codec_check_count("messages", n, lim->max_messages, cerr);
    if (err != KS_OK || n == 0) {
        return err;
    }
    task->messages = ks_xcalloc(n, sizeof(*task->messages));
    task->n_messages = n;
    for (size_t i = 0; i < n; i++) {
        pm = pt->messages[i];
        task->messages[i].role = pb_dup(pm->role);
        task->messages[i].content = pb_dup(pm->content);
        snprintf(prefix, sizeof(prefix), "messages[%zu]", i);
        err = pb_unknown(&pm->base, prefix, cerr);
        if (err != KS_OK) {
            return err;
        }
    }
    return KS_OK;
}

static enum ks_err pb_hints(const Kascade__Hints *ph,
                            struct ks_hints *hints,
                            struct ks_codec_error *cerr)
{
    enum ks_err err;

    if (!ph) {
        return KS_OK;
    }
    hints->min_tier = pb_dup(ph->min_tier);
    hints->max_tier = pb_dup(ph->max_tier);
    hints->local_only = ph->has_local_only && ph->local_only;
    err = pb_unknown(&ph->base, "hints", cerr);
    if (err == KS_OK) {
        err = codec_parse_risk(ph->risk, &hints->risk, cerr);
    }
    if (err == KS_OK) {
        err = codec_parse_latency(ph->latency, &hints->latency, cerr);
    }
    if (err == KS_OK && ph->has_max_cost_usd) {
        err = codec_money("hints.max_cost_usd", ph->max_cost_usd,
                          &hints->max_cost_micro, cerr);
    }
    if (err == KS_OK && ph->has_max_output_tokens) {
        if (ph->max_output_tokens > CODEC_MAX_OUTPUT_TOKENS) {
            return codec_bad_integer("hints.max_output_tokens",
                                     CODEC_MAX_OUTPUT_TOKENS, cerr);
        }
        hints->max_output_tokens = ph->max_output_tokens;
    }
    return err;
}

static enum ks_err pb_task_metadata(const Kascade__Task *pt,
                                    const struct ks_codec_limits *lim,
                                    struct ks_task *task,
                                    struct ks_codec_error *cerr)
{
    const Kascade__Task__MetadataEntry *pe;
    size_t n = pt->n_metadata;
    enum ks_err err;

    err = codec_check_count("metadata", n, lim->max_metadata, cerr);
    if (err != KS_OK || n == 0) {
        return err;
    }
    task->metadata = ks_xcalloc(n, sizeof(*task->metadata));
    task->n_metadata = n;
    for (size_t i = 0; i < n && err == KS_OK; i++) {
        pe = pt->metadata[i];
        err = pb_kv(&pe->base, pe->key, pe->value, &task->metadata[i], cerr);
    }
    return err;
}

static enum ks_err pb_task_fill(const Kascade__Task *pt,
                                const struct ks_codec_limits *lim,
                                struct ks_task *task,
                                struct ks_codec_error *cerr)
{
    enum ks_err err;

    task->id = pb_dup(pt->id);
    task->type = pb_dup(pt->type);
    task->tenant = pb_dup(pt->tenant);
    task->input = pb_dup(pt->input);
    task->instructions = pb_dup(pt->instructions);
    task->reply_to = pb_dup(pt->reply_to);
    err = pb_unknown(&pt->base, "", cerr);
    if (err == KS_OK) {
        err = pb_messages(pt, lim, task, cerr);
    }
    /* The schema sits one level below the envelope, as it does in JSON. */
    if (err == KS_OK && pt->output_schema) {
        err = codec_json_schema_text(pt->output_schema, lim->max_depth - 1,
                                     &task->output_schema, cerr);
    }
    if (err == KS_OK) {
        err = pb_hints(pt->hints, &task->hints, cerr);
    }
    if (err == KS_OK) {
        err = pb_task_metadata(pt, lim, task, cerr);
    }
    return err;
}

enum ks_err codec_pb_task_decode(const uint8_t *buf,
                                 size_t len,
                                 const struct ks_codec_limits *lim,
                                 struct ks_task **taskp,
                                 struct ks_codec_error *cerr)
{
    Kascade__Task *pt;
    struct ks_task *task;
    enum ks_err err;

    *taskp = NULL;
    pt = kascade__task__unpack(NULL, len, buf);
    if (!pt) {
        return codec_undecodable(cerr, "not a protobuf Task");
    }
    task = codec_task_new();
    err = pb_check_nul(buf, len, &kascade__task__descriptor, cerr);
    if (err == KS_OK) {
        err = pb_task_fill(pt, lim, task, cerr);
    }
    kascade__task__free_unpacked(pt, NULL);
    if (err != KS_OK) {
        ks_task_destroy(task);
        return err;
    }
    *taskp = task;
    return KS_OK;
}

/* ---- Result ---- */

static enum ks_err pb_usage(const Kascade__Usage *pu,
                            struct ks_result *result,
                            struct ks_codec_error *cerr)
{
    enum ks_err err;

    if (!pu) {
        return KS_OK;
    }
    err = pb_unknown(&pu->base, "usage", cerr);
    if (err == KS_OK && pu->has_input_tokens) {
        err = pb_count("usage.input_tokens", pu->input_tokens,
                       &result->input_tokens, cerr);
    }
    if (err == KS_OK && pu->has_output_tokens) {
        err = pb_count("usage.output_tokens", pu->output_tokens,
                       &result->output_tokens, cerr);
    }
    return err;
}

static enum ks_err pb_attempt(const Kascade__Attempt *pa,
                              const char *prefix,
                              struct ks_attempt *a,
                              struct ks_codec_error *cerr)
{
    char field[CODEC_PATH_MAX];
    enum ks_err err;

    a->tier = pb_dup(pa->tier);
    a->model = pb_dup(pa->model);
    a->decision = pb_dup(pa->decision);
    a->reason = pb_dup(pa->reason);
    a->confidence = -1;
    err = pb_unknown(&pa->base, prefix, cerr);
    if (err == KS_OK && pa->has_confidence) {
        codec_path(field, sizeof(field), prefix, "confidence");
        err = codec_confidence(field, pa->confidence, &a->confidence, cerr);
    }
    if (err == KS_OK && pa->has_cost_usd) {
        codec_path(field, sizeof(field), prefix, "cost_usd");
        err = codec_money(field, pa->cost_usd, &a->cost_micro, cerr);
    }
    if (err == KS_OK && pa->has_latency_ms) {
        codec_path(field, sizeof(field), prefix, "latency_ms");
        err = pb_count(field, pa->latency_ms, &a->latency_ms, cerr);
    }
    return err;
}

static enum ks_err pb_path(const Kascade__Result *pr,
                           const struct ks_codec_limits *lim,
                           struct ks_result *result,
                           struct ks_codec_error *cerr)
{
    char prefix[CODEC_PATH_MAX];
    size_t n = pr->n_path;
    enum ks_err err;

    err = codec_check_count("path", n, lim->max_path, cerr);
    if (err != KS_OK || n == 0) {
        return err;
    }
    result->path = ks_xcalloc(n, sizeof(*result->path));
    result->n_path = n;
    for (size_t i = 0; i < n && err == KS_OK; i++) {
        snprintf(prefix, sizeof(prefix), "path[%zu]", i);
        err = pb_attempt(pr->path[i], prefix, &result->path[i], cerr);
    }
    return err;
}

static enum ks_err pb_result_metadata(const Kascade__Result *pr,
                                      const struct ks_codec_limits *lim,
                                      struct ks_result *result,
                                      struct ks_codec_error *cerr)
{
    const Kascade__Result__MetadataEntry *pe;
    size_t n = pr->n_metadata;
    enum ks_err err;

    err = codec_check_count("metadata", n, lim->max_metadata, cerr);
    if (err != KS_OK || n == 0) {
        return err;
    }
    result->metadata = ks_xcalloc(n, sizeof(*result->metadata));
    result->n_metadata = n;
    for (size_t i = 0; i < n && err == KS_OK; i++) {
        pe = pr->metadata[i];
        err = pb_kv(&pe->base, pe->key, pe->value, &result->metadata[i], cerr);
    }
    return err;
}

/* confidence_parts: protobuf map semantics, a missing value is 0. */
static enum ks_err pb_result_parts(const Kascade__Result *pr,
                                   struct ks_result *result,
                                   struct ks_codec_error *cerr)
{
    size_t n = pr->n_confidence_parts;
    enum ks_err err =
        codec_check_count("confidence_parts", n, KS_CONF_PARTS_MAX, cerr);

    if (err != KS_OK || n == 0) {
        return err;
    }
    result->confidence_parts = ks_xcalloc(n, sizeof(struct ks_conf_part));
    for (size_t i = 0; i < n; i++) {
        const Kascade__Result__ConfidencePartsEntry *pe =
            pr->confidence_parts[i];

        result->confidence_parts[i].source = ks_xstrdup(pe->key ? pe->key : "");
        result->confidence_parts[i].value = pe->has_value ? pe->value : 0;
        result->n_confidence_parts++;
        err = pb_unknown(&pe->base, "confidence_parts", cerr);
        if (err != KS_OK) {
            return err;
        }
    }
    return codec_parts_check(result, cerr);
}

static enum ks_err pb_result_fill(const Kascade__Result *pr,
                                  const struct ks_codec_limits *lim,
                                  struct ks_result *result,
                                  struct ks_codec_error *cerr)
{
    enum ks_err err;

    result->id = pb_dup(pr->id);
    result->type = pb_dup(pr->type);
    result->tenant = pb_dup(pr->tenant);
    result->output = pb_dup(pr->output);
    result->tier = pb_dup(pr->tier);
    result->model = pb_dup(pr->model);
    result->confidence_source = pb_dup(pr->confidence_source);
    result->error = pb_dup(pr->error);
    err = pb_unknown(&pr->base, "", cerr);
    if (err == KS_OK) {
        err = codec_parse_status_field(pr->status, &result->status, cerr);
    }
    if (err == KS_OK && pr->has_confidence) {
        err = codec_confidence("confidence", pr->confidence,
                               &result->confidence, cerr);
    }
    if (err == KS_OK && pr->has_cost_usd) {
        err = codec_money("cost_usd", pr->cost_usd, &result->cost_micro, cerr);
    }
    if (err == KS_OK) {
        err = pb_usage(pr->usage, result, cerr);
    }
    if (err == KS_OK && pr->has_latency_ms) {
        err = pb_count("latency_ms", pr->latency_ms, &result->latency_ms, cerr);
    }
    if (err == KS_OK) {
        err = pb_path(pr, lim, result, cerr);
    }
    if (err == KS_OK) {
        err = pb_result_metadata(pr, lim, result, cerr);
    }
    if (err == KS_OK) {
        err = pb_result_parts(pr, result, cerr);
    }
    return err;
}

enum ks_err codec_pb_result_decode(const uint8_t *buf,
                                   size_t len,
                                   const struct ks_codec_limits *lim,
                                   struct ks_result **resultp,
                                   struct ks_codec_error *cerr)
{
    Kascade__Result *pr;
    struct ks_result *result;
    enum ks_err err;

    *resultp = NULL;
    pr = kascade__result__unpack(NULL, len, buf);
    if (!pr) {
        return codec_undecodable(cerr, "not a protobuf Result");
    }
    result = ks_result_new();
    err = pb_check_nul(buf, len, &kascade__result__descriptor, cerr);
    if (err == KS_OK) {
        err = pb_result_fill(pr, lim, result, cerr);
    }
    kascade__result__free_unpacked(pr, NULL);
    if (err != KS_OK) {
        ks_result_destroy(result);
        return err;
    }
    *resultp = result;
    return KS_OK;
}

/* ---- Escalation ---- */

static enum ks_err pb_escalation_fill(const Kascade__Escalation *pe,
                                      struct ks_escalation *esc,
                                      struct ks_codec_error *cerr)
{
    enum ks_err err;

    esc->id = pb_dup(pe->id);
    esc->tenant = pb_dup(pe->tenant);
    esc->from_tier = pb_dup(pe->from_tier);
    esc->reason = pb_dup(pe->reason);
    esc->context_key = pb_dup(pe->context_key);
    esc->hop = pe->hop;
    err = pb_unknown(&pe->base, "", cerr);
    if (err == KS_OK && !pe->has_hop) {
        err = codec_invalid(cerr, "hop", "missing");
    }
    if (err == KS_OK && pe->has_confidence) {
        err = codec_confidence("confidence", pe->confidence, &esc->confidence,
                               cerr);
    }
    if (err == KS_OK && pe->has_cost_so_far_usd) {
        err = codec_money("cost_so_far_usd", pe->cost_so_far_usd,
                          &esc->cost_so_far_micro, cerr);
    }
    return err;
}

enum ks_err codec_pb_escalation_decode(const uint8_t *buf,
                                       size_t len,
                                       const struct ks_codec_limits *lim,
                                       struct ks_escalation **escp,
                                       struct ks_codec_error *cerr)
{
    Kascade__Escalation *pe;
    struct ks_escalation *esc;
    enum ks_err err;

    (void)lim; /* no lists or nested text in an escalation */
    *escp = NULL;
    pe = kascade__escalation__unpack(NULL, len, buf);
    if (!pe) {
        return codec_undecodable(cerr, "not a protobuf Escalation");
    }
    esc = codec_escalation_new();
    err = pb_check_nul(buf, len, &kascade__escalation__descriptor, cerr);
    if (err == KS_OK) {
        err = pb_escalation_fill(pe, esc, cerr);
    }
    kascade__escalation__free_unpacked(pe, NULL);
    if (err != KS_OK) {
        ks_escalation_destroy(esc);
        return err;
    }
    *escp = esc;
    return KS_OK;
}

/* ---- encoding ---- */

/* Packs msg into a new buffer (NUL-terminated for safety, not counted). */
static enum ks_err pb_finish(const ProtobufCMessage *msg,
                             char **bufp,
                             size_t *lenp)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len + 1);

    if (!buf) {
        return KS_ERR_NOMEM;
    }
    protobuf_c_message_pack(msg, buf);
    buf[len] = '\0';
    *bufp = (char *)buf;
    *lenp = len;
    return KS_OK;
}

static uint64_t pb_unsigned(int64_t v)
{
    return v < 0 ? 0 : (uint64_t)v;
}

static void pb_put_hints(Kascade__Hints *ph, const struct ks_hints *h)
{
    ph->min_tier = h->min_tier;
    ph->max_tier = h->max_tier;
    ph->has_local_only = h->local_only;
    ph->local_only = h->local_only;
    ph->risk = (char *)codec_risk_str(h->risk);
    ph->latency = (char *)codec_latency_str(h->latency);
    ph->has_max_cost_usd = h->max_cost_micro >= 0;
    ph->max_cost_usd = ks_micro_to_usd(h->max_cost_micro);
    ph->has_max_output_tokens = h->max_output_tokens > 0;
    ph->max_output_tokens = h->max_output_tokens;
}

enum ks_err codec_pb_task_encode(const struct ks_task *task,
                                 char **bufp,
                                 size_t *lenp)
{
    Kascade__Task pt = KASCADE__TASK__INIT;
    Kascade__Hints ph = KASCADE__HINTS__INIT;
    Kascade__ChatMessage *msgs = NULL, **msg_ptrs = NULL;
    Kascade__Task__MetadataEntry *kvs = NULL, **kv_ptrs = NULL;
    size_t n_msg = task->n_messages, n_kv = task->n_metadata;
    enum ks_err err;

    pt.id = task->id;
    pt.type = task->type;
    pt.tenant = task->tenant;
    pt.input = task->input;
    pt.instructions = task->instructions;
    pt.output_schema = task->output_schema;
    pt.reply_to = task->reply_to;
    pb_put_hints(&ph, &task->hints);
    pt.hints = &ph;
    if (n_msg > 0) {
        msgs = ks_xcalloc(n_msg, sizeof(*msgs));
        msg_ptrs = ks_xcalloc(n_msg, sizeof(*msg_ptrs));
    }
    for (size_t i = 0; i < n_msg; i++) {
        kascade__chat_message__init(&msgs[i]);
        msgs[i].role = task->messages[i].role;
        msgs[i].content = task->messages[i].content;
        msg_ptrs[i] = &msgs[i];
    }
    pt.n_messages = n_msg;
    pt.messages = msg_ptrs;
    if (n_kv > 0) {
        kvs = ks_xcalloc(n_kv, sizeof(*kvs));
        kv_ptrs = ks_xcalloc(n_kv, sizeof(*kv_ptrs));
    }
    for (size_t i = 0; i < n_kv; i++) {
        kascade__task__metadata_entry__init(&kvs[i]);
        kvs[i].key = task->metadata[i].key;
        kvs[i].value = task->metadata[i].value;
        kv_ptrs[i] = &kvs[i];
    }
    pt.n_metadata = n_kv;
    pt.metadata = kv_ptrs;
    err = pb_finish(&pt.base, bufp, lenp);
    free(kv_ptrs);
    free(kvs);
    free(msg_ptrs);
    free(msgs);
    return err;
}

static void pb_put_attempt(Kascade__Attempt *pa, const struct ks_attempt *a)
{
    kascade__attempt__init(pa);
    pa->tier = a->tier;
    pa->model = a->model;
    pa->has_confidence = a->confidence >= 0;
    pa->confidence = a->confidence;
    pa->decision = a->decision;
    pa->reason = a->reason;
    pa->has_cost_usd = 1;
    pa->cost_usd = ks_micro_to_usd(a->cost_micro);
    pa->has_latency_ms = 1;
    pa->latency_ms = pb_unsigned(a->latency_ms);
}

static void pb_put_result_scalars(Kascade__Result *pr,
                                  Kascade__Usage *pu,
                                  const struct ks_result *result)
{
    pr->id = result->id;
    pr->type = result->type;
    pr->tenant = result->tenant;
    pr->status = (char *)ks_status_str(result->status);
    pr->output = result->output;
    pr->tier = result->tier;
    pr->model = result->model;
    pr->has_confidence = result->confidence >= 0;
    pr->confidence = result->confidence;
    pr->confidence_source = result->confidence_source;
    pr->has_cost_usd = 1;
    pr->cost_usd = ks_micro_to_usd(result->cost_micro);
    pu->has_input_tokens = 1;
    pu->input_tokens = pb_unsigned(result->input_tokens);
    pu->has_output_tokens = 1;
    pu->output_tokens = pb_unsigned(result->output_tokens);
    pr->usage = pu;
    pr->has_latency_ms = 1;
    pr->latency_ms = pb_unsigned(result->latency_ms);
    pr->error = result->error;
}

enum ks_err codec_pb_result_encode(const struct ks_result *result,
                                   char **bufp,
                                   size_t *lenp)
{
    Kascade__Result pr = KASCADE__RESULT__INIT;
    Kascade__Usage pu = KASCADE__USAGE__INIT;
    Kascade__Attempt *atts = NULL, **att_ptrs = NULL;
    Kascade__Result__MetadataEntry *kvs = NULL, **kv_ptrs = NULL;
    Kascade__Result__ConfidencePartsEntry *parts = NULL, **part_ptrs = NULL;
    size_t n_att = result->n_path, n_kv = result->n_metadata;
    size_t n_parts = result->n_confidence_parts;
    enum ks_err err;

    pb_put_result_scalars(&pr, &pu, result);
    if (n_att > 0) {
        atts = ks_xcalloc(n_att, sizeof(*atts));
        att_ptrs = ks_xcalloc(n_att, sizeof(*att_ptrs));
    }
    for (size_t i = 0; i < n_att; i++) {
        pb_put_attempt(&atts[i], &result->path[i]);
        att_ptrs[i] = &atts[i];
    }
    pr.n_path = n_att;
    pr.path = att_ptrs;
    if (n_kv > 0) {
        kvs = ks_xcalloc(n_kv, sizeof(*kvs));
        kv_ptrs = ks_xcalloc(n_kv, sizeof(*kv_ptrs));
    }
    for (size_t i = 0; i < n_kv; i++) {
        kascade__result__metadata_entry__init(&kvs[i]);
        kvs[i].key = result->metadata[i].key;
        kvs[i].value = result->metadata[i].value;
        kv_ptrs[i] = &kvs[i];
    }
    pr.n_metadata = n_kv;
    pr.metadata = kv_ptrs;
    if (n_parts > 0) {
        parts = ks_xcalloc(n_parts, sizeof(*parts));
        part_ptrs = ks_xcalloc(n_parts, sizeof(*part_ptrs));
    }
    for (size_t i = 0; i < n_parts; i++) {
        kascade__result__confidence_parts_entry__init(&parts[i]);
        parts[i].key = result->confidence_parts[i].source;
        parts[i].has_value = 1;
        parts[i].value = result->confidence_parts[i].value;
        part_ptrs[i] = &parts[i];
    }
    pr.n_confidence_parts = n_parts;
    pr.confidence_parts = part_ptrs;
    err = pb_finish(&pr.base, bufp, lenp);
    free(part_ptrs);
    free(parts);
    free(kv_ptrs);
    free(kvs);
    free(att_ptrs);
    free(atts);
    return err;
}

enum ks_err codec_pb_escalation_encode(const struct ks_escalation *esc,
                                       char **bufp,
                                       size_t *lenp)
{
    Kascade__Escalation pe = KASCADE__ESCALATION__INIT;

    pe.id = esc->id;
    pe.tenant = esc->tenant;
    pe.from_tier = esc->from_tier;
    pe.has_hop = 1;
    pe.hop = esc->hop;
    pe.reason = esc->reason;
    pe.has_confidence = esc->confidence >= 0;
    pe.confidence = esc->confidence;
    pe.context_key = esc->context_key;
    pe.has_cost_so_far_usd = 1;
    pe.cost_so_far_usd = ks_micro_to_usd(esc->cost_so_far_micro);
    return pb_finish(&pe.base, bufp, lenp);
}
