/*
 * router.c - the routing loop: tasks and escalations in, one record out
 * for each (tier topic, Result, or DLQ). Builds and destroys the router,
 * subscribes, serves the rebalance callback, and runs the poll batches:
 * consume, serve the held records, commit the transaction, pause or
 * resume. It owns the router's state (state.h), the batch and its
 * transaction; the other files compute or carry out one thing each and
 * return, and none calls back here:
 *   task.c, escalate.c   decide a message, return an outcome (outcome.h)
 *   world.c              the tier list, budgets and the score they read
 *   produce.c            records out and their delivery reports
 *   defer.c              the deferred topic's records and rounds
 *   hold.c               the held records (a container; nothing is held
 *                        since the deferred topic took their place)
 *   txn.c                the transaction calls; reload.c SIGHUP;
 *   src.c                the view of a consumed message.
 *
 * Invariants: one thread; every consumed message gets an offset ticket
 * before any handler runs; the batch's transaction is begun before its
 * first record is produced; on revocation and shutdown the producer is
 * flushed first, so the offsets stored before the commit are complete.
 */
#include "router.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "defer.h"
#include "escalate.h"
#include "hold.h"
#include "kafka/client.h"
#include "kafka/offsets.h"
#include "kafka/produce.h"
#include "kafka/wake.h"
#include "process/daemon.h"
#include "produce.h"
#include "redis/store.h"
#include "reload.h"
#include "src.h"
#include "state.h"
#include "task.h"
#include "tenant.h"
#include "txn.h"
#include "wire/codec.h"
#include "wire/reason.h"
#include "world.h"

#include "base/banned.h"

#define POLL_BATCH 1000

/* ---- messages in: decide, then apply the outcome ---------------------- */

/* Carries out out for the message s (not ROUTER_ACT_HOLD): begins the
 * batch's transaction, then produces. Takes ownership of p and of what
 * out owns. */
static void apply(struct router *rt,
                  const struct src *s,
                  struct pending *p,
                  struct router_outcome *out)
{
    assert(out->act != ROUTER_ACT_HOLD); /* the caller holds */
    router_txn_begin(rt);
    switch (out->act) {
    case ROUTER_ACT_RECORD:
        router_produce(rt, out->topic, out->key, out->key_len, out->value,
                       out->len, out->hdrs, p);
        break;
    case ROUTER_ACT_RESULT:
        router_publish_result(rt, out->task, out->fmt, out->res, s, p);
        ks_result_destroy(out->res);
        break;
    case ROUTER_ACT_DLQ:
    case ROUTER_ACT_HOLD: /* (not reached) */
        router_dead_letter(rt, s, p, out->code, out->detail);
        break;
    }
    free(out->buf);
}

static void dead_letter(struct router *rt,
                        const struct src *s,
                        struct pending *p,
                        const char *code,
                        const char *detail)
{
    struct router_outcome out = {.act = ROUTER_ACT_DLQ, .code = code};

    snprintf(out.detail, sizeof(out.detail), "%s", detail);
    apply(rt, s, p, &out);
}

/* The message leaves the input for the deferred topic, keyed by id, with
 * its original bytes and headers and the topic it came from; its offset
 * commits once the copy is acknowledged, like any record's (takes
 * ownership of p). */
static void defer_out(struct router *rt,
                      const struct src *s,
                      struct pending *p,
                      const char *id,
                      const char *why)
{
    struct router_outcome out = {.act = ROUTER_ACT_RECORD};

    ks_log_info("router", "%s: deferred to %s (%s)", id, rt->deferred_topic,
                why);
    out.topic = rt->deferred_topic;
    out.key = id;
    out.key_len = strlen(id);
    out.value = s->payload;
    out.len = s->len;
    out.hdrs = router_defer_headers(s, s->topic);
    apply(rt, s, p, &out);
}

/* A message of the tasks topic: decoded, decided, or deferred (takes
 * ownership of p). */
/* topics.tenant_topics (tenant.c): the task takes its topic's tenant, or
 * is dead-lettered (returns -1). */
static int take_topic_tenant(struct router *rt,
                             struct src *s,
                             struct ks_task *task,
                             struct pending *p)
{
    char detail[400];

    if (router_tenant_take(rt->cfg, s->topic, task, &s->reencode, detail,
                           sizeof(detail)) != 0) {
        dead_letter(rt, s, p, "invalid", detail);
        return -1;
    }
    return 0;
}

static void on_task(struct router *rt,
                    const struct src *s,
                    struct pending *p,
                    enum ks_format fmt)
{
    struct ks_codec_error cerr = {0};
    struct route_rules rules = {0};
    struct ks_task *task = NULL;
    struct router_outcome out;
    struct src own = *s;

