/*
 * decode.c - the decode pipeline of the envelope codec and the checks
 * both formats share.
 *
 * A decode checks the message size cap before anything looks at the bytes,
 * hands the bytes to the format decoder (json.c, pb.c), which
 * refuses wrong types, unknown fields, bad enum strings and out-of-range
 * numbers, then runs the format-independent checks here: required fields,
 * string caps, the tenant rule, chat roles, confidence sources, duplicate
 * metadata keys.
 *
 * Invariant: a struct handed out has passed its *_check function, so id
 * (and type, from_tier) are present and non-empty and every string is
 * within its cap. On error nothing is handed out and cerr says why.
 */
#include "wire/codec.h"
/* the module header stays first: it must stand alone */

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wire/codec_internal.h"

#include "base/banned.h"

/* ---- checks shared by both formats ---- */

enum str_need {
    STR_OPTIONAL = 0,
    STR_PRESENT,  /* may be empty */
    STR_NONEMPTY, /* required and non-empty */
};

/* One string field: its name under the rule table's prefix, its value
 * and its cap. */
struct str_rule {
    const char *name;
    const char *s;
    size_t cap;
    enum str_need need;
};

static enum ks_err check_strs(const char *prefix,
                              const struct str_rule *rules,
                              size_t n,
                              struct ks_codec_error *cerr)
{
    char field[CODEC_PATH_MAX];
    const struct str_rule *r;
    size_t len;

    for (size_t i = 0; i < n; i++) {
        r = &rules[i];
        if (!r->s) {
            if (r->need != STR_OPTIONAL) {
                return codec_invalid(
                    cerr, codec_path(field, sizeof(field), prefix, r->name),
                    "missing");
            }
            continue;
        }
        len = strlen(r->s);
        if (len == 0 && r->need == STR_NONEMPTY) {
            return codec_invalid(
                cerr, codec_path(field, sizeof(field), prefix, r->name),
                "must not be empty");
        }
        if (len > r->cap) {
            return codec_too_large(
                cerr, codec_path(field, sizeof(field), prefix, r->name),
                "%zu bytes, cap %zu", len, r->cap);
        }
    }
    return KS_OK;
}

/* The tenant rule (docs/design.md section 4): 1 to KS_TENANT_MAX bytes of
 * [A-Za-z0-9._-], a letter or digit first. A tenant is part of Redis keys
 * and (with per-tenant topics) of topic names: nothing in it may separate
 * key parts, and it can never be the "-" that stands for "no tenant" in a
 * key. Absent is fine; the id cap (too_large) is checked before. */
enum ks_err ks_tenant_check(const char *s, struct ks_codec_error *cerr)
{
    size_t len;

    if (!s) {
        return KS_OK;
    }
    len = strlen(s);
    if (len == 0) {
        return codec_invalid(cerr, "tenant", "must not be empty");
    }
    if (len > KS_TENANT_MAX) {
        return codec_invalid(cerr, "tenant", "%zu bytes, over %d", len,
                             KS_TENANT_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9');

        if (!alnum && c != '.' && c != '_' && c != '-') {
            return codec_invalid(cerr, "tenant",
                                 "byte 0x%02X at offset %zu is not one of "
                                 "[A-Za-z0-9._-]",
                                 c, i);
        }
        if (i == 0 && !alnum) {
            return codec_invalid(cerr, "tenant",
                                 "must start with a letter or digit");
        }
    }
    return KS_OK;
}

static enum ks_err check_metadata(const struct ks_kv *kv,
                                  size_t n,
                                  const struct ks_codec_limits *lim,
                                  struct ks_codec_error *cerr)
{
    char field[CODEC_PATH_MAX];
    size_t len;

    for (size_t i = 0; i < n; i++) {
        codec_path(field, sizeof(field), "metadata", kv[i].key);
        len = strlen(kv[i].key);
        if (len > lim->max_id_bytes) {
            return codec_too_large(cerr, "metadata",
                                   "key of %zu bytes, cap %zu", len,
                                   lim->max_id_bytes);
        }
        len = strlen(kv[i].value);
        if (len > lim->max_text_bytes) {
            return codec_too_large(cerr, field, "%zu bytes, cap %zu", len,
                                   lim->max_text_bytes);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(kv[j].key, kv[i].key) == 0) {
                return codec_invalid(cerr, field, "duplicate key");
            }
        }
    }
    return KS_OK;
}

static bool is_role(const char *s)
{
    return strcmp(s, "system") == 0 || strcmp(s, "user") == 0 ||
           strcmp(s, "assistant") == 0;
}

static enum ks_err check_messages(const struct ks_task *task,
                                  const struct ks_codec_limits *lim,
                                  struct ks_codec_error *cerr)
{
    char prefix[CODEC_PATH_MAX], field[CODEC_PATH_MAX];
    const struct ks_chat_message *msg;
    enum ks_err err;

