/*
 * worker.c - the worker's event loop and its Kafka side.
 *
 * One loop waits in curl_multi_poll() on the HTTP sockets and on a pipe
 * that librdkafka's consumer and producer queues write to, so Kafka events
 * and HTTP completions wake the same thread.
 *
 * Back-pressure: at most max_inflight calls run; up to as many again
 * (at least 64) messages wait for a slot. Tasks are taken from each
 * partition's own queue only while that backlog has room (fetch.c), and
 * librdkafka stops fetching a partition whose queue is full, so nothing
 * is paused (a pause dropped the prefetch and cost ~250 ms per resume).
 * The loop polls the consumer queue on every turn, to stay in the group
 * and serve rebalances (librdkafka #2703). Partitions are paused only at
 * shutdown, once the drain begins.
 *
 * Revocation (incremental: cooperative-sticky hands back only the
 * partitions that move): the revoked partitions' queues are dropped and
 * their jobs that have not started a call are dropped at once, without
 * commit (the next owner is given them again); no call starts for them
 * after that; their calls in flight run to completion up to
 * drain_timeout_ms, the rest are abandoned uncommitted (redelivered and
 * answered from the done record), and only then are the partitions given
 * up. The other partitions keep working meanwhile. A lost assignment
 * (another member owns it already) stores and commits nothing.
 * SIGTERM drains every partition the same way, with consumption stopped.
 */
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "classify.h"
#include "fetch.h"
#include "guard.h"
#include "job.h"
#include "order.h"
#include "process/daemon.h"
#include "spend.h"
#include "worker_internal.h"

#include "base/banned.h"

#define POLL_BATCH 256

static void on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct worker *w = opaque;

    (void)rk;
    if (rkm->err) {
        job_delivery_failed(w, rkm->_private, rkm);
    } else {
        job_delivered(w, rkm->_private, true);
    }
}

static void set_paused(struct worker *w, bool pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (pause == w->paused ||
        rd_kafka_assignment(w->rk_cons, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    if (pause) {
        rd_kafka_pause_partitions(w->rk_cons, parts);
    } else {
        rd_kafka_resume_partitions(w->rk_cons, parts);
    }
    ks_log_debug("worker", "%s %d partition(s) at %zu job(s)",
                 pause ? "paused" : "resumed", parts->cnt, w->n_jobs);
    rd_kafka_topic_partition_list_destroy(parts);
    w->paused = pause;
}

static bool job_in(const struct job *job,
                   const rd_kafka_topic_partition_list_t *parts)
{
    if (!parts) {
        return true;
    }
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == job->ticket.partition &&
            strcmp(parts->elems[i].topic, job->ticket.topic) == 0) {
            return true;
        }
    }
    return false;
}

