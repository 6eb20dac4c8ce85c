/*
 * router_internal.h - the router's state, shared by router.c (the loop,
 * start-up, rebalance) and its parts: produce.c, task.c,
 * escalate.c, hold.c, world.c, txn.c and
 * reload.c. Everything here runs on the router's one thread.
 *
 * Ownership: a struct pending is created for each consumed message and
 * handed to exactly one place: a produced record (freed by its last
 * delivery report), a held record (freed when it is dropped), or freed at
 * once when a produce is refused.
 */
#ifndef KASCADE_ROUTER_ROUTER_INTERNAL_H
#define KASCADE_ROUTER_ROUTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "base/metrics.h"
#include "config/config.h"
#include "kafka/client.h"
#include "kafka/offsets.h"
#include "kafka/wake.h"
#include "redis/ctx.h"
#include "redis/store.h"
#include "route.h"
#include "router.h"
#include "wire/codec.h"

#define MISSING_MAX 64

/* A consumed message as the handlers see it: a view of the rkm, or the
 * copy a held record owns. */
struct src {
    const char *topic; /* borrowed from the offsets tracker */
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
    const rd_kafka_headers_t *hdrs; /* NULL when none */
};

/* What a produced record carries back in its delivery report. */
struct pending {
    struct ks_offset_ticket ticket;
    bool is_result; /* a Result: a missing reply_to topic falls back */
};

enum held_kind {
    HELD_TASK = 0,   /* task waits for a spent `defer` tier */
    HELD_ESCALATION, /* escalation waits (ctx NULL: Redis was down) */
};

struct held; /* hold.c */

struct router {
    struct ks_config *boot; /* start-up config: clients, store, topics */
    struct ks_config *cfg;  /* routing config (boot until a reload) */
    const struct ks_cmdline *cl;
    rd_kafka_t *rk_cons;
    rd_kafka_t *rk_prod;
    struct ks_offsets *offsets;
    struct ks_store *rs;
    struct ks_kafka_wake wake;
    rd_kafka_queue_t *rkqu_cons, *rkqu_prod; /* watched by wake */
    struct ks_metrics *metrics;
    struct ks_metric_family *m_routed, *m_dlq, *m_inflight, *m_escalations,
        *m_held, *m_results, *m_reloads;
    char tasks_topic[KS_TOPIC_MAX];
    char esc_topic[KS_TOPIC_MAX];
    char dlq_topic[KS_TOPIC_MAX];
    char results_topic[KS_TOPIC_MAX];
    char (*tier_topics)[KS_TOPIC_MAX]; /* cfg->n_tiers */
    size_t unacked;                    /* produced, not yet acknowledged */
    /* budget snapshot (world.c) */
    bool *tier_spent; /* cfg->n_tiers */
    bool budget_known;
    bool redis_down_logged;
    int64_t budget_read_ms; /* monotonic; 0: never */
    /* held records (hold.c) */
    struct held **held;
    size_t n_held, cap_held;
    bool paused;
    int64_t held_retry_ms; /* monotonic */
    /* transactions (router.transactions, txn.c) */
    bool txn;        /* on: offsets go into each batch's transaction */
    bool txn_open;   /* begun, not yet committed or aborted */
    bool txn_failed; /* a record of the open transaction was not delivered */
    rd_kafka_topic_partition_list_t *txn_offsets; /* positions to send */
    size_t n_kafka_user; /* boot->kafka entries from the user's config */
    /* reply_to topics found missing: their results go to results_topic
     * (in a transaction the failed record cannot be redirected, only
     * the retry after the abort) */
    char *missing_reply_to[MISSING_MAX];
    size_t n_missing;
    /* scorer */
    const struct router_scorer *scorer;
    void *model;
    bool no_scorer_logged;
};

/* router.c */

/* The format of s: its content-type header when it has one, else
 * sniffed from the payload (ks_codec_detect). Returns KS_OK with *fmt, or
 * an error with *cerr filled in for the DLQ. */
enum ks_err router_detect_format(const struct src *s,
                                 enum ks_format *fmt,
                                 struct ks_codec_error *cerr);

/* (Re)builds tier_topics and tier_spent for rt->cfg's tiers and makes the
 * next router_world() read the budgets again. */
void router_build_tiers(struct router *rt);

/* produce.c: records out and their delivery reports */

/* Produces one record (takes ownership of hdrs and p), opening the
 * batch's transaction first when transactions are on. On a refused
 * produce the ticket stays open (uncommitted: redelivered later) and p
 * is freed. */
void router_produce(struct router *rt,
                    const char *topic,
                    const void *key,
                    size_t key_len,
                    const void *value,
                    size_t len,
                    rd_kafka_headers_t *hdrs,
                    struct pending *p);