    for (size_t i = 0; i < task->n_messages; i++) {
        msg = &task->messages[i];
        snprintf(prefix, sizeof(prefix), "messages[%zu]", i);
        const struct str_rule rules[] = {
            {"role", msg->role, lim->max_id_bytes, STR_PRESENT},
            {"content", msg->content, lim->max_text_bytes, STR_PRESENT},
        };
        err = check_strs(prefix, rules, 2, cerr);
        if (err != KS_OK) {
            return err;
        }
        if (!is_role(msg->role)) {
            return codec_invalid(
                cerr, codec_path(field, sizeof(field), prefix, "role"),
                "must be \"system\", \"user\" or \"assistant\"");
        }
    }
    return KS_OK;
}

static enum ks_err codec_task_check(const struct ks_task *task,
                                    const struct ks_codec_limits *lim,
                                    struct ks_codec_error *cerr)
{
    size_t id_cap = lim->max_id_bytes, text_cap = lim->max_text_bytes;
    const struct str_rule rules[] = {
        {"id", task->id, id_cap, STR_NONEMPTY},
        {"type", task->type, id_cap, STR_NONEMPTY},
        {"tenant", task->tenant, id_cap, STR_OPTIONAL},
        {"input", task->input, text_cap, STR_OPTIONAL},
        {"instructions", task->instructions, text_cap, STR_OPTIONAL},
        {"output_schema", task->output_schema, text_cap, STR_OPTIONAL},
        {"hints.min_tier", task->hints.min_tier, id_cap, STR_OPTIONAL},
        {"hints.max_tier", task->hints.max_tier, id_cap, STR_OPTIONAL},
        {"reply_to", task->reply_to, id_cap, STR_OPTIONAL},
    };
    enum ks_err err;

    err = check_strs("", rules, sizeof(rules) / sizeof(rules[0]), cerr);
    if (err == KS_OK) {
        err = ks_tenant_check(task->tenant, cerr);
    }
    if (err != KS_OK) {
        return err;
    }
    if (!task->input && task->n_messages == 0) {
        return codec_invalid(cerr, "input",
                             "missing (a task needs input or messages)");
    }
    err = check_messages(task, lim, cerr);
    if (err != KS_OK) {
        return err;
    }
    return check_metadata(task->metadata, task->n_metadata, lim, cerr);
}

static bool is_confidence_source(const char *s)
{
    return strcmp(s, "logprob") == 0 || strcmp(s, "self_report") == 0 ||
           strcmp(s, "classifier") == 0 || strcmp(s, "schema") == 0 ||
           strcmp(s, "verifier") == 0 || strcmp(s, "agreement") == 0 ||
           strcmp(s, "combined") == 0;
}

static enum ks_err check_path(const struct ks_result *result,
                              const struct ks_codec_limits *lim,
                              struct ks_codec_error *cerr)
{
    char prefix[CODEC_PATH_MAX];
    const struct ks_attempt *a;
    enum ks_err err;

    for (size_t i = 0; i < result->n_path; i++) {
        a = &result->path[i];
        snprintf(prefix, sizeof(prefix), "path[%zu]", i);
        const struct str_rule rules[] = {
            {"tier", a->tier, lim->max_id_bytes, STR_OPTIONAL},
            {"model", a->model, lim->max_id_bytes, STR_OPTIONAL},
            {"decision", a->decision, lim->max_id_bytes, STR_OPTIONAL},
            {"reason", a->reason, lim->max_text_bytes, STR_OPTIONAL},
        };
        err = check_strs(prefix, rules, sizeof(rules) / sizeof(rules[0]), cerr);
        if (err != KS_OK) {
            return err;
        }
    }
    return KS_OK;
}

static enum ks_err codec_result_check(const struct ks_result *result,
                                      const struct ks_codec_limits *lim,
                                      struct ks_codec_error *cerr)
{
    size_t id_cap = lim->max_id_bytes, text_cap = lim->max_text_bytes;
    const struct str_rule rules[] = {
        {"id", result->id, id_cap, STR_NONEMPTY},
        {"type", result->type, id_cap, STR_OPTIONAL},
        {"tenant", result->tenant, id_cap, STR_OPTIONAL},
        {"output", result->output, text_cap, STR_OPTIONAL},
        {"tier", result->tier, id_cap, STR_OPTIONAL},
        {"model", result->model, id_cap, STR_OPTIONAL},
        {"confidence_source", result->confidence_source, id_cap, STR_OPTIONAL},
        {"error", result->error, text_cap, STR_OPTIONAL},
    };
    enum ks_err err;

    err = check_strs("", rules, sizeof(rules) / sizeof(rules[0]), cerr);
    if (err == KS_OK) {
        err = ks_tenant_check(result->tenant, cerr);
    }
    if (err != KS_OK) {
        return err;
    }
    if (result->confidence_source &&
        !is_confidence_source(result->confidence_source)) {
        return codec_invalid(cerr, "confidence_source",
                             "must be one of logprob, self_report, "
                             "classifier, schema");
    }
    err = check_path(result, lim, cerr);
    if (err != KS_OK) {
        return err;
    }
    return check_metadata(result->metadata, result->n_metadata, lim, cerr);
}