/* One turn of the loop: wait for sockets or queues, then serve both. */
static void step(struct worker *w, int64_t max_wait_ms)
{
    struct curl_waitfd extra = {.fd = w->wake.fds[0],
                                .events = CURL_WAIT_POLLIN};
    int64_t wait = job_advance_all(w);
    CURLMsg *msg;
    int running, left, n = 0;
    rd_kafka_message_t *rkm;

    /* Jobs freed just now make room: tasks left in a partition queue by a
     * full backlog wake nothing (its pipe was written when it turned
     * non-empty), so they are taken now, and the turn does not wait. */
    if (w->consuming && fetch_pull(w) > 0) {
        wait = 0;
    }
    if (wait > max_wait_ms) {
        wait = max_wait_ms;
    }
    curl_multi_poll(w->multi, &extra, 1, (int)wait, NULL);
    ks_kafka_wake_drain(&w->wake);
    curl_multi_perform(w->multi, &running);
    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            job_call_done(w, msg->easy_handle, msg->data.result);
        }
    }
    spend_flush(w); /* the calls' settles: Redis takes them meanwhile */
    /* Inside the rebalance callback the consumer queue is the caller's:
     * only the other partitions' own queues are served. */
    while (w->consuming && !w->rebalancing && n++ < POLL_BATCH &&
           (rkm = rd_kafka_consumer_poll(w->rk_cons, 0)) != NULL) {
        if (rkm->err) {
            ks_log_warn("worker", "consumer: %s", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        job_accept(w, rkm);
        if (w->n_jobs >= w->max_jobs) {
            break;
        }
    }
    if (w->consuming) {
        fetch_pull(w);
    }
    rd_kafka_poll(w->rk_prod, 0);
    spend_tick(w);
    ks_metrics_set(w->m_inflight, (double)w->n_calls, w->tier->name);
    ks_kafka_lag_tick(&w->lag, w->rk_cons, w->offsets);
}

static size_t jobs_in(const struct worker *w,
                      const rd_kafka_topic_partition_list_t *parts)
{
    size_t n = 0;

    for (const struct job *job = w->head; job; job = job->next) {
        n += job_in(job, parts) && !job->abandoned;
    }
    return n;
}

/* Lets the jobs of parts (NULL: all) finish until the deadline, then
 * abandons what is left. Jobs of parts must not start a call meanwhile:
 * those that go back to waiting (a failed call to retry) are dropped
 * before each turn, counted in *dropped. Returns the number abandoned. */
static size_t drain(struct worker *w,
                    const rd_kafka_topic_partition_list_t *parts,
                    size_t *dropped)
{
    int64_t deadline = ks_mono_ms() + w->cfg->drain_timeout_ms;
    size_t left;

    while ((left = jobs_in(w, parts)) > 0 && ks_mono_ms() < deadline) {
        if (parts) {
            *dropped += job_drop_revoked(w, NULL);
        }
        step(w, 100);
    }
    rd_kafka_flush(w->rk_prod, 1000);
    left = jobs_in(w, parts);
    for (struct job *job = w->head, *next; job; job = next) {
        next = job->next;
        if (job_in(job, parts)) {
            job_abandon(w, job);
        }
    }
    return left;
}

/* One info line per partition assigned or revoked, with the monotonic
 * clock (the same as the call-start debug lines), so a log shows what
 * started after a revocation began. */
static void log_parts(const char *what,
                      const rd_kafka_topic_partition_list_t *parts,
                      bool lost)
{
    int64_t now = ks_mono_ms();

    for (int i = 0; i < parts->cnt; i++) {
        ks_log_info("worker", "%s %s[%" PRId32 "] at %" PRId64 "%s", what,
                    parts->elems[i].topic, parts->elems[i].partition, now,
                    lost ? " (assignment lost)" : "");
    }
}

static void forget_offsets(struct worker *w,
                           const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        ks_offsets_forget(w->offsets, parts->elems[i].topic,
                          parts->elems[i].partition);
    }
}

static void revoke_parts(struct worker *w,
                         rd_kafka_t *rk,
                         rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(rk);
    size_t dropped, left;

    log_parts("revoke", parts, lost);
    fetch_revoke(w, parts); /* nothing more is taken from them */
    if (lost) {
        /* Owned by another member already: the jobs that finish below
         * store no offset (their tickets go stale). */
        forget_offsets(w, parts);
    }
    dropped = job_drop_revoked(w, parts);
    w->rebalancing = true;
    left = drain(w, parts, &dropped);
    w->rebalancing = false;
    KS_LOG(left > 0 ? KS_LOG_WARN : KS_LOG_INFO, "worker",
           "revoked %d partition(s) at %" PRId64 ": %zu job(s) not "
           "started dropped, %zu abandoned at the deadline; they will "
           "be redelivered",
           parts->cnt, ks_mono_ms(), dropped, left);
    forget_offsets(w, parts);
    /* librdkafka keeps a partition's pause across revocation: one
     * given back paused would come back paused and never be fetched. */
    rd_kafka_resume_partitions(rk, parts);
    ks_kafka_rebalance_apply(rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, parts);
}

static void on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct worker *w = opaque;

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        revoke_parts(w, rk, parts);
        return;
    }
    ks_kafka_rebalance_apply(rk, err, parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_parts("assign", parts, false);
    }
    /* An incremental assignment can still come while the consumer
     * closes (another member left): its partitions are given back
     * unworked; their queues must not outlive fetch_fini. */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && w->consuming) {
        fetch_assign(w, parts);
    }
}

