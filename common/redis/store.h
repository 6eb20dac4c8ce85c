/*
 * store.h - the Redis store (docs/design.md section 7): one connection,
 * capped GET/SET, pipelines and the Lua script runner. Done records
 * (done.h), budgets, rate limits and escalation context build on it.
 *
 * One blocking hiredis connection with timeouts; a command that fails on
 * the connection drops it and the next command reconnects (after a short
 * backoff), so a Redis restart heals by itself. Not thread-safe: one owner
 * thread per store.
 */
#ifndef KASCADE_COMMON_REDIS_STORE_H
#define KASCADE_COMMON_REDIS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "base/err.h"
#include "config/config.h"

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

/* A pump: run while the store waits for a reply, every few milliseconds
 * of Redis's silence (DEBUG SLEEP, a fork, a slow script), so that the
 * caller's other I/O goes on: a worker drives its HTTP calls with it, so
 * a slow Redis does not stop calls in flight and time them out. It must
 * not use the store. ks_store_set_pump(rs, NULL, NULL) removes it. */
typedef void ks_store_pump_fn(void *arg);
void ks_store_set_pump(struct ks_store *rs, ks_store_pump_fn *pump, void *arg);

/* ks_store_pipeline in two halves, so that Redis works on the commands
 * while the caller does something else: send writes the n commands out
 * and returns at once; recv, later, reads their n replies (same n) into
 * replies[] (caller frees each). Any other call of the store in between
 * first reads the outstanding replies and keeps them for recv. One
 * deferred pipeline at a time: send again only after recv. Returns:
 * send KS_OK, KS_ERR_RETRY (Redis unreachable: nothing was sent) or
 * KS_ERR_INVALID (a pipeline still open: a bug); recv KS_OK, or
 * KS_ERR_RETRY with every reply NULL when the connection broke before
 * every reply came or Redis could not serve (LOADING...): the commands
 * may or may not have run, so only idempotent ones belong here. */
enum ks_err ks_store_pipeline_send(struct ks_store *rs,
                                   size_t n,
                                   const struct ks_store_cmd *cmds);
enum ks_err ks_store_pipeline_recv(struct ks_store *rs,
                                   size_t n,
                                   struct redisReply **replies);

/* A pipeline put together by several modules before it is sent: each
 * appends its commands (done records, escalation contexts, ...), one
 * ks_store_batch_run sends them all in one round trip, then each reads
 * its replies by the index its append returned. The arguments are copied.
 * Caller owns the batch; one thread at a time. */
struct ks_store_batch;

/* A new, empty batch (caller owns). */
struct ks_store_batch *ks_store_batch_new(void);

/* Accepts NULL. Frees the commands and the replies. */
void ks_store_batch_destroy(struct ks_store_batch *b);

/* Appends one command, argv form (copied). Returns its index. */
size_t ks_store_batch_add(struct ks_store_batch *b,
                          int argc,
                          const char *const *argv,
                          const size_t *argvlen);

/* Commands appended so far. */
size_t ks_store_batch_len(const struct ks_store_batch *b);

/* Sends every command in one round trip (ks_store_pipeline). Returns
 * KS_OK (the replies are read by ks_store_batch_reply), or KS_ERR_RETRY
 * when Redis is unreachable (every reply NULL). Runs once. */
enum ks_err ks_store_batch_run(struct ks_store *rs, struct ks_store_batch *b);

/* The reply to command i (borrowed, valid until the batch is destroyed;
 * an error reply is a reply), or NULL before a successful run. */
const struct redisReply *ks_store_batch_reply(const struct ks_store_batch *b,
                                              size_t i);

/* A Lua script run with EVALSHA. Its SHA1 comes from SCRIPT LOAD the first
 * time it is needed and is cached here for the process (a SHA1 depends only
 * on the text, so one cache serves every store and every server). Define
 * one per script with static storage and KS_STORE_SCRIPT_INIT; name and
 * text are borrowed and must outlive it (string literals). The cached sha
 * is read and written under lock, so one script may be run from many
 * threads, each with its own store. */
struct ks_store_script {
    const char *name; /* for log lines */
    const char *text; /* the Lua source */
    pthread_mutex_t lock;
    char sha[41]; /* "" until SCRIPT LOAD answered; under lock */
};

#define KS_STORE_SCRIPT_INIT(name, text)                                       \
    {                                                                          \
        (name), (text), PTHREAD_MUTEX_INITIALIZER, ""                          \
    }

/* Most keys plus arguments ks_store_script_run takes. */
#define KS_STORE_SCRIPT_ARGS_MAX 32