static enum ks_err codec_escalation_check(const struct ks_escalation *esc,
                                          const struct ks_codec_limits *lim,
                                          struct ks_codec_error *cerr)
{
    const struct str_rule rules[] = {
        {"id", esc->id, lim->max_id_bytes, STR_NONEMPTY},
        {"tenant", esc->tenant, lim->max_id_bytes, STR_OPTIONAL},
        {"from_tier", esc->from_tier, lim->max_id_bytes, STR_NONEMPTY},
        {"reason", esc->reason, lim->max_text_bytes, STR_OPTIONAL},
        {"context_key", esc->context_key, lim->max_id_bytes, STR_OPTIONAL},
    };
    enum ks_err err;

    err = check_strs("", rules, sizeof(rules) / sizeof(rules[0]), cerr);
    return err == KS_OK ? ks_tenant_check(esc->tenant, cerr) : err;
}

/* ---- public decode ---- */

/* Common start of every decode: defaults for a NULL lim, a clean cerr and
 * the size cap, checked before anything looks at the bytes. */
static enum ks_err decode_start(size_t len,
                                const struct ks_codec_limits **lim,
                                struct ks_codec_limits *defaults,
                                struct ks_codec_error *cerr)
{
    codec_error_clear(cerr);
    if (!*lim) {
        ks_codec_limits_default(defaults);
        *lim = defaults;
    }
    if (len > (*lim)->max_message_bytes) {
        return codec_too_large(cerr, NULL, "message of %zu bytes, cap %zu", len,
                               (*lim)->max_message_bytes);
    }
    return KS_OK;
}

enum ks_err ks_task_decode(enum ks_format fmt,
                           const void *buf,
                           size_t len,
                           const struct ks_codec_limits *lim,
                           struct ks_task **taskp,
                           struct ks_codec_error *cerr)
{
    enum ks_err err = ks_task_decode_lent(fmt, buf, len, lim, taskp, cerr);

    if (err == KS_OK) {
        codec_task_unlend(*taskp);
    }
    return err;
}

enum ks_err ks_task_decode_lent(enum ks_format fmt,
                                const void *buf,
                                size_t len,
                                const struct ks_codec_limits *lim,
                                struct ks_task **taskp,
                                struct ks_codec_error *cerr)
{
    struct ks_codec_limits defaults;
    struct ks_task *task = NULL;
    enum ks_err err;

    *taskp = NULL;
    err = decode_start(len, &lim, &defaults, cerr);
    if (err != KS_OK) {
        return err;
    }
    if (fmt == KS_FORMAT_JSON) {
        err = codec_json_task_decode(buf, len, lim, &task, cerr);
    } else if (fmt == KS_FORMAT_PROTOBUF) {
        err = codec_pb_task_decode(buf, len, lim, &task, cerr);
    } else {
        err = codec_undecodable(cerr, "unknown format %d", (int)fmt);
    }
    if (err == KS_OK) {
        err = codec_task_check(task, lim, cerr);
    }
    if (err != KS_OK) {
        ks_task_destroy(task);
        return err;
    }
    *taskp = task;
    return KS_OK;
}

enum ks_err ks_result_decode(enum ks_format fmt,
                             const void *buf,
                             size_t len,
                             const struct ks_codec_limits *lim,
                             struct ks_result **resultp,
                             struct ks_codec_error *cerr)
{
    struct ks_codec_limits defaults;
    struct ks_result *result = NULL;
    enum ks_err err;

    *resultp = NULL;
    err = decode_start(len, &lim, &defaults, cerr);
    if (err != KS_OK) {
        return err;
    }
    if (fmt == KS_FORMAT_JSON) {
        err = codec_json_result_decode(buf, len, lim, &result, cerr);
    } else if (fmt == KS_FORMAT_PROTOBUF) {
        err = codec_pb_result_decode(buf, len, lim, &result, cerr);
    } else {
        err = codec_undecodable(cerr, "unknown format %d", (int)fmt);
    }
    if (err == KS_OK) {
        err = codec_result_check(result, lim, cerr);
    }
    if (err != KS_OK) {
        ks_result_destroy(result);
        return err;
    }
    *resultp = result;
    return KS_OK;
}

enum ks_err ks_escalation_decode(enum ks_format fmt,
                                 const void *buf,
                                 size_t len,
                                 const struct ks_codec_limits *lim,
                                 struct ks_escalation **escp,
                                 struct ks_codec_error *cerr)
{
    struct ks_codec_limits defaults;
    struct ks_escalation *esc = NULL;
    enum ks_err err;

    *escp = NULL;
    err = decode_start(len, &lim, &defaults, cerr);
    if (err != KS_OK) {
        return err;
    }
    if (fmt == KS_FORMAT_JSON) {
        err = codec_json_escalation_decode(buf, len, lim, &esc, cerr);
    } else if (fmt == KS_FORMAT_PROTOBUF) {
        err = codec_pb_escalation_decode(buf, len, lim, &esc, cerr);
    } else {
        err = codec_undecodable(cerr, "unknown format %d", (int)fmt);
    }
    if (err == KS_OK) {
        err = codec_escalation_check(esc, lim, cerr);
    }
    if (err != KS_OK) {
        ks_escalation_destroy(esc);
        return err;
    }
    *escp = esc;
    return KS_OK;
}
