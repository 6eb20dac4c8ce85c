/*
 * codec.c - the format-independent basics of the envelope codec: limits,
 * format detection, error reporting, status and hint names, money and
 * number text, constructors and destructors, and the encode entry points.
 * The decode pipeline and the checks both formats share are in
 * decode.c; the formats in json*.c and pb.c.
 *
 * Invariants: money is integer micro-dollars in memory; "unset" is NULL for
 * strings and -1 for max_cost_micro and confidences. No global state.
 */
#include "wire/codec.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strings.h>

#include "base/util.h"
#include "wire/codec_internal.h"

#include "base/banned.h"

void ks_codec_limits_default(struct ks_codec_limits *lim)
{
    lim->max_message_bytes = 1024 * 1024;
    lim->max_id_bytes = 256;
    lim->max_text_bytes = 512 * 1024;
    lim->max_messages = 256;
    lim->max_metadata = 64;
    lim->max_path = 16;
    lim->max_depth = 32;
}

/* ---- error reporting ---- */

/* Appends s to buf (size bytes) holding *len bytes, truncating. */
static void append(char *buf, size_t size, size_t *len, const char *s)
{
    if (*len < size) {
        *len += ks_strlcpy(buf + *len, s, size - *len);
    }
}

void codec_error_clear(struct ks_codec_error *cerr)
{
    if (cerr) {
        cerr->code = NULL;
        cerr->detail[0] = '\0';
    }
}

static enum ks_err codec_vfail(struct ks_codec_error *cerr,
                               enum ks_err err,
                               const char *code,
                               const char *field,
                               const char *fmt,
                               va_list ap)
{
    size_t len = 0;

    if (!cerr) {
        return err;
    }
    cerr->code = code;
    cerr->detail[0] = '\0';
    if (field) {
        append(cerr->detail, sizeof(cerr->detail), &len, "field '");
        append(cerr->detail, sizeof(cerr->detail), &len, field);
        append(cerr->detail, sizeof(cerr->detail), &len, "': ");
    }
    /* Truncation is fine: detail is for humans. */
    if (len < sizeof(cerr->detail)) {
        vsnprintf(cerr->detail + len, sizeof(cerr->detail) - len, fmt, ap);
    }
    return err;
}

enum ks_err codec_undecodable(struct ks_codec_error *cerr, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    codec_vfail(cerr, KS_ERR_INVALID, "decode", NULL, fmt, ap);
    va_end(ap);
    return KS_ERR_INVALID;
}

enum ks_err codec_invalid(struct ks_codec_error *cerr,
                          const char *field,
                          const char *fmt,
                          ...)
{
    va_list ap;

    va_start(ap, fmt);
    codec_vfail(cerr, KS_ERR_INVALID, "invalid", field, fmt, ap);
    va_end(ap);
    return KS_ERR_INVALID;
}

enum ks_err codec_too_large(struct ks_codec_error *cerr,
                            const char *field,
                            const char *fmt,
                            ...)
{
    va_list ap;

    va_start(ap, fmt);
    codec_vfail(cerr, KS_ERR_TOO_LARGE, "too_large", field, fmt, ap);
    va_end(ap);
    return KS_ERR_TOO_LARGE;
}

enum ks_err codec_nomem(struct ks_codec_error *cerr)
{
    if (cerr) {
        cerr->code = "nomem";
        ks_strlcpy(cerr->detail, "out of memory", sizeof(cerr->detail));
    }
    return KS_ERR_NOMEM;
}

const char *codec_path(char *buf,
                       size_t size,
                       const char *prefix,
                       const char *name)
{
    size_t len = 0;

    buf[0] = '\0';
    if (*prefix != '\0') {
        append(buf, size, &len, prefix);
        append(buf, size, &len, ".");
    }
    append(buf, size, &len, name);
    return buf;
}

