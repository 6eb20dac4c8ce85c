/*
 * router.c - kascade-router's lifecycle and loop: builds and destroys the
 * router, subscribes, and runs the poll batches: consume (dispatch.c),
 * serve delivery reports, commit the batch's transaction, resume drained
 * partitions, tick the deferred topic's rounds. It owns the router's
 * state (state.h); the other files compute or carry out one thing each
 * and return, and none calls back here:
 *   dispatch.c           messages in: decide, apply the outcome
 *   task.c, escalate.c   decide a message, return an outcome (outcome.h)
 *   world.c              the tier list, budgets and the score they read
 *   produce.c            records out and their delivery reports
 *   defer.c              the deferred topic's records and rounds
 *   rebalance.c          partitions coming and going, the batch's commit
 *   txn.c                the transaction calls; reload.c SIGHUP;
 *   src.c                the view of a consumed message.
 *
 * Invariants: one thread; on revocation and shutdown the producer is
 * flushed first, so the offsets stored before the commit are complete.
 */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "defer.h"
#include "dispatch.h"
#include "kafka/client.h"
#include "kafka/offsets.h"
#include "kafka/produce.h"
#include "kafka/wake.h"
#include "process/daemon.h"
#include "produce.h"
#include "rebalance.h"
#include "redis/store.h"
#include "reload.h"
#include "state.h"
#include "tenant.h"
#include "txn.h"
#include "wire/codec.h"
#include "wire/reason.h"
#include "world.h"

#include "base/banned.h"

#define POLL_BATCH 1000

