/*
 * ctx.c - the escalation context: building it and its JSON document
 * (storing it in Redis: ctx_redis.c). The task inside is kept as the
 * codec's own Task JSON, so decoding the context applies the same strict
 * checks and caps as decoding a task from Kafka.
 */
#include "redis/ctx.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "wire/codec_internal.h"

#include "base/banned.h"

#define CTX_MAX_ATTEMPTS 64

/* ---- building ----------------------------------------------------------- */

static struct ks_task *task_copy(const struct ks_task *task,
                                 const struct ks_codec_limits *lim)
{
    struct ks_task *copy = NULL;
    struct ks_codec_error cerr;
    char *buf = NULL;
    size_t len = 0;

    if (ks_task_encode(KS_FORMAT_JSON, task, &buf, &len) == KS_OK) {
        ks_task_decode(KS_FORMAT_JSON, buf, len, lim, &copy, &cerr);
    }
    free(buf);
    return copy;
}

struct ks_ctx *ks_ctx_new(const struct ks_task *task,
                          enum ks_format fmt,
                          const struct ks_codec_limits *lim)
{
    struct ks_task *copy = task_copy(task, lim);
    struct ks_ctx *ctx;

    if (!copy) {
        return NULL;
    }
    ctx = ks_xcalloc(1, sizeof(*ctx));
    ctx->task = copy;
    ctx->fmt = fmt;
    return ctx;
}

static char *dup_or_null(const char *s)
{
    return s ? ks_xstrdup(s) : NULL;
}

static void attempt_fini(struct ks_ctx_attempt *a)
{
    free(a->tier);
    free(a->model);
    free(a->output);
    free(a->confidence_source);
    free(a->decision);
    free(a->reason);
}

void ks_ctx_destroy(struct ks_ctx *ctx)
{
    if (!ctx) {
        return;
    }
    for (size_t i = 0; i < ctx->n_attempts; i++) {
        attempt_fini(&ctx->attempts[i]);
    }
    free(ctx->attempts);
    ks_task_destroy(ctx->task);
    free(ctx);
}

void ks_ctx_add(struct ks_ctx *ctx, const struct ks_ctx_attempt *a)
{
    struct ks_ctx_attempt *slot = NULL;

    for (size_t i = 0; i < ctx->n_attempts; i++) {
        if (ctx->attempts[i].hop == a->hop) {
            slot = &ctx->attempts[i];
            ctx->cost_micro -= slot->cost_micro;
            attempt_fini(slot);
            break;
        }
    }
    if (!slot) {
        ctx->attempts = ks_xrealloc(ctx->attempts, (ctx->n_attempts + 1) *
                                                       sizeof(*ctx->attempts));
        slot = &ctx->attempts[ctx->n_attempts++];
    }
    *slot = *a;
    slot->tier = dup_or_null(a->tier);
    slot->model = dup_or_null(a->model);
    slot->output = dup_or_null(a->output);
    slot->confidence_source = dup_or_null(a->confidence_source);
    slot->decision = dup_or_null(a->decision);
    slot->reason = dup_or_null(a->reason);
    ctx->cost_micro += a->cost_micro;
}

int ks_ctx_best(const struct ks_ctx *ctx)
{
    int best = -1;

    for (size_t i = 0; i < ctx->n_attempts; i++) {
        const struct ks_ctx_attempt *a = &ctx->attempts[i];

        if (a->output &&
            (best < 0 || a->confidence >= ctx->attempts[best].confidence)) {
            best = (int)i;
        }
    }
    return best;
}

static void fill_path(struct ks_result *res, const struct ks_ctx *ctx)
{
    res->path =
        ks_xcalloc(ctx->n_attempts ? ctx->n_attempts : 1, sizeof(*res->path));
    res->n_path = ctx->n_attempts;
    for (size_t i = 0; i < ctx->n_attempts; i++) {
        const struct ks_ctx_attempt *a = &ctx->attempts[i];
        struct ks_attempt *p = &res->path[i];

        p->tier = dup_or_null(a->tier);
        p->model = dup_or_null(a->model);
        p->confidence = a->confidence;
        p->decision = dup_or_null(a->decision);
        p->reason = dup_or_null(a->reason);
        p->cost_micro = a->cost_micro;
        p->latency_ms = a->latency_ms;
        res->input_tokens += a->input_tokens;
        res->output_tokens += a->output_tokens;
        res->latency_ms += a->latency_ms;
    }
}