    if (ks_task_decode(fmt, s->payload, s->len, &rt->cfg->limits, &task,
                       &cerr) != KS_OK) {
        dead_letter(rt, s, p, cerr.code, cerr.detail);
        return;
    }
    if (take_topic_tenant(rt, &own, task, p) != 0) {
        ks_task_destroy(task);
        return;
    }
    s = &own;
    router_task_decide(rt, s, task, fmt, &rules, &out);
    if (out.act == ROUTER_ACT_HOLD) {
        defer_out(rt, s, p, task->id, "budget_defer");
    } else {
        apply(rt, s, p, &out);
    }
    ks_task_destroy(task);
}

/* A message of the escalations topic: decoded, its context loaded,
 * decided, or deferred, also when Redis cannot serve its context (held
 * in memory it would pin its partition's commits, and under
 * router.transactions a restart would replay what was routed after it;
 * it comes back with the next round of the deferred topic, DEFER_ROUND_MS
 * at most) (takes ownership of p). */
static void on_escalation(struct router *rt,
                          const struct src *s,
                          struct pending *p,
                          enum ks_format fmt)
{
    struct ks_codec_error cerr = {0};
    struct ks_escalation *esc = NULL;
    struct ks_ctx *ctx = NULL;
    struct router_outcome out;

    if (ks_escalation_decode(fmt, s->payload, s->len, &rt->cfg->limits, &esc,
                             &cerr) != KS_OK) {
        dead_letter(rt, s, p, cerr.code, cerr.detail);
        return;
    }
    router_escalation_decide(rt, esc, &ctx, &out);
    if (out.act == ROUTER_ACT_HOLD) {
        defer_out(rt, s, p, esc->id,
                  ctx ? "budget_defer" : "context not loaded, redis down");
    } else {
        apply(rt, s, p, &out);
    }
    ks_escalation_destroy(esc);
    ks_ctx_destroy(ctx);
}

/* An input topic a deferred record may name as its origin. */
static bool is_input(const struct router *rt, const char *topic)
{
    size_t n = strlen(rt->tasks_topic);

    return strcmp(topic, rt->tasks_topic) == 0 ||
           strcmp(topic, rt->esc_topic) == 0 ||
           (rt->cfg->tenant_topics && strncmp(topic, rt->tasks_topic, n) == 0 &&
            topic[n] == '.');
}

/* A record of the deferred topic: routed again as a message of the topic
 * it came from (deferred once more when its budget is still spent). */
static void on_deferred(struct router *rt,
                        const rd_kafka_message_t *rkm,
                        const struct src *s,
                        struct pending *p)
{
    struct ks_codec_error cerr = {0};
    rd_kafka_headers_t *hdrs = NULL;
    char origin[KS_TOPIC_MAX];
    enum ks_format fmt;
    struct src own = *s;

    if (router_defer_read(rkm, origin, sizeof(origin), &hdrs) != 0 ||
        !is_input(rt, origin)) {
        dead_letter(rt, s, p, "invalid",
                    "a deferred record without a " KS_HDR_DEFERRED_FROM
                    " header naming an input topic");
    } else {
        own.topic = origin;
        own.hdrs = hdrs;
        if (router_src_format(&own, &fmt, &cerr) != KS_OK) {
            dead_letter(rt, s, p, cerr.code, cerr.detail);
        } else if (strcmp(origin, rt->esc_topic) == 0) {
            on_escalation(rt, &own, p, fmt);
        } else {
            on_task(rt, &own, p, fmt);
        }
    }
    if (hdrs) {
        rd_kafka_headers_destroy(hdrs);
    }
}

/* limits.max_open_offsets: a partition whose offsets window is full is
 * paused (polling goes on) until it drains (resume_drained). */
static void check_window(struct router *rt, const struct ks_offset_ticket *t)
{
    rd_kafka_topic_partition_list_t *one;

    if (!ks_offsets_full(rt->offsets, t->topic, t->partition) ||
        rd_kafka_topic_partition_list_find(rt->window_full, t->topic,
                                           t->partition)) {
        return;
    }
    ks_log_warn("router",
                "%s [%d]: offsets window full (limits.max_open_offsets): "
                "paused until it drains",
                t->topic, (int)t->partition);
    ks_metrics_add(rt->m_window_full, 1, t->topic);
    rd_kafka_topic_partition_list_add(rt->window_full, t->topic, t->partition);
    one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, t->topic, t->partition);
    rd_kafka_pause_partitions(rt->rk_cons, one);
    rd_kafka_topic_partition_list_destroy(one);
}