static void register_metrics(struct worker *w)
{
    w->metrics = ks_metrics_new();
    w->m_requests = ks_metrics_family(
        w->metrics, "kascade_requests_total",
        "Model calls finished, by tier, provider model and outcome.",
        KS_METRIC_COUNTER, "tier,provider,status");
    w->m_duration = ks_metrics_family(
        w->metrics, "kascade_request_duration_seconds",
        "Duration of one model call.", KS_METRIC_HISTOGRAM, "tier");
    w->m_results = ks_metrics_family(w->metrics, "kascade_results_total",
                                     "Results published, by status.",
                                     KS_METRIC_COUNTER, "tier,status");
    w->m_dlq = ks_metrics_family(w->metrics, "kascade_dlq_total",
                                 "Messages written to the dead-letter topic, "
                                 "by error code.",
                                 KS_METRIC_COUNTER, "error");
    w->m_inflight =
        ks_metrics_family(w->metrics, "kascade_inflight",
                          "Model calls in flight.", KS_METRIC_GAUGE, "tier");
    w->m_spent = ks_metrics_family(w->metrics, "kascade_budget_spent_usd",
                                   "Spent today (UTC) by the tier, fleet-wide.",
                                   KS_METRIC_GAUGE, "tier");
    w->m_remaining = ks_metrics_family(
        w->metrics, "kascade_budget_remaining_usd",
        "Left of the tier's daily budget, fleet-wide, after reservations.",
        KS_METRIC_GAUGE, "tier");
    ks_kafka_lag_init(&w->lag, w->metrics);
    w->m_holds = ks_metrics_family(
        w->metrics, "kascade_budget_holds_total",
        "Calls held back by the budget: reserved (others' open "
        "reservations), spent, or redis (unreachable, fail closed).",
        KS_METRIC_COUNTER, "tier,reason");
    w->m_window_full = ks_metrics_family(
        w->metrics, "kascade_offsets_window_full_total",
        "Times a partition's offsets window reached limits.max_open_offsets "
        "and the consumer stopped taking from it, by topic.",
        KS_METRIC_COUNTER, "topic");
    ks_metrics_label_closed(w->m_window_full, "topic",
                            (const char *const[]){w->topic}, 1);
}

static int check_keys(const struct ks_tier_cfg *tier,
                      char *errstr,
                      size_t errstr_size)
{
    for (size_t i = 0; i < tier->n_providers; i++) {
        const char *env = tier->providers[i].api_key_env;

        if (env && (!getenv(env) || !*getenv(env))) {
            snprintf(errstr, errstr_size,
                     "tier '%s' provider %zu: "
                     "environment variable %s (api_key_env) is not set",
                     tier->name, i, env);
            return -1;
        }
    }
    return 0;
}