static int subscribe(struct router *rt, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(3);
    rd_kafka_resp_err_t err;
    char tasks[2 * KS_TOPIC_MAX + 32];

    router_tenant_subscription(rt->cfg, rt->tasks_topic, tasks, sizeof(tasks));
    rd_kafka_topic_partition_list_add(topics, tasks, RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, rt->esc_topic,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, rt->deferred_topic,
                                      RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rt->rk_cons, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe to %s and %s: %s", tasks,
                 rt->esc_topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Closes label of fam to cfg's tier names. */
static void close_tier_label(struct ks_metric_family *fam,
                             const char *label,
                             const struct ks_config *cfg)
{
    const char **names = ks_xcalloc(cfg->n_tiers + 1, sizeof(*names));

    for (size_t i = 0; i < cfg->n_tiers; i++) {
        names[i] = cfg->tiers[i].name;
    }
    ks_metrics_label_closed(fam, label, names, cfg->n_tiers);
    free(names);
}

static void register_metrics(struct router *rt)
{
    rt->metrics = ks_metrics_new();
    rt->m_routed = ks_metrics_family(
        rt->metrics, "kascade_tasks_routed_total",
        "Tasks published to a tier topic (or answered budget_exceeded), by "
        "tier and deciding rule.",
        KS_METRIC_COUNTER, "tier,reason");
    rt->m_escalations = ks_metrics_family(
        rt->metrics, "kascade_escalations_total",
        "Escalations republished one tier up, by the tier they came from "
        "and their reason.",
        KS_METRIC_COUNTER, "from_tier,reason");
    /* Both labels come from the wire: closed sets, the rest is "other". */
    ks_metrics_label_closed(rt->m_escalations, "reason", ks_escalation_reasons,
                            KS_ESCALATION_REASONS);
    close_tier_label(rt->m_escalations, "from_tier", rt->cfg);
    rt->m_results = ks_metrics_family(
        rt->metrics, "kascade_router_results_total",
        "Results the router published itself (budget rejects, finished "
        "escalations), by status.",
        KS_METRIC_COUNTER, "status");
    rt->m_dlq = ks_metrics_family(rt->metrics, "kascade_dlq_total",
                                  "Messages written to the dead-letter "
                                  "topic, by error code.",
                                  KS_METRIC_COUNTER, "error");
    rt->m_inflight = ks_metrics_family(
        rt->metrics, "kascade_inflight",
        "Records produced and not yet acknowledged.", KS_METRIC_GAUGE, "tier");
    ks_kafka_lag_init(&rt->lag, rt->metrics);
    rt->m_window_full = ks_metrics_family(
        rt->metrics, "kascade_offsets_window_full_total",
        "Times a partition's offsets window reached limits.max_open_offsets "
        "and the consumer stopped taking from it, by topic.",
        KS_METRIC_COUNTER, "topic");
    ks_metrics_label_closed(rt->m_window_full, "topic",
                            (const char *const[]){rt->tasks_topic,
                                                  rt->esc_topic,
                                                  rt->deferred_topic},
                            3);
    rt->m_reloads =
        ks_metrics_family(rt->metrics, "kascade_config_reloads_total",
                          "SIGHUP config reloads, by result (ok, error).",
                          KS_METRIC_COUNTER, "result");
    rt->m_rule_limit = ks_metrics_family(
        rt->metrics, "kascade_rule_limit_total",
        "Routing-rule patterns that gave up at their match limit (counted "
        "as no match), by the rule's configured name; once per task.",
        KS_METRIC_COUNTER, "rule");
}

/* The producer, warmed for the tier and DLQ topics, its transactions
 * initialised when router.transactions is on. Returns 0, or -1 with
 * errstr. */
static int producer_start(struct router *rt, char *errstr, size_t errstr_size)
{
    rt->rk_prod = ks_kafka_producer_new(rt->boot, router_on_delivery, rt,
                                        errstr, errstr_size);
    if (!rt->rk_prod) {
        return -1;
    }
    for (size_t i = 0; i < rt->boot->n_tiers; i++) {
        ks_kafka_warm(rt->rk_prod, (const char *const[]){rt->tier_topics[i]},
                      1);
    }
    ks_kafka_warm(rt->rk_prod, (const char *const[]){rt->dlq_topic}, 1);
    ks_kafka_warm(rt->rk_prod, (const char *const[]){rt->deferred_topic}, 1);
    if (rt->txn && router_txn_error("init", rd_kafka_init_transactions(
                                                rt->rk_prod, 30000))) {
        snprintf(errstr, errstr_size,
                 "router.transactions: init_transactions failed (see the "
                 "log; the broker needs transaction support)");
        return -1;
    }
    return 0;
}

struct router *router_new(struct ks_config *cfg,
                          const struct ks_cmdline *cl,
                          char *errstr,
                          size_t errstr_size)
{
    struct router *rt = ks_xcalloc(1, sizeof(*rt));
    char group[KS_TOPIC_MAX];

    rt->boot = rt->cfg = cfg;
    rt->cl = cl;
    if (cfg->router_max_deferred_set) {
        ks_log_warn("router", "router.max_deferred is no longer used and is "
                              "ignored: deferred tasks go to the "
                              "<topics.prefix>deferred topic, not memory; "
                              "remove the key");
    }
    rt->n_kafka_user = cfg->n_kafka;
    rt->txn = cfg->router_transactions;
    rt->txn_offsets = rd_kafka_topic_partition_list_new(16);
    if (rt->txn) {
        router_txn_settings(cfg);
    }
    rt->wake.fds[0] = rt->wake.fds[1] = -1;
    rt->offsets = ks_offsets_new();
    ks_offsets_set_max(rt->offsets, (size_t)cfg->max_open_offsets);
    rt->window_full = rd_kafka_topic_partition_list_new(4);
    ks_config_topic(cfg, "tasks", rt->tasks_topic, KS_TOPIC_MAX);
    ks_config_topic(cfg, "deferred", rt->deferred_topic, KS_TOPIC_MAX);
    ks_config_topic(cfg, "escalations", rt->esc_topic, KS_TOPIC_MAX);
    ks_config_topic(cfg, "dlq", rt->dlq_topic, KS_TOPIC_MAX);
    ks_config_topic(cfg, "results", rt->results_topic, KS_TOPIC_MAX);
    router_build_tiers(rt);
    register_metrics(rt);
    rt->rs = ks_store_new(cfg, errstr, errstr_size);
    if (!rt->rs) {
        goto fail;
    }
    ks_config_topic(cfg, "router", group, sizeof(group));
    if (producer_start(rt, errstr, errstr_size) != 0) {
        goto fail;
    }
    rt->rk_cons = ks_kafka_consumer_new(
        cfg, group, cfg->tenant_topics ? router_tenant_consumer_defaults : NULL,
        router_on_rebalance, rt, errstr, errstr_size);
    if (!rt->rk_cons || subscribe(rt, errstr, errstr_size) != 0 ||
        ks_metrics_serve(rt->metrics, cfg->metrics_host, cfg->metrics_port,
                         errstr, errstr_size) != 0) {
        goto fail;
    }
    if (ks_kafka_wake_init(&rt->wake) != 0) {
        snprintf(errstr, errstr_size, "pipe: out of file descriptors");
        goto fail;
    }
    rt->rkqu_cons = rd_kafka_queue_get_consumer(rt->rk_cons);
    rt->rkqu_prod = rd_kafka_queue_get_main(rt->rk_prod);
    ks_kafka_wake_watch(&rt->wake, rt->rkqu_cons);
    ks_kafka_wake_watch(&rt->wake, rt->rkqu_prod);
    return rt;

fail:
    router_destroy(rt);
    return NULL;
}

int router_set_scorer(struct router *rt,
                      const struct router_scorer *sc,
                      char *errstr,
                      size_t errstr_size)
{
    rt->scorer = sc;
    if (!rt->cfg->score_model) {
        return 0;
    }
    rt->model = sc->load(rt->cfg->score_model, errstr, errstr_size);
    return rt->model ? 0 : -1;
}

/* ---- the loop ----------------------------------------------------------- */

static void serve_queues(struct router *rt)
{
    struct pollfd pfd = {.fd = rt->wake.fds[0], .events = POLLIN};
    rd_kafka_message_t *rkm;
    int n = 0;

    /* The pipe is written only when a queue turns non-empty (librdkafka
     * 2.0), so a turn that stopped at POLL_BATCH with messages left gets
     * no wake-up for them: the next turn does not wait. */
    poll(&pfd, 1, rt->queue_left ? 0 : 100);
    ks_kafka_wake_drain(&rt->wake);
    rt->batch_ms = ks_mono_ms();
    rt->queue_left = false;
    while (!ks_stop_requested &&
           (rkm = rd_kafka_consumer_poll(rt->rk_cons, 0)) != NULL) {
        router_handle(rt, rkm);
        rd_kafka_message_destroy(rkm);
        if (++n == POLL_BATCH) {
            rt->queue_left = true;
            break;
        }
    }
    router_redo_due(rt); /* failed records whose backoff is over */
    rd_kafka_poll(rt->rk_prod, 0);
    router_commit_batch(rt);
    router_resume_drained(rt);
    if (rt->defer.n > 0) {
        /* budgets read at most once a second, for the deferred rounds */
        struct route_state st = router_world(rt, NULL);

        router_defer_tick(&rt->defer, rt->rk_cons, rt->rk_prod, st.tier_spent,
                          rt->cfg->n_tiers, ks_mono_ms());
    }
    ks_metrics_set(rt->m_inflight, (double)rt->unacked, "");
    ks_kafka_lag_tick(&rt->lag, rt->rk_cons, rt->offsets);
}

int router_run(struct router *rt)
{
    int ret = 0;

    ks_log_info("router", "routing %s and %s to %zu tier(s)", rt->tasks_topic,
                rt->esc_topic, rt->cfg->n_tiers);
    while (!ks_stop_requested) {
        if (ks_reload_requested) {
            ks_reload_requested = 0;
            /* between batches: nothing points into the config */
            router_reload(rt);
            rt->cfg_gen++;
            /* a tier added by the reload gets its own series */
            close_tier_label(rt->m_escalations, "from_tier", rt->cfg);
        }
        serve_queues(rt);
    }
    ks_log_info("router", "draining: %zu record(s) unacknowledged",
                rt->unacked);
    router_redo_drop(rt); /* not produced again: left uncommitted */
    if (rd_kafka_flush(rt->rk_prod, (int)rt->cfg->drain_timeout_ms) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        ks_log_error("router",
                     "drain deadline passed with %zu record(s) "
                     "unacknowledged; their tasks will be redelivered",
                     rt->unacked);
        ret = -1;
    }
    if (rt->rkqu_cons) {
        rd_kafka_queue_destroy(rt->rkqu_cons);
        rt->rkqu_cons = NULL;
    }
    if (ks_kafka_consumer_close_destroy(rt->rk_cons, router_on_rebalance, rt,
                                        10000) != 0) {
        ret = -1;
    }
    rt->rk_cons = NULL;
    return ret;
}

void router_destroy(struct router *rt)
{
    if (!rt) {
        return;
    }
    router_redo_drop(rt);
    router_defer_fini(&rt->defer);
    if (rt->window_full) {
        rd_kafka_topic_partition_list_destroy(rt->window_full);
    }
    if (rt->rkqu_cons) {
        rd_kafka_queue_destroy(rt->rkqu_cons);
    }
    if (rt->rkqu_prod) {
        rd_kafka_queue_destroy(rt->rkqu_prod);
    }
    if (rt->rk_cons) {
        rd_kafka_destroy(rt->rk_cons);
    }
    if (rt->rk_prod) {
        rd_kafka_destroy(rt->rk_prod);
    }
    router_pending_pool_fini(rt); /* after the producer's last report */
    if (rt->wake.fds[0] >= 0) {
        ks_kafka_wake_fini(&rt->wake);
    }
    if (rt->model && rt->scorer) {
        rt->scorer->destroy(rt->model);
    }
    ks_store_destroy(rt->rs);
    ks_metrics_destroy(rt->metrics);
    ks_offsets_destroy(rt->offsets);
    free(rt->tier_topics);
    free(rt->tier_spent);
    if (rt->txn_offsets) {
        rd_kafka_topic_partition_list_destroy(rt->txn_offsets);
    }
    for (size_t i = 0; i < rt->n_missing; i++) {
        free(rt->missing_reply_to[i]);
    }
    if (rt->cfg != rt->boot) {
        ks_config_destroy(rt->cfg);
    }
    ks_config_destroy(rt->boot);
    free(rt);
}