static void resume_drained(struct router *rt)
{
    rd_kafka_topic_partition_list_t *one;

    for (int i = rt->window_full->cnt - 1; i >= 0; i--) {
        const rd_kafka_topic_partition_t *tp = &rt->window_full->elems[i];

        if (ks_offsets_full(rt->offsets, tp->topic, tp->partition)) {
            continue;
        }
        ks_log_info("router", "%s [%d]: offsets window drained: resumed",
                    tp->topic, (int)tp->partition);
        one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, tp->topic, tp->partition);
        rd_kafka_resume_partitions(rt->rk_cons, one);
        rd_kafka_topic_partition_list_destroy(one);
        rd_kafka_topic_partition_list_del_by_idx(rt->window_full, i);
    }
}

static void handle(struct router *rt, rd_kafka_message_t *rkm)
{
    struct ks_codec_error cerr = {0};
    enum ks_format fmt;
    struct pending *p;
    struct src s;

    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ks_log_warn("router", "consumer: %s", rd_kafka_message_errstr(rkm));
        }
        return;
    }
    p = ks_xcalloc(1, sizeof(*p));
    ks_offsets_track(rt->offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                     rkm->offset, &p->ticket);
    check_window(rt, &p->ticket);
    s = router_src_of(rkm, p->ticket.topic);
    if (rkm->len > rt->cfg->limits.max_message_bytes) {
        char detail[128];

        snprintf(detail, sizeof(detail),
                 "message of %zu bytes is over "
                 "limits.max_message_bytes (%zu)",
                 rkm->len, rt->cfg->limits.max_message_bytes);
        dead_letter(rt, &s, p, "too_large", detail);
        return;
    }
    if (strcmp(s.topic, rt->deferred_topic) == 0) {
        /* the round's mark first: a record this one defers again lands
         * past it, for the next round */
        router_defer_seen(&rt->defer, rt->rk_cons, rkm);
        on_deferred(rt, rkm, &s, p);
    } else if (router_src_format(&s, &fmt, &cerr) != KS_OK) {
        dead_letter(rt, &s, p, cerr.code, cerr.detail);
    } else if (strcmp(s.topic, rt->esc_topic) == 0) {
        on_escalation(rt, &s, p, fmt);
    } else {
        on_task(rt, &s, p, fmt);
    }
}

/* ---- held records and the pause ----------------------------------------- */

/* Decides h again and applies the outcome. Returns true when it is done
 * (its pending handed on; h may be freed). */
static bool retry_held(struct router *rt, struct held *h)
{
    struct router_outcome out;

    if (h->kind == HELD_TASK) {
        router_task_decide(rt, &h->src, h->task, h->fmt, &h->rules, &out);
    } else {
        router_escalation_decide(rt, h->esc, &h->ctx, &out);
    }
    if (out.act == ROUTER_ACT_HOLD) {
        return false;
    }
    apply(rt, &h->src, h->p, &out);
    h->p = NULL;
    return true;
}

/* At most once a second: decides every held record again; the ones still
 * waiting go back in their order. */
static void serve_held(struct router *rt)
{
    size_t n;
    struct held **due = router_hold_take_due(&rt->hold, ks_mono_ms(), &n);

    for (size_t i = 0; i < n; i++) {
        if (retry_held(rt, due[i])) {
            router_held_free(due[i]);
        } else {
            router_hold_add(&rt->hold, due[i]);
        }
    }
    if (rt->hold.n < n) {
        ks_log_info("router", "released %zu held record(s), %zu still held",
                    n - rt->hold.n, rt->hold.n);
    }
    free(due);
}

/* Pauses or resumes the assigned partitions of the tasks topic (polling
 * goes on, librdkafka #2703). */