enum ks_err codec_check_count(const char *field,
                              size_t n,
                              size_t cap,
                              struct ks_codec_error *cerr)
{
    if (n > cap) {
        return codec_too_large(cerr, field, "%zu entries, cap %zu", n, cap);
    }
    return KS_OK;
}

/* ---- format detection ---- */

static bool is_protobuf_type(const char *ct)
{
    static const char want[] = "application/x-protobuf";

    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0) {
        return false;
    }
    ct += sizeof(want) - 1;
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    return *ct == '\0' || *ct == ';';
}

static bool is_json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum ks_err ks_codec_detect(const char *content_type,
                            const void *buf,
                            size_t len,
                            enum ks_format *fmt,
                            struct ks_codec_error *cerr)
{
    const unsigned char *p = buf;
    size_t i = 0;

    codec_error_clear(cerr);
    if (content_type && is_protobuf_type(content_type)) {
        *fmt = KS_FORMAT_PROTOBUF;
        return KS_OK;
    }
    while (i < len && is_json_space(p[i])) {
        i++;
    }
    if (i < len && p[i] == '{') {
        *fmt = KS_FORMAT_JSON;
        return KS_OK;
    }
    if (i == len) {
        return codec_undecodable(cerr, "empty message, not protobuf either");
    }
    return codec_undecodable(cerr,
                             "neither protobuf (by content-type) nor a JSON "
                             "object (first byte 0x%02x)",
                             p[i]);
}

/* ---- status names and parsed enums ---- */

static const char *const status_names[] = {
    [KS_STATUS_OK] = "ok",
    [KS_STATUS_LOW_CONFIDENCE] = "low_confidence",
    [KS_STATUS_FAILED] = "failed",
    [KS_STATUS_REJECTED] = "rejected",
    [KS_STATUS_BUDGET_EXCEEDED] = "budget_exceeded",
};
#define N_STATUS (sizeof(status_names) / sizeof(status_names[0]))

const char *ks_status_str(enum ks_status status)
{
    if ((size_t)status >= N_STATUS) {
        return "unknown";
    }
    return status_names[status];
}

int ks_status_parse(const char *s, enum ks_status *status)
{
    for (size_t i = 0; i < N_STATUS; i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *status = (enum ks_status)i;
            return 0;
        }
    }
    return -1;
}

enum ks_err codec_parse_status_field(const char *s,
                                     enum ks_status *status,
                                     struct ks_codec_error *cerr)
{
    if (!s) {
        return codec_invalid(cerr, "status", "missing");
    }
    if (ks_status_parse(s, status) != 0) {
        return codec_invalid(cerr, "status",
                             "must be one of ok, low_confidence, failed, "
                             "rejected, budget_exceeded");
    }
    return KS_OK;
}

enum ks_err codec_parse_risk(const char *s,
                             enum ks_risk *risk,
                             struct ks_codec_error *cerr)
{
    if (!s) {
        return KS_OK;
    }
    if (strcmp(s, "low") == 0) {
        *risk = KS_RISK_LOW;
    } else if (strcmp(s, "high") == 0) {
        *risk = KS_RISK_HIGH;
    } else {
        return codec_invalid(cerr, "hints.risk", "must be \"low\" or \"high\"");
    }
    return KS_OK;
}

enum ks_err codec_parse_latency(const char *s,
                                enum ks_latency *latency,
                                struct ks_codec_error *cerr)
{
    if (!s) {
        return KS_OK;
    }
    if (strcmp(s, "batch") == 0) {
        *latency = KS_LATENCY_BATCH;
    } else if (strcmp(s, "interactive") == 0) {
        *latency = KS_LATENCY_INTERACTIVE;
    } else {
        return codec_invalid(cerr, "hints.latency",
                             "must be \"batch\" or \"interactive\"");
    }
    return KS_OK;
}

const char *codec_risk_str(enum ks_risk risk)
{
    switch (risk) {
    case KS_RISK_LOW:
        return "low";
    case KS_RISK_HIGH:
        return "high";
    default:
        return NULL;
    }
}