/* Runs sc with nkeys keys and nargs arguments (all borrowed, NUL-ended):
 * EVALSHA, loading the script first when its SHA1 is not known yet, and
 * on a NOSCRIPT reply (Redis restarted, SCRIPT FLUSH) EVAL with the text,
 * which loads it again. On KS_OK *replyp is the reply (caller frees it with
 * freeReplyObject(); never an error reply). Returns KS_ERR_INVALID when
 * nkeys + nargs is over KS_STORE_SCRIPT_ARGS_MAX, KS_ERR_RETRY when Redis
 * is unreachable, KS_ERR_UPSTREAM when Redis answered with an error (the
 * script failed, WRONGTYPE; logged): permanent for this call, never to be
 * read as "Redis down". *replyp is NULL then. */
enum ks_err ks_store_script_run(struct ks_store *rs,
                                struct ks_store_script *sc,
                                int nkeys,
                                const char *const *keys,
                                int nargs,
                                const char *const *args,
                                struct redisReply **replyp);

/* The SHA1 of sc into sha (NUL-ended), for callers that pipeline EVALSHA
 * themselves: the cached one, or loaded now. Returns KS_OK, or
 * KS_ERR_RETRY with sha "" when SCRIPT LOAD failed (logged). Such callers
 * handle a NOSCRIPT reply themselves, e.g. by ks_store_script_run.
 * KS_ERR_UPSTREAM instead when SCRIPT LOAD got an error reply. */
enum ks_err ks_store_script_sha(struct ks_store *rs,
                                struct ks_store_script *sc,
                                char sha[41]);

/* Writes "<host>-<pid>-<random>-<counter>" into id (size bytes, 64 is
 * enough): unique across the fleet, for reservation and member ids kept in
 * Redis. The host and pid tell processes apart, the random part a pid
 * reused after a restart (whose old ids may still be in Redis), the
 * counter calls. Thread-safe. */
void ks_store_unique_id(char *id, size_t size);

/* The cap on a value read back: twice limits.max_message_bytes. */
size_t ks_store_max_value(const struct ks_store *rs);

/* The TTL of values written by ks_store_set (redis.done_ttl_s). */
int64_t ks_store_ttl_s(const struct ks_store *rs);

/* Encodes s as one variable part of a key (a tenant, a tier, a task id):
 * bytes of [A-Za-z0-9._-] stay, any other becomes %XX, so no value can
 * hold the ':' that separates parts or the braces of a Redis Cluster hash
 * tag, and two different values never give the same part. Writes a
 * NUL-ended string into out and returns its length, or -1 when it does not
 * fit in size bytes (out is then ""). */
int ks_store_key_part(const char *s, char *out, size_t size);

/* The tenant part of a key (done records, escalation context) for a task
 * without a tenant. The tenant rule (wire/codec.h) keeps "-" from being a
 * tenant's name. */
#define KS_STORE_NO_TENANT "-"

/* The text of the last error reply this store got ("" when none yet), for
 * a DLQ detail after KS_ERR_UPSTREAM; borrowed, valid until the next
 * command on rs. */
const char *ks_store_last_error(const struct ks_store *rs);

/* Did the last ks_store_command or ks_store_pipeline reach the connection
 * without Redis refusing it ("cannot serve": LOADING, BUSY...)? When such
 * a call failed with no reply (a timeout, a broken connection) its
 * commands may still run in Redis; when it was never sent, or refused,
 * they will not. */
bool ks_store_sent(const struct ks_store *rs);

/* Writes url into buf (size bytes) without its credentials
 * ("redis://user:pw@host:6379" -> "redis://host:6379"), for messages. */
void ks_store_url_shown(const char *url, char *buf, size_t size);

/* The key prefix (redis.prefix, "kascade:"); borrowed, valid until
 * ks_store_destroy(). */
const char *ks_store_prefix(const struct ks_store *rs);

/* Returns KS_OK when Redis answers PING, KS_ERR_RETRY when it is down. */
enum ks_err ks_store_ping(struct ks_store *rs);

/* GET key: on KS_OK *valuep is a new copy the caller frees (NULL when the
 * key is missing or its value is over the cap) of *lenp bytes. Returns
 * KS_ERR_RETRY when Redis is unreachable, KS_ERR_UPSTREAM on an error
 * reply (WRONGTYPE). */
enum ks_err ks_store_get(struct ks_store *rs,
                         const char *key,
                         char **valuep,
                         size_t *lenp);

/* SET key with the done-record TTL (redis.done_ttl_s). Returns KS_OK,
 * KS_ERR_RETRY when Redis is unreachable or KS_ERR_UPSTREAM on an error
 * reply. */
enum ks_err ks_store_set(struct ks_store *rs,
                         const char *key,
                         const void *value,
                         size_t len);

#endif
