/*
 * state.h - the router's state: one struct router, owned by router.c
 * (router_new builds it, router_destroy frees it, the loop runs it on
 * the router's one thread). The other files borrow it for the length of
 * a call and touch only their part, named in the comments below:
 * world.c the tier list and budget snapshot, produce.c the unacked count,
 * the transaction's offsets and failure and the missing reply_to topics,
 * txn.c the transaction, reload.c the config and the score model.
 */
#ifndef KASCADE_ROUTER_STATE_H
#define KASCADE_ROUTER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "base/metrics.h"
#include "config/config.h"
#include "defer.h"
#include "kafka/client.h"
#include "kafka/lag.h"
#include "kafka/offsets.h"
#include "kafka/redo.h"
#include "kafka/wake.h"
#include "redis/store.h"
#include "router.h"

#define MISSING_MAX 64

struct router {
    struct ks_config *boot; /* start-up config: clients, store, topics */
    struct ks_config *cfg;  /* routing config (boot until a reload) */
    uint64_t cfg_gen;       /* counts reloads (route_rules.gen) */
    const struct ks_cmdline *cl;
    rd_kafka_t *rk_cons;
    rd_kafka_t *rk_prod;
    struct ks_offsets *offsets;
    struct ks_store *rs;
    struct ks_kafka_wake wake;
    bool queue_left; /* the last turn left messages queued: do not wait */
    struct ks_kafka_lag lag; /* kascade_consumer_lag of tasks, escalations */
    rd_kafka_queue_t *rkqu_cons, *rkqu_prod; /* watched by wake */
    struct ks_metrics *metrics;
    struct ks_metric_family *m_routed, *m_dlq, *m_inflight, *m_escalations,
        *m_results, *m_reloads, *m_rule_limit;
    char tasks_topic[KS_TOPIC_MAX];
    char esc_topic[KS_TOPIC_MAX];
    char deferred_topic[KS_TOPIC_MAX];
    struct defer defer; /* the deferred topic's rounds (defer.h) */
    /* partitions paused for a full offsets window (router.c) */
    rd_kafka_topic_partition_list_t *window_full;
    struct ks_metric_family *m_window_full;
    char dlq_topic[KS_TOPIC_MAX];
    char results_topic[KS_TOPIC_MAX];
    char (*tier_topics)[KS_TOPIC_MAX]; /* cfg->n_tiers */
    size_t unacked;                    /* produced, not yet acknowledged
                                          (a redo counts as one) */
    struct ks_redo redo;               /* to produce again (produce.c) */
    struct pending **pending_pool; /* freed pendings for reuse (produce.c) */
    size_t n_pending_pool, pending_pool_cap;
    /* budget snapshot (world.c) */
    bool *tier_spent; /* cfg->n_tiers */
    bool budget_known;
    bool redis_down_logged;
    int64_t budget_read_ms; /* monotonic; 0: never */
    int64_t batch_ms;       /* monotonic, read once per poll batch
                               (router.c): the budget and tenant caches'
                               clock, not read again per task */
    /* transactions (router.transactions, txn.c) */
    bool txn;        /* on: offsets go into each batch's transaction */
    bool txn_open;   /* begun, not yet committed or aborted */
    bool txn_failed; /* a record of the open transaction was not delivered */
    rd_kafka_topic_partition_list_t *txn_offsets; /* positions to send */
    size_t n_kafka_user; /* boot->kafka entries from the user's config */
    /* reply_to topics found missing (or refusing us): their results go
     * to results_topic. A ring: the 65th replaces the oldest. In a
     * transaction the failed record cannot be redirected, only the retry
     * after the abort, and that retry sends every Result to results_topic
     * (reply_fallback, until the next commit), so no set of missing
     * topics, however large, can abort batch after batch. */
    char *missing_reply_to[MISSING_MAX];
    size_t n_missing;
    size_t missing_next; /* the slot the next one takes */
    bool reply_fallback;
    /* scorer */
    const struct router_scorer *scorer;
    void *model;
    bool no_scorer_logged;
};

#endif