/* The producer's delivery report callback (opaque: the router): stores
 * the offset a delivered record completes, or produces a failed one
 * again (a missing reply_to falls back to the results topic). */
void router_on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque);

/* Sends s to the DLQ with the error code and detail headers (takes
 * ownership of p). */
void router_dead_letter(struct router *rt,
                        const struct src *s,
                        struct pending *p,
                        const char *code,
                        const char *detail);

/* The original headers (borrowed, may be NULL) without kascade's routing
 * ones, plus new ones for tier, hop and reason. Caller owns the result. */
rd_kafka_headers_t *router_routing_headers(const rd_kafka_headers_t *orig,
                                           const char *tier,
                                           uint32_t hop,
                                           const char *reason);

/* Publishes res (in fmt) to the task's reply_to or the results topic
 * (takes ownership of p; task and res borrowed). */
void router_publish_result(struct router *rt,
                           const struct ks_task *task,
                           enum ks_format fmt,
                           const struct ks_result *res,
                           const struct src *s,
                           struct pending *p);

/* world.c: budgets and the score */

/* Refreshes the per-tier budget flags when they are older than a second
 * and scores task (may be NULL: no score). Returns the state route_task()
 * takes (tier_spent NULL when unknown; borrowed until the next call). */
struct route_state router_world(struct router *rt, const struct ks_task *task);

/* task.c: tasks */

/* Decides task (taking ownership) and acts. Returns the task back when it
 * must be held (ROUTE_DEFER), else NULL (consumed, p handed on). */
struct ks_task *router_decide_task(struct router *rt,
                                   const struct src *s,
                                   struct pending *p,
                                   struct ks_task *task,
                                   enum ks_format fmt);

/* A message of the tasks topic: decoded, decided, or held (takes
 * ownership of p). */
void router_task_one(struct router *rt, const struct src *s, struct pending *p);

/* escalate.c: escalations */

/* Decides an escalation whose context is loaded. Takes ownership of esc
 * and ctx; returns true when they were kept for a later retry (held),
 * else p was handed on. */
bool router_decide_escalation(struct router *rt,
                              const struct src *s,
                              struct pending *p,
                              struct ks_escalation *esc,
                              struct ks_ctx *ctx);

/* Loads the context of esc. Returns KS_OK with *ctxp (caller owns),
 * KS_ERR_RETRY (Redis down: hold and retry), or KS_ERR_INVALID after
 * dead-lettering (p handed on). */
enum ks_err router_load_context(struct router *rt,
                                const struct src *s,
                                struct pending *p,
                                const struct ks_escalation *esc,
                                struct ks_ctx **ctxp);

/* A message of the escalations topic: decoded, its context loaded,
 * decided, or held (takes ownership of p). */
void router_escalation_one(struct router *rt,
                           const struct src *s,
                           struct pending *p);

/* hold.c: held records and the pause at router.max_deferred */

/* Keeps a copy of s with p's ticket open. Takes ownership of p, task,
 * esc and ctx (any of the last three may be NULL). */
void router_hold(struct router *rt,
                 enum held_kind kind,
                 const struct src *s,
                 struct pending *p,
                 struct ks_task *task,
                 enum ks_format fmt,
                 struct ks_escalation *esc,
                 struct ks_ctx *ctx);

/* Pauses or resumes the assigned partitions of the tasks topic. */
void router_set_paused(struct router *rt, bool pause);

/* Pauses at router.max_deferred held records, resumes at half. */
void router_update_pause(struct router *rt);

/* At most once a second: decides every held record again and frees the
 * ones that are done. */
void router_serve_held(struct router *rt);

/* Drops the held records of the partitions in parts (all when NULL):
 * their offsets stay uncommitted. */
void router_drop_held(struct router *rt,
                      const rd_kafka_topic_partition_list_t *parts);

/* txn.c: transactions (router.transactions) */

/* Logs e (when set) as the failure of what and destroys it; a fatal
 * error also requests a stop. Returns true when there was an error. */
bool router_txn_error(const char *what, rd_kafka_error_t *e);

/* Begins the batch's transaction unless one is open (no-op when
 * transactions are off). */
void router_txn_begin(struct router *rt);

/* Ends the open transaction: waits for its records, adds the positions
 * they complete, commits; aborts and rewinds the input on failure. No-op
 * when none is open. */
void router_txn_commit(struct router *rt);

/* Adds transactional.id and enable.auto.commit=false to cfg's Kafka
 * settings (the user's own settings win). */
void router_txn_settings(struct ks_config *cfg);

/* reload.c: SIGHUP */

/* Loads the config again and swaps it in; keeps the old one (logged,
 * counted as an error) when the new one or its score model fails. Call
 * only between poll batches. */
void router_reload(struct router *rt);

#endif