struct ks_result *ks_ctx_result(const struct ks_ctx *ctx,
                                int i,
                                enum ks_status status,
                                const char *error)
{
    struct ks_result *res = ks_result_new();
    const struct ks_task *task = ctx->task;

    res->id = ks_xstrdup(task->id);
    res->type = ks_xstrdup(task->type);
    res->tenant = dup_or_null(task->tenant);
    res->status = status;
    res->error = dup_or_null(error);
    res->cost_micro = ctx->cost_micro;
    if (i >= 0 && (size_t)i < ctx->n_attempts) {
        const struct ks_ctx_attempt *a = &ctx->attempts[i];

        res->output = dup_or_null(a->output);
        res->tier = dup_or_null(a->tier);
        res->model = dup_or_null(a->model);
        res->confidence = a->confidence;
        res->confidence_source = dup_or_null(a->confidence_source);
    }
    if (task->n_metadata > 0) {
        res->metadata = ks_xcalloc(task->n_metadata, sizeof(*res->metadata));
        for (size_t m = 0; m < task->n_metadata; m++) {
            res->metadata[m].key = ks_xstrdup(task->metadata[m].key);
            res->metadata[m].value = ks_xstrdup(task->metadata[m].value);
        }
        res->n_metadata = task->n_metadata;
    }
    fill_path(res, ctx);
    return res;
}

/* ---- the document ------------------------------------------------------- */

static cJSON *money(int64_t micro)
{
    char buf[CODEC_NUM_MAX];

    codec_money_text(micro, buf);
    return cJSON_CreateRaw(buf);
}

static void add_str(cJSON *o, const char *key, const char *v)
{
    cJSON_AddItemToObject(o, key,
                          v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

static cJSON *attempt_json(const struct ks_ctx_attempt *a)
{
    cJSON *o = cJSON_CreateObject();

    add_str(o, "tier", a->tier);
    add_str(o, "model", a->model);
    cJSON_AddNumberToObject(o, "hop", a->hop);
    add_str(o, "output", a->output);
    if (a->confidence >= 0) {
        cJSON_AddNumberToObject(o, "confidence", a->confidence);
    } else {
        cJSON_AddNullToObject(o, "confidence");
    }
    add_str(o, "confidence_source", a->confidence_source);
    add_str(o, "decision", a->decision);
    add_str(o, "reason", a->reason);
    cJSON_AddItemToObject(o, "cost_usd", money(a->cost_micro));
    cJSON_AddNumberToObject(o, "latency_ms", (double)a->latency_ms);
    cJSON_AddNumberToObject(o, "input_tokens", (double)a->input_tokens);
    cJSON_AddNumberToObject(o, "output_tokens", (double)a->output_tokens);
    return o;
}

enum ks_err ks_ctx_encode(const struct ks_ctx *ctx, char **bufp, size_t *lenp)
{
    cJSON *root = cJSON_CreateObject(), *arr, *task;
    char *tbuf = NULL;
    size_t tlen = 0;
    enum ks_err err = KS_ERR_NOMEM;

    *bufp = NULL;
    if (ks_task_encode(KS_FORMAT_JSON, ctx->task, &tbuf, &tlen) != KS_OK ||
        !(task = cJSON_ParseWithLength(tbuf, tlen))) {
        goto out;
    }
    cJSON_AddItemToObject(root, "task", task);
    add_str(root, "format",
            ctx->fmt == KS_FORMAT_PROTOBUF ? "protobuf" : "json");
    arr = cJSON_AddArrayToObject(root, "attempts");
    for (size_t i = 0; i < ctx->n_attempts; i++) {
        cJSON_AddItemToArray(arr, attempt_json(&ctx->attempts[i]));
    }
    cJSON_AddItemToObject(root, "cost_so_far_usd", money(ctx->cost_micro));
    if ((*bufp = cJSON_PrintUnformatted(root)) != NULL) {
        *lenp = strlen(*bufp);
        err = KS_OK;
    }
out:
    free(tbuf);
    cJSON_Delete(root);
    return err;
}

/* Field readers: each returns 0, or -1 with errstr naming the field. */

static int get_str(const cJSON *o,
                   const char *key,
                   size_t max,
                   char **out,
                   char *errstr,
                   size_t errstr_size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (!cJSON_IsString(v) || strlen(v->valuestring) > max) {
        snprintf(errstr, errstr_size,
                 "context: field '%s' must be a string of at most %zu bytes",
                 key, max);
        return -1;
    }
    *out = ks_xstrdup(v->valuestring);
    return 0;
}

static int get_num(const cJSON *o,
                   const char *key,
                   double lo,
                   double hi,
                   double dflt,
                   double *out,
                   char *errstr,
                   size_t errstr_size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = dflt;
    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(errstr, errstr_size,
                 "context: field '%s' must be a number in [%g, %g]", key, lo,
                 hi);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int attempt_parse(const cJSON *o,
                         const struct ks_codec_limits *lim,
                         struct ks_ctx_attempt *a,
                         char *errstr,
                         size_t errstr_size)
{
    double hop, cost, lat, in, out;

    if (!cJSON_IsObject(o)) {
        snprintf(errstr, errstr_size, "context: an attempt is not an object");
        return -1;
    }
    if (get_str(o, "tier", lim->max_id_bytes, &a->tier, errstr, errstr_size) ||
        get_str(o, "model", lim->max_id_bytes, &a->model, errstr,
                errstr_size) ||
        get_str(o, "output", lim->max_text_bytes, &a->output, errstr,
                errstr_size) ||
        get_str(o, "confidence_source", lim->max_id_bytes,
                &a->confidence_source, errstr, errstr_size) ||
        get_str(o, "decision", lim->max_id_bytes, &a->decision, errstr,
                errstr_size) ||
        get_str(o, "reason", lim->max_id_bytes, &a->reason, errstr,
                errstr_size) ||
        get_num(o, "hop", 0, 1000, 0, &hop, errstr, errstr_size) ||
        get_num(o, "confidence", 0, 1, -1, &a->confidence, errstr,
                errstr_size) ||
        get_num(o, "cost_usd", 0, 1e9, 0, &cost, errstr, errstr_size) ||
        get_num(o, "latency_ms", 0, 1e12, 0, &lat, errstr, errstr_size) ||
        get_num(o, "input_tokens", 0, 1e12, 0, &in, errstr, errstr_size) ||
        get_num(o, "output_tokens", 0, 1e12, 0, &out, errstr, errstr_size)) {
        return -1;
    }
    if (!a->tier) {
        snprintf(errstr, errstr_size, "context: an attempt has no 'tier'");
        return -1;
    }
    a->hop = (uint32_t)hop;
    a->cost_micro = ks_usd_to_micro(cost);
    a->latency_ms = (int64_t)lat;
    a->input_tokens = (int64_t)in;
    a->output_tokens = (int64_t)out;
    return 0;
}

static int task_parse(const cJSON *root,
                      const struct ks_codec_limits *lim,
                      struct ks_ctx *ctx,
                      char *errstr,
                      size_t errstr_size)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "task");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "format");
    struct ks_codec_error cerr = {0};
    char *text;
    int rc = -1;

    if (!cJSON_IsObject(t)) {
        snprintf(errstr, errstr_size, "context: field 'task' missing");
        return -1;
    }
    ctx->fmt = cJSON_IsString(f) && strcmp(f->valuestring, "protobuf") == 0
                   ? KS_FORMAT_PROTOBUF
                   : KS_FORMAT_JSON;
    text = cJSON_PrintUnformatted(t);
    if (text && ks_task_decode(KS_FORMAT_JSON, text, strlen(text), lim,
                               &ctx->task, &cerr) == KS_OK) {
        rc = 0;
    } else {
        snprintf(errstr, errstr_size, "context: task: %s",
                 text ? cerr.detail : "out of memory");
    }
    free(text);
    return rc;
}

