/*
 * ctx_redis.c - the escalation context in Redis (ctx.h): its key, saving
 * and loading it, one at a time or as commands of a batch (store.h) that
 * the worker sends once per loop turn. The key is derived from the task's
 * tenant and id on both sides, never taken from a message, and a load
 * refuses a document that holds another task.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/ctx.h"

#include "base/banned.h"

/* One key part: ks_store_key_part into a new string (caller frees). */
static char *key_part(const char *s)
{
    size_t size = strlen(s) * 3 + 1; /* every byte may become %XX */
    char *out = ks_xmalloc(size);

    ks_store_key_part(s, out, size);
    return out;
}

char *ks_ctx_key(const struct ks_store *rs, const char *tenant, const char *id)
{
    char *t = key_part(tenant && *tenant ? tenant : KS_STORE_NO_TENANT);
    char *i = key_part(id);
    struct ks_buf b;

    ks_buf_init(&b);
    ks_buf_printf(&b, "%sctx:%s:%s", ks_store_prefix(rs), t, i);
    free(i);
    free(t);
    return ks_buf_take(&b);
}

enum ks_err ks_ctx_save(struct ks_store *rs, const struct ks_ctx *ctx)
{
    char *key, *buf = NULL;
    size_t len = 0;
    enum ks_err err = ks_ctx_encode(ctx, &buf, &len);

    if (err == KS_OK) {
        key = ks_ctx_key(rs, ctx->task->tenant, ctx->task->id);
        err = ks_store_set(rs, key, buf, len);
        free(key);
    }
    free(buf);
    return err;
}

static bool same_tenant(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Decodes the stored value buf (len bytes, NULL: no key) of key into
 * *ctxp and checks it holds task id of tenant. As ks_ctx_load. */
static enum ks_err ctx_from_value(const char *key,
                                  const char *buf,
                                  size_t len,
                                  const char *tenant,
                                  const char *id,
                                  const struct ks_codec_limits *lim,
                                  struct ks_ctx **ctxp,
                                  char *errstr,
                                  size_t errstr_size)
{
    enum ks_err err;

    if (!buf) {
        snprintf(errstr, errstr_size, "context %s: no such key (expired?)",
                 key);
        return KS_ERR_INVALID;
    }
    err = ks_ctx_decode(buf, len, lim, ctxp, errstr, errstr_size);
    if (err == KS_OK && (strcmp((*ctxp)->task->id, id) != 0 ||
                         !same_tenant((*ctxp)->task->tenant, tenant))) {
        /* Only a forged write puts another task under this key. */
        snprintf(errstr, errstr_size,
                 "context %s holds another task (its id or tenant differ)",
                 key);
        ks_ctx_destroy(*ctxp);
        *ctxp = NULL;
        err = KS_ERR_INVALID;
    }
    return err == KS_ERR_TOO_LARGE ? KS_ERR_INVALID : err;
}

enum ks_err ks_ctx_load(struct ks_store *rs,
                        const char *tenant,
                        const char *id,
                        const struct ks_codec_limits *lim,
                        struct ks_ctx **ctxp,
                        char *errstr,
                        size_t errstr_size)
{
    char *key = ks_ctx_key(rs, tenant, id), *buf = NULL;
    size_t len = 0;
    enum ks_err err = ks_store_get(rs, key, &buf, &len);

    *ctxp = NULL;
    if (err != KS_OK) {
        snprintf(errstr, errstr_size, "redis %s",
                 err == KS_ERR_RETRY ? "unreachable" : ks_store_last_error(rs));
    } else {
        err = ctx_from_value(key, buf, len, tenant, id, lim, ctxp, errstr,
                             errstr_size);
    }
    free(buf);
    free(key);
    return err;
}

void ks_ctx_load_add(const struct ks_store *rs,
                     struct ks_store_batch *b,
                     const char *tenant,
                     const char *id,
                     size_t *idx)
{
    char *key = ks_ctx_key(rs, tenant, id);
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, strlen(key)};

    *idx = ks_store_batch_add(b, 2, argv, lens);
    free(key);
}

enum ks_err ks_ctx_load_reply(const struct ks_store *rs,
                              const struct ks_store_batch *b,
                              size_t idx,
                              const char *tenant,
                              const char *id,
                              const struct ks_codec_limits *lim,
                              struct ks_ctx **ctxp,
                              char *errstr,
                              size_t errstr_size)
{
    const redisReply *r = ks_store_batch_reply(b, idx);
    char *key;
    enum ks_err err;

    *ctxp = NULL;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "redis %s", r ? r->str : "unreachable");
        return r ? KS_ERR_UPSTREAM : KS_ERR_RETRY;
    }
    key = ks_ctx_key(rs, tenant, id);
    if (r->type == REDIS_REPLY_STRING && r->len > ks_store_max_value(rs)) {
        snprintf(errstr, errstr_size, "context %s: %zu bytes, over the cap",
                 key, (size_t)r->len);
        err = KS_ERR_INVALID;
    } else {
        err = ctx_from_value(key, r->type == REDIS_REPLY_STRING ? r->str : NULL,
                             r->type == REDIS_REPLY_STRING ? r->len : 0, tenant,
                             id, lim, ctxp, errstr, errstr_size);
    }
    free(key);
    return err;
}

enum ks_err ks_ctx_save_add(const struct ks_store *rs,
                            struct ks_store_batch *b,
                            const struct ks_ctx *ctx,
                            size_t *idx)
{
    char *key, *buf = NULL, ttl[32];
    size_t len = 0;
    enum ks_err err = ks_ctx_encode(ctx, &buf, &len);

    if (err == KS_OK) {
        key = ks_ctx_key(rs, ctx->task->tenant, ctx->task->id);
        snprintf(ttl, sizeof(ttl), "%" PRId64, ks_store_ttl_s(rs));
        *idx = ks_store_batch_add(
            b, 5, (const char *[]){"SET", key, buf, "EX", ttl},
            (const size_t[]){3, strlen(key), len, 2, strlen(ttl)});
        free(key);
    }
    free(buf);
    return err;
}

enum ks_err ks_ctx_save_reply(const struct ks_store_batch *b, size_t idx)
{
    const redisReply *r = ks_store_batch_reply(b, idx);

    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        ks_log_warn("store", "SET context: %s", r->str);
        return KS_ERR_UPSTREAM;
    }
    return KS_OK;
}
