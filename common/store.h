/*
 * store.h - the Redis store (DESIGN.md section 7): for now the `done`
 * records that let a redelivered task be answered without a second model
 * call. Budgets and escalation context build on the same connection.
 *
 * One blocking hiredis connection with timeouts; a command that fails on
 * the connection drops it and the next command reconnects (after a short
 * backoff), so a Redis restart heals by itself. Not thread-safe: one owner
 * thread per store.
 */
#ifndef KASCADE_COMMON_STORE_H
#define KASCADE_COMMON_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

struct ks_store;

/* Returns a new store the caller owns, or NULL with errstr when the URL is
 * malformed. Connects lazily: a Redis that is down is not an error here. */
struct ks_store *ks_store_new(const struct ks_config *cfg,
                              char *errstr,
                              size_t errstr_size);

/* Accepts NULL. */
void ks_store_destroy(struct ks_store *rs);

struct redisReply;

/* Runs one command, argv form (binary-safe). Returns the reply (caller
 * frees it with freeReplyObject()), or NULL when Redis is unreachable (the
 * connection is dropped and retried on a later call after a backoff). A
 * Redis error reply is returned as a reply of type REDIS_REPLY_ERROR. */
struct redisReply *ks_store_command(struct ks_store *rs,
                                    int argc,
                                    const char **argv,
                                    const size_t *argvlen);

/* One command of a pipeline, argv form; borrowed. */
struct ks_store_cmd {
    int argc;
    const char **argv;
    const size_t *argvlen;
};

/* Sends the n commands in one round trip and reads their n replies into
 * replies[] (caller frees each with freeReplyObject(); error replies are
 * replies). Returns KS_OK, or KS_ERR_RETRY with every reply NULL when
 * Redis is unreachable or the connection breaks half way. */
enum ks_err ks_store_pipeline(struct ks_store *rs,
                              size_t n,
                              const struct ks_store_cmd *cmds,
                              struct redisReply **replies);

/* ks_store_done_get for n records in one round trip: values[i] (caller
 * frees; NULL when there is none) of lens[i] bytes. Returns KS_OK, or
 * KS_ERR_RETRY (every value NULL). */
enum ks_err ks_store_done_get_many(struct ks_store *rs,
                                   size_t n,
                                   const char *const *ids,
                                   const uint32_t *hops,
                                   char **values,
                                   size_t *lens);

/* ks_store_done_put for n records in one round trip; errs[i] says how
 * each went (KS_OK or KS_ERR_RETRY). Returns KS_ERR_RETRY when Redis was
 * unreachable for the whole batch. */
enum ks_err ks_store_done_put_many(struct ks_store *rs,
                                   size_t n,
                                   const char *const *ids,
                                   const uint32_t *hops,
                                   const char *const *values,
                                   const size_t *lens,
                                   enum ks_err *errs);

/* The key prefix (redis.prefix, "kascade:"); borrowed, valid until
 * ks_store_destroy(). */
const char *ks_store_prefix(const struct ks_store *rs);

/* Returns KS_OK when Redis answers PING, KS_ERR_RETRY when it is down. */
enum ks_err ks_store_ping(struct ks_store *rs);

/* GET key: on KS_OK *valuep is a new copy the caller frees (NULL when the
 * key is missing or its value is over the cap) of *lenp bytes. Returns
 * KS_ERR_RETRY when Redis is unreachable. */
enum ks_err ks_store_get(struct ks_store *rs,
                         const char *key,
                         char **valuep,
                         size_t *lenp);

/* SET key with the done-record TTL (redis.done_ttl_s). Returns KS_OK or
 * KS_ERR_RETRY. */
enum ks_err ks_store_set(struct ks_store *rs,
                         const char *key,
                         const void *value,
                         size_t len);

/* Looks up kascade:done:<id>:<hop>. On KS_OK *valuep is a new copy the
 * caller frees (NULL when there is no record) of *lenp bytes. Returns
 * KS_ERR_RETRY when Redis is unreachable. */
enum ks_err ks_store_done_get(struct ks_store *rs,
                              const char *id,
                              uint32_t hop,
                              char **valuep,
                              size_t *lenp);

/* Stores the outcome of a finished call with the configured TTL. Returns
 * KS_OK or KS_ERR_RETRY. */
enum ks_err ks_store_done_put(struct ks_store *rs,
                              const char *id,
                              uint32_t hop,
                              const void *value,
                              size_t len);

#endif