enum ks_err ks_ctx_decode(const char *buf,
                          size_t len,
                          const struct ks_codec_limits *lim,
                          struct ks_ctx **ctxp,
                          char *errstr,
                          size_t errstr_size)
{
    cJSON *root = NULL;
    const cJSON *arr, *item;
    struct ks_ctx *ctx = NULL;
    enum ks_err err = KS_ERR_INVALID;

    *ctxp = NULL;
    if (len > lim->max_message_bytes * 2) {
        snprintf(errstr, errstr_size, "context: %zu bytes, over the cap", len);
        return KS_ERR_TOO_LARGE;
    }
    if (!(root = cJSON_ParseWithLength(buf, len)) || !cJSON_IsObject(root)) {
        snprintf(errstr, errstr_size, "context: not a JSON object");
        goto out;
    }
    ctx = ks_xcalloc(1, sizeof(*ctx));
    if (task_parse(root, lim, ctx, errstr, errstr_size) != 0) {
        goto out;
    }
    arr = cJSON_GetObjectItemCaseSensitive(root, "attempts");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > CTX_MAX_ATTEMPTS) {
        snprintf(errstr, errstr_size,
                 "context: field 'attempts' must be an array of at most %d",
                 CTX_MAX_ATTEMPTS);
        goto out;
    }
    cJSON_ArrayForEach(item, arr) {
        struct ks_ctx_attempt a = {0};

        if (attempt_parse(item, lim, &a, errstr, errstr_size) != 0) {
            attempt_fini(&a);
            goto out;
        }
        ks_ctx_add(ctx, &a);
        attempt_fini(&a);
    }
    *ctxp = ctx;
    ctx = NULL;
    err = KS_OK;
out:
    ks_ctx_destroy(ctx);
    cJSON_Delete(root);
    return err;
}