static void set_paused(struct router *rt, bool pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL, *tasks;

    if (pause == rt->paused || rd_kafka_assignment(rt->rk_cons, &parts) !=
                                   RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    tasks = rd_kafka_topic_partition_list_new(parts->cnt ? parts->cnt : 1);
    for (int i = 0; i < parts->cnt; i++) {
        if (strcmp(parts->elems[i].topic, rt->esc_topic) != 0) {
            rd_kafka_topic_partition_list_add(tasks, parts->elems[i].topic,
                                              parts->elems[i].partition);
        }
    }
    if (pause) {
        rd_kafka_pause_partitions(rt->rk_cons, tasks);
    } else {
        rd_kafka_resume_partitions(rt->rk_cons, tasks);
    }
    ks_log_info("router", "%s %d tasks partition(s) at %zu held record(s)",
                pause ? "paused" : "resumed", tasks->cnt, rt->hold.n);
    rd_kafka_topic_partition_list_destroy(tasks);
    rd_kafka_topic_partition_list_destroy(parts);
    rt->paused = pause;
}

/* Pauses at router.max_deferred held records, resumes at half. */
static void update_pause(struct router *rt)
{
    size_t max = (size_t)rt->cfg->router_max_deferred;

    if (!rt->paused && rt->hold.n >= max) {
        set_paused(rt, true);
    } else if (rt->paused && rt->hold.n <= max / 2) {
        set_paused(rt, false);
    }
}

/* Ends the batch's transaction. After an abort the input is consumed
 * again from the committed offsets, so the held records go too. */
static void commit_batch(struct router *rt)
{
    if (router_txn_commit(rt) == KS_ERR_RETRY) {
        router_hold_drop(&rt->hold, NULL);
        router_txn_rewind(rt);
    }
}

/* ---- partitions ---------------------------------------------------------- */

/* Before partitions go: let every record produced for them be
 * acknowledged, so their stored offsets are final when librdkafka commits
 * on unassign. Records still unacknowledged at the deadline, and held
 * ones, keep their offsets uncommitted, and the new owner reprocesses
 * them. */
static void on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct router *rt = opaque;
    bool lost = err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS &&
                rd_kafka_assignment_lost(rk);

    if (lost) {
        /* Another member owns them already: nothing is committed for
         * them. Their tickets go stale first, so records acknowledged
         * from here on store no offset and add none to the transaction;
         * positions the transaction already holds for them are taken out
         * (ks_kafka_rebalance_apply clears what was stored). */
        for (int i = 0; i < parts->cnt; i++) {
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
            while (rt->txn_offsets &&
                   rd_kafka_topic_partition_list_del(
                       rt->txn_offsets, parts->elems[i].topic,
                       parts->elems[i].partition)) {
            }
        }
        ks_log_warn("router",
                    "assignment lost: %d partition(s) given up without "
                    "commit",
                    parts->cnt);
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        commit_batch(rt); /* the batch so far, before the partitions go */
        if (rd_kafka_flush(rt->rk_prod, (int)rt->cfg->drain_timeout_ms) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            ks_log_warn("router",
                        "revocation: %zu record(s) still "
                        "unacknowledged",
                        rt->unacked);
        }
        router_hold_drop(&rt->hold, parts);
        for (int i = 0; i < parts->cnt; i++) {
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
        }
        /* librdkafka keeps a pause across revocation. */
        rd_kafka_resume_partitions(rk, parts);
    }
    ks_kafka_rebalance_apply(rk, err, parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        router_defer_assigned(&rt->defer, rk, rt->deferred_topic, parts);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && rt->paused) {
        rt->paused = false;
        set_paused(rt, true);
    }
}

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
    rt->m_held = ks_metrics_family(
        rt->metrics, "kascade_router_held",
        "Tasks and escalations held in memory (budget_defer, context not "
        "loadable yet).",
        KS_METRIC_GAUGE, "");
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
        on_rebalance, rt, errstr, errstr_size);
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
    rt->queue_left = false;
    while (!ks_stop_requested &&
           (rkm = rd_kafka_consumer_poll(rt->rk_cons, 0)) != NULL) {
        handle(rt, rkm);
        rd_kafka_message_destroy(rkm);
        if (++n == POLL_BATCH) {
            rt->queue_left = true;
            break;
        }
    }
    router_redo_due(rt); /* failed records whose backoff is over */
    rd_kafka_poll(rt->rk_prod, 0);
    serve_held(rt);
    commit_batch(rt);
    update_pause(rt);
    resume_drained(rt);
    if (rt->defer.n > 0) {
        /* budgets read at most once a second, for the deferred rounds */
        struct route_state st = router_world(rt, NULL);

        router_defer_tick(&rt->defer, rt->rk_cons, rt->rk_prod, st.tier_spent,
                          rt->cfg->n_tiers, ks_mono_ms());
    }
    ks_metrics_set(rt->m_inflight, (double)rt->unacked, "");
    ks_metrics_set(rt->m_held, (double)rt->hold.n);
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
    ks_log_info("router",
                "draining: %zu record(s) unacknowledged, %zu held "
                "(left uncommitted)",
                rt->unacked, rt->hold.n);
    router_hold_drop(&rt->hold, NULL);
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
    if (ks_kafka_consumer_close_destroy(rt->rk_cons, on_rebalance, rt, 10000) !=
        0) {
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
    router_hold_fini(&rt->hold);
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