const char *codec_latency_str(enum ks_latency latency)
{
    switch (latency) {
    case KS_LATENCY_BATCH:
        return "batch";
    case KS_LATENCY_INTERACTIVE:
        return "interactive";
    default:
        return NULL;
    }
}

/* ---- numbers ---- */

double ks_micro_to_usd(int64_t micro)
{
    return (double)micro / 1e6;
}

/* Rounds to the nearest micro-dollar; NaN gives 0 and amounts beyond the
 * int64 range saturate (decoders refuse both before they get here). */
int64_t ks_usd_to_micro(double usd)
{
    double micro = usd * 1e6;

    if (isnan(micro)) {
        return 0;
    }
    if (micro >= 9.2e18) {
        return INT64_MAX;
    }
    if (micro <= -9.2e18) {
        return INT64_MIN;
    }
    return llround(micro);
}

enum ks_err codec_money(const char *field,
                        double usd,
                        int64_t *micro,
                        struct ks_codec_error *cerr)
{
    if (!isfinite(usd)) {
        return codec_invalid(cerr, field, "must be a finite number");
    }
    if (usd < 0) {
        return codec_invalid(cerr, field, "must not be negative");
    }
    if (usd > CODEC_MAX_USD) {
        return codec_invalid(cerr, field, "must be at most 1e9 USD");
    }
    *micro = ks_usd_to_micro(usd);
    return KS_OK;
}

enum ks_err codec_confidence(const char *field,
                             double v,
                             double *out,
                             struct ks_codec_error *cerr)
{
    if (!isfinite(v) || v < 0 || v > 1) {
        return codec_invalid(cerr, field, "must be a number from 0 to 1");
    }
    *out = v;
    return KS_OK;
}

enum ks_err codec_bad_integer(const char *field,
                              int64_t max,
                              struct ks_codec_error *cerr)
{
    return codec_invalid(cerr, field, "must be an integer from 0 to %" PRId64,
                         max);
}

/* Built from integers so 12 micro-dollars is "0.000012", never
 * "1.2e-05" or "0.000011999999999999999". */
void codec_money_text(int64_t micro, char buf[CODEC_NUM_MAX])
{
    uint64_t mag = micro < 0 ? -(uint64_t)micro : (uint64_t)micro;
    uint64_t frac = mag % 1000000;
    size_t len;

    len = (size_t)snprintf(buf, CODEC_NUM_MAX, "%s%" PRIu64,
                           micro < 0 ? "-" : "", mag / 1000000);
    if (frac == 0) {
        return;
    }
    len +=
        (size_t)snprintf(buf + len, CODEC_NUM_MAX - len, ".%06" PRIu64, frac);
    while (buf[len - 1] == '0') {
        buf[--len] = '\0';
    }
}

/* cJSON prints doubles with an epsilon check that can lose the last bit
 * (0.1 + 0.2 comes out as "0.3"); we want exact round trips. Assumes the
 * C locale for LC_NUMERIC, as every kascade process runs. */
void codec_double_text(double v, char buf[CODEC_NUM_MAX])
{
    if (!isfinite(v)) {
        ks_strlcpy(buf, "null", CODEC_NUM_MAX);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, CODEC_NUM_MAX, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            return;
        }
    }
}

/* ---- constructors and destructors ---- */

struct ks_task *codec_task_new(void)
{
    struct ks_task *task = ks_xcalloc(1, sizeof(*task));

    task->hints.max_cost_micro = -1;
    return task;
}

struct ks_result *ks_result_new(void)
{
    struct ks_result *result = ks_xcalloc(1, sizeof(*result));

    result->confidence = -1;
    return result;
}

struct ks_escalation *codec_escalation_new(void)
{
    struct ks_escalation *esc = ks_xcalloc(1, sizeof(*esc));

    esc->confidence = -1;
    return esc;
}