static int subscribe(struct worker *w, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(topics, w->topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(w->rk_cons, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe to %s: %s", w->topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* The store's pump (store.h): while the loop waits on Redis, the calls in
 * flight are driven on (their replies read, their sockets served), so a
 * slow Redis neither stalls them nor makes them time out; their ends are
 * collected by the loop's next pass (curl_multi_info_read). */
static void pump_calls(void *arg)
{
    struct worker *w = arg;
    int running = 0;

    curl_multi_perform(w->multi, &running);
}

static int open_clients(struct worker *w, char *errstr, size_t errstr_size)
{
    /* A worker takes tens to thousands of tasks a second: a bounded
     * prefetch per partition keeps it busy without librdkafka's default
     * 64 MB a partition. (librdkafka 2.0 backs a full partition off for
     * long enough that a router, draining 100k tasks a second, would
     * starve on this bound: it keeps the defaults.) */
    static const struct ks_kv prefetch[] = {
        {"queued.min.messages", "20000"},
        {"queued.max.messages.kbytes", "16384"},
        {NULL, NULL},
    };
    char group[KS_TOPIC_MAX], suffix[128];

    snprintf(suffix, sizeof(suffix), "worker.%s", w->tier->name);
    ks_config_topic(w->cfg, suffix, group, sizeof(group));
    w->rk_prod =
        ks_kafka_producer_new(w->cfg, on_delivery, w, errstr, errstr_size);
    if (!w->rk_prod) {
        return -1;
    }
    ks_kafka_warm(
        w->rk_prod,
        (const char *const[]){w->results_topic, w->dlq_topic, w->esc_topic}, 3);
    w->rk_cons = ks_kafka_consumer_new(w->cfg, group, prefetch, on_rebalance, w,
                                       errstr, errstr_size);
    if (!w->rk_cons || subscribe(w, errstr, errstr_size) != 0) {
        return -1;
    }
    if (ks_kafka_wake_init(&w->wake) != 0) {
        snprintf(errstr, errstr_size, "pipe: out of file descriptors");
        return -1;
    }
    w->rkqu_cons = rd_kafka_queue_get_consumer(w->rk_cons);
    w->rkqu_prod = rd_kafka_queue_get_main(w->rk_prod);
    ks_kafka_wake_watch(&w->wake, w->rkqu_cons);
    ks_kafka_wake_watch(&w->wake, w->rkqu_prod);
    w->multi = curl_multi_init();
    if (!w->multi) {
        snprintf(errstr, errstr_size, "curl_multi_init failed");
        return -1;
    }
    curl_multi_setopt(w->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)w->tier->max_inflight);
    /* Keep a connection for every call slot: curl's default cache (4 per
     * easy handle added at the time) shrinks whenever the calls in flight
     * dip, closing keep-alive connections the next calls must open again. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS,
                      (long)w->tier->max_inflight);
    w->rs = ks_store_new(w->cfg, errstr, errstr_size);
    if (w->rs) {
        ks_store_set_pump(w->rs, pump_calls, w);
    }
    return w->rs ? 0 : -1;
}

struct worker *worker_new(const struct ks_config *cfg,
                          const char *tier_name,
                          char *errstr,
                          size_t errstr_size)
{
    struct worker *w = ks_xcalloc(1, sizeof(*w));
    int t = ks_config_tier_index(cfg, tier_name);
    char suffix[128];

    w->cfg = cfg;
    w->wake.fds[0] = w->wake.fds[1] = -1;
    w->consuming = true;
    if (t < 0) {
        snprintf(errstr, errstr_size, "--tier %s: no such tier in %s",
                 tier_name, cfg->path);
        goto fail;
    }
    w->tier = &cfg->tiers[t];
    w->max_jobs =
        (size_t)w->tier->max_inflight +
        (size_t)(w->tier->max_inflight > 64 ? w->tier->max_inflight : 64);
    if (check_keys(w->tier, errstr, errstr_size) != 0 ||
        classify_open(w, errstr, errstr_size) != 0) {
        goto fail;
    }
    snprintf(suffix, sizeof(suffix), "tier.%s", w->tier->name);
    ks_config_topic(cfg, suffix, w->topic, sizeof(w->topic));
    ks_config_topic(cfg, "results", w->results_topic, sizeof(w->results_topic));
    ks_config_topic(cfg, "dlq", w->dlq_topic, sizeof(w->dlq_topic));
    ks_config_topic(cfg, "escalations", w->esc_topic, sizeof(w->esc_topic));
    w->offsets = ks_offsets_new();
    ks_offsets_set_max(w->offsets, (size_t)cfg->max_open_offsets);
    register_metrics(w);
    guard_init(w);
    if (open_clients(w, errstr, errstr_size) != 0 ||
        ks_metrics_serve(w->metrics, cfg->metrics_host, cfg->metrics_port,
                         errstr, errstr_size) != 0) {
        goto fail;
    }
    return w;

fail:
    worker_destroy(w);
    return NULL;
}

int worker_run(struct worker *w)
{
    size_t left, dropped = 0;
    int ret;

    ks_log_info("worker", "tier %s: consuming %s, up to %d call(s) in flight",
                w->tier->name, w->topic, w->tier->max_inflight);
    while (!ks_stop_requested) {
        step(w, 100);
    }
    ks_log_info("worker", "draining %zu job(s)", w->n_jobs);
    set_paused(w, true);
    w->consuming = false;
    left = drain(w, NULL, &dropped);
    if (left > 0) {
        ks_log_warn("worker",
                    "drain deadline: abandoned %zu job(s); they "
                    "will be redelivered",
                    left);
    }
    if (rd_kafka_flush(w->rk_prod, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ks_log_warn("worker", "records still unacknowledged at exit");
    }
    ret = left > 0 ? -1 : 0;
    if (w->rkqu_cons) {
        rd_kafka_queue_destroy(w->rkqu_cons);
        w->rkqu_cons = NULL;
    }
    fetch_fini(w); /* queue references must go before the consumer */
    if (ks_kafka_consumer_close_destroy(w->rk_cons, on_rebalance, w, 10000) !=
        0) {
        ret = -1;
    }
    w->rk_cons = NULL;
    return ret;
}

void worker_destroy(struct worker *w)
{
    if (!w) {
        return;
    }
    while (w->head) {
        w->head->unacked = 0;
        job_abandon(w, w->head);
    }
    if (w->rkqu_cons) {
        rd_kafka_queue_destroy(w->rkqu_cons);
    }
    if (w->rkqu_prod) {
        rd_kafka_queue_destroy(w->rkqu_prod);
    }
    if (w->rk_cons) {
        fetch_fini(w);
        rd_kafka_destroy(w->rk_cons);
    }
    if (w->rk_prod) {
        rd_kafka_destroy(w->rk_prod);
    }
    if (w->rs) {
        ks_store_set_pump(w->rs, NULL, NULL);
    }
    if (w->multi) {
        curl_multi_cleanup(w->multi);
    }
    if (w->wake.fds[0] >= 0) {
        ks_kafka_wake_fini(&w->wake);
    }
    if (w->rs) {
        spend_fini(w);
    }
    ks_store_destroy(w->rs);
    guard_fini(w);
    ks_metrics_destroy(w->metrics);
    ks_offsets_destroy(w->offsets);
    order_fini(w);
    free(w->order_set);
    if (w->tier) {
        classify_close(w);
    }
    free(w);
}
