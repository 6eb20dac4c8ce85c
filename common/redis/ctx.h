/*
 * ctx.h - the escalation context kascade:ctx:<tenant>:<task id>
 * (docs/design.md sections 5 and 7): the original task and every attempt
 * made at it so far, so that a stronger tier sees the earlier answers, the
 * router can pick the best one when no tier is left, and the final Result
 * carries the whole path.
 *
 * Stored as one JSON document with the done-record TTL (redis.done_ttl_s):
 *   {"task": {Task JSON}, "format": "json"|"protobuf",
 *    "attempts": [{"tier", "model", "hop", "output", "confidence",
 *                  "confidence_source", "decision", "reason", "cost_usd",
 *                  "latency_ms", "input_tokens", "output_tokens"}],
 *    "cost_so_far_usd": N}
 * Money is decimal USD in the document, micro-dollars in memory. An
 * attempt is identified by its hop: adding one for a hop already present
 * replaces it, so a call redone after a crash is never counted twice.
 * Built and encoded in ctx.c, stored in Redis by ctx_redis.c. Objects
 * are owned by one thread; the functions keep no global state.
 */
#ifndef KASCADE_COMMON_REDIS_CTX_H
#define KASCADE_COMMON_REDIS_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "redis/store.h"
#include "wire/codec.h"

struct ks_ctx_attempt {
    char *tier;
    char *model;
    uint32_t hop;
    char *output;      /* NULL: the call gave no answer (provider failure) */
    double confidence; /* < 0: none */
    char *confidence_source; /* NULL: none */
    char *decision;          /* "answer", "escalate", "fail" */
    char *reason;            /* "ok", "low_confidence", "provider_failure" */
    int64_t cost_micro;
    int64_t latency_ms;
    int64_t input_tokens;
    int64_t output_tokens;
};

struct ks_ctx {
    struct ks_task *task; /* owned */
    enum ks_format fmt;   /* the task's wire format, for republishing */
    struct ks_ctx_attempt *attempts;
    size_t n_attempts;
    int64_t cost_micro; /* sum over attempts */
};

/* A new context for task (deep copy, caller owns), or NULL when the task
 * cannot be copied within lim. */
struct ks_ctx *ks_ctx_new(const struct ks_task *task,
                          enum ks_format fmt,
                          const struct ks_codec_limits *lim);

/* Accepts NULL. */
void ks_ctx_destroy(struct ks_ctx *ctx);

/* Adds a deep copy of a (replacing an attempt of the same hop) and keeps
 * ctx->cost_micro the sum. */
void ks_ctx_add(struct ks_ctx *ctx, const struct ks_ctx_attempt *a);

/* Index of the best attempt: the highest confidence among those with an
 * output (a later hop wins a tie), or -1 when none has an output. */
int ks_ctx_best(const struct ks_ctx *ctx);

/* A Result from attempt i with the whole path, the task's id, type,
 * tenant and metadata, the total cost, the summed usage and latency.
 * error may be NULL. Caller owns the result. */
struct ks_result *ks_ctx_result(const struct ks_ctx *ctx,
                                int i,
                                enum ks_status status,
                                const char *error);

/* JSON text of ctx (caller frees *bufp), KS_OK or KS_ERR_NOMEM. */
enum ks_err ks_ctx_encode(const struct ks_ctx *ctx, char **bufp, size_t *lenp);

/* Parses a stored context. Returns KS_OK with *ctxp (caller owns), or
 * KS_ERR_INVALID / KS_ERR_TOO_LARGE with the reason in errstr. */
enum ks_err ks_ctx_decode(const char *buf,
                          size_t len,
                          const struct ks_codec_limits *lim,
                          struct ks_ctx **ctxp,
                          char *errstr,
                          size_t errstr_size);


/* The key of the context of task id of tenant (NULL or "": none):
 * "<prefix>ctx:<tenant>:<id>", each part encoded by ks_store_key_part, so
 * no tenant or id can name another key. Derived on both sides (the worker
 * that saves, the router that loads), never taken from a message. Caller
 * frees the result. */
char *ks_ctx_key(const struct ks_store *rs, const char *tenant, const char *id);

/* Stores ctx under the key of its task's tenant and id. Returns KS_OK,
 * KS_ERR_RETRY (Redis unreachable) or KS_ERR_NOMEM. */
enum ks_err ks_ctx_save(struct ks_store *rs, const struct ks_ctx *ctx);

/* Loads the context of task id of tenant (tenant NULL or "": none).
 * Returns KS_OK with *ctxp (caller owns); KS_ERR_RETRY when Redis is
 * unreachable; KS_ERR_INVALID when the key is missing, the document is
 * corrupt, or it holds another task (its task's id or tenant differ from
 * id and tenant): errstr says which. */
enum ks_err ks_ctx_load(struct ks_store *rs,
                        const char *tenant,
                        const char *id,
                        const struct ks_codec_limits *lim,
                        struct ks_ctx **ctxp,
                        char *errstr,
                        size_t errstr_size);

/* The same load and save as commands of a batch (store.h), for a caller
 * that sends many in one round trip (the worker, once per loop turn).
 * ks_ctx_load_add appends the GET of the context of task id of tenant
 * to b and sets *idx; ks_ctx_load_reply reads it once b has run, with
 * ks_ctx_load's results (KS_ERR_RETRY: the batch did not run,
 * KS_ERR_UPSTREAM: an error reply). */
void ks_ctx_load_add(const struct ks_store *rs,
                     struct ks_store_batch *b,
                     const char *tenant,
                     const char *id,
                     size_t *idx);

enum ks_err ks_ctx_load_reply(const struct ks_store *rs,
                              const struct ks_store_batch *b,
                              size_t idx,
                              const char *tenant,
                              const char *id,
                              const struct ks_codec_limits *lim,
                              struct ks_ctx **ctxp,
                              char *errstr,
                              size_t errstr_size);

/* Appends the SET of ctx (with the done-record TTL) to b and sets *idx.
 * Returns KS_OK, or KS_ERR_NOMEM when ctx cannot be encoded (nothing
 * appended). */
enum ks_err ks_ctx_save_add(const struct ks_store *rs,
                            struct ks_store_batch *b,
                            const struct ks_ctx *ctx,
                            size_t *idx);

/* How that SET went once b has run: KS_OK, KS_ERR_RETRY (the batch did
 * not run) or KS_ERR_UPSTREAM (an error reply, logged). */
enum ks_err ks_ctx_save_reply(const struct ks_store_batch *b, size_t idx);

#endif