static void kv_free(struct ks_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

/* Frees s unless it points into the task's strings block. */
static void task_str_free(const struct ks_task *task, char *s)
{
    if (s && task->strings && s >= task->strings &&
        s < task->strings + task->strings_len) {
        return;
    }
    free(s);
}

/* *s its own copy when it points into the task's strings block. */
static void task_str_own(const struct ks_task *task, char **s)
{
    if (*s && *s >= task->strings && *s < task->strings + task->strings_len) {
        *s = ks_xstrdup(*s);
    }
}

void codec_task_unlend(struct ks_task *task)
{
    char **fields[] = {&task->id,
                       &task->type,
                       &task->tenant,
                       &task->input,
                       &task->instructions,
                       &task->reply_to,
                       &task->hints.min_tier,
                       &task->hints.max_tier};

    if (!task->strings) {
        return;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        task_str_own(task, fields[i]);
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        task_str_own(task, &task->messages[i].role);
        task_str_own(task, &task->messages[i].content);
    }
    free(task->strings);
    task->strings = NULL;
    task->strings_len = 0;
}

void ks_task_destroy(struct ks_task *task)
{
    if (!task) {
        return;
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        task_str_free(task, task->messages[i].role);
        task_str_free(task, task->messages[i].content);
    }
    free(task->messages);
    kv_free(task->metadata, task->n_metadata);
    task_str_free(task, task->id);
    task_str_free(task, task->type);
    task_str_free(task, task->tenant);
    task_str_free(task, task->input);
    task_str_free(task, task->instructions);
    free(task->output_schema);
    task_str_free(task, task->hints.min_tier);
    task_str_free(task, task->hints.max_tier);
    task_str_free(task, task->reply_to);
    free(task->strings);
    free(task);
}

void codec_attempt_fini(struct ks_attempt *attempt)
{
    free(attempt->tier);
    free(attempt->model);
    free(attempt->decision);
    free(attempt->reason);
}

void ks_result_destroy(struct ks_result *result)
{
    if (!result) {
        return;
    }
    for (size_t i = 0; i < result->n_path; i++) {
        codec_attempt_fini(&result->path[i]);
    }
    free(result->path);
    kv_free(result->metadata, result->n_metadata);
    free(result->id);
    free(result->type);
    free(result->tenant);
    free(result->output);
    free(result->tier);
    free(result->model);
    free(result->confidence_source);
    codec_parts_free(result);
    free(result->error);
    free(result);
}

void ks_escalation_destroy(struct ks_escalation *esc)
{
    if (!esc) {
        return;
    }
    free(esc->id);
    free(esc->from_tier);
    free(esc->reason);
    free(esc->context_key);
    free(esc->tenant);
    free(esc);
}

/* ---- public encode (decode is in decode.c) ---- */

enum ks_err ks_task_encode(enum ks_format fmt,
                           const struct ks_task *task,
                           char **bufp,
                           size_t *lenp)
{
    *bufp = NULL;
    *lenp = 0;
    if (fmt == KS_FORMAT_PROTOBUF) {
        return codec_pb_task_encode(task, bufp, lenp);
    }
    return codec_json_task_encode(task, bufp, lenp);
}

enum ks_err ks_result_encode(enum ks_format fmt,
                             const struct ks_result *result,
                             char **bufp,
                             size_t *lenp)
{
    *bufp = NULL;
    *lenp = 0;
    if (fmt == KS_FORMAT_PROTOBUF) {
        return codec_pb_result_encode(result, bufp, lenp);
    }
    return codec_json_result_encode(result, bufp, lenp);
}

enum ks_err ks_escalation_encode(enum ks_format fmt,
                                 const struct ks_escalation *esc,
                                 char **bufp,
                                 size_t *lenp)
{
    *bufp = NULL;
    *lenp = 0;
    if (fmt == KS_FORMAT_PROTOBUF) {
        return codec_pb_escalation_encode(esc, bufp, lenp);
    }
    return codec_json_escalation_encode(esc, bufp, lenp);
}
