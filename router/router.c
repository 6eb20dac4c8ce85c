/*
 * router.c - the routing loop.
 *
 * Commit rule (DESIGN.md section 8): every consumed message gets an offset
 * ticket; the record produced for it (tier topic or DLQ) carries the ticket
 * as its opaque; the delivery report marks the ticket done, and only the
 * highest contiguous done offset is stored for auto-commit. A record whose
 * delivery finally fails is produced again from the delivery report, so
 * its offset is never skipped. On revocation and shutdown the producer is
 * flushed first, so the offsets stored before the commit are complete.
 */
#include "router.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "route.h"
#include "util.h"

#include "banned.h"

#define TOPIC_MAX  256
#define POLL_BATCH 1000

struct router {
    const struct ks_config *cfg;
    rd_kafka_t *rk_cons;
    rd_kafka_t *rk_prod;
    struct ks_offsets *offsets;
    struct ks_kafka_wake wake;
    rd_kafka_queue_t *rkqu_cons, *rkqu_prod; /* watched by wake */
    struct ks_metrics *metrics;
    struct ks_metric_family *m_routed, *m_dlq, *m_inflight;
    char tasks_topic[TOPIC_MAX];
    char dlq_topic[TOPIC_MAX];
    char (*tier_topics)[TOPIC_MAX];
    size_t unacked; /* produced, not yet acknowledged */
};

/* What a produced record carries back in its delivery report. */
struct pending {
    struct ks_offset_ticket ticket;
};

static void on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct router *rt = opaque;
    struct pending *p = rkm->_private;
    rd_kafka_headers_t *hdrs = NULL;
    int64_t pos;

    if (rkm->err) {
        /* librdkafka gave up after its own retries: produce again rather
         * than lose the task or commit past it. */
        ks_log_warn("router", "delivery to %s failed (%s): producing again",
                    rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err));
        if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
            hdrs = rd_kafka_headers_copy(hdrs);
        }
        if (ks_kafka_produce(rk, rd_kafka_topic_name(rkm->rkt), rkm->key,
                             rkm->key_len, rkm->payload, rkm->len, hdrs,
                             p) == KS_OK) {
            return;
        }
        ks_log_error("router", "cannot produce again; the offset stays "
                               "uncommitted and the task will be redelivered");
        rt->unacked--;
        free(p);
        return;
    }
    rt->unacked--;
    pos = ks_offsets_done(rt->offsets, &p->ticket);
    if (pos >= 0) {
        ks_kafka_store_offset(rt->rk_cons, p->ticket.topic, p->ticket.partition,
                              pos);
    }
    free(p);
}

static void dead_letter(struct router *rt,
                        const rd_kafka_message_t *rkm,
                        struct pending *p,
                        const char *code,
                        const char *detail)
{
    ks_log_warn("router", "%s/%" PRId32 "@%" PRId64 " to DLQ: %s: %s",
                rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset,
                code, detail);
    ks_metrics_add(rt->m_dlq, 1, code);
    rt->unacked++;
    if (ks_kafka_dlq(rt->rk_prod, rt->dlq_topic, rkm, code, detail, p) !=
        KS_OK) {
        rt->unacked--;
        free(p);
    }
}

/* The original headers without kascade's routing ones, plus new ones. */
static rd_kafka_headers_t *routing_headers(const rd_kafka_message_t *rkm,
                                           const char *tier,
                                           const char *reason)
{
    rd_kafka_headers_t *orig = NULL, *hdrs;

    if (rd_kafka_message_headers(rkm, &orig) == 0) {
        hdrs = rd_kafka_headers_copy(orig);
        rd_kafka_header_remove(hdrs, KS_HDR_TIER);
        rd_kafka_header_remove(hdrs, KS_HDR_HOP);
        rd_kafka_header_remove(hdrs, KS_HDR_REASON);
    } else {
        hdrs = rd_kafka_headers_new(3);
    }
    rd_kafka_header_add(hdrs, KS_HDR_TIER, -1, tier, -1);
    rd_kafka_header_add(hdrs, KS_HDR_HOP, -1, "0", 1);
    rd_kafka_header_add(hdrs, KS_HDR_REASON, -1, reason, -1);
    return hdrs;
}

static void route_one(struct router *rt,
                      const rd_kafka_message_t *rkm,
                      struct pending *p)
{
    struct ks_codec_error cerr = {0};
    struct ks_task *task = NULL;
    struct route_decision d;
    enum ks_format fmt;
    char ctype[64];
    const char *tier;

    if (ks_codec_detect(
            ks_kafka_header(rkm, KS_HDR_CONTENT_TYPE, ctype, sizeof(ctype)),
            rkm->payload, rkm->len, &fmt, &cerr) != KS_OK ||
        ks_task_decode(fmt, rkm->payload, rkm->len, &rt->cfg->limits, &task,
                       &cerr) != KS_OK) {
        dead_letter(rt, rkm, p, cerr.code, cerr.detail);
        return;
    }
    if (route_task(rt->cfg, task, &d) != 0) {
        dead_letter(rt, rkm, p, d.error, d.detail);
        goto out;
    }
    tier = rt->cfg->tiers[d.tier].name;
    ks_log_debug("router", "%s (%s) -> %s: %s", task->id, task->type, tier,
                 d.reason);
    rt->unacked++;
    if (ks_kafka_produce(rt->rk_prod, rt->tier_topics[d.tier], rkm->key,
                         rkm->key_len, rkm->payload, rkm->len,
                         routing_headers(rkm, tier, d.reason), p) != KS_OK) {
        /* Not acknowledged, so not committed: redelivered later. */
        rt->unacked--;
        free(p);
        goto out;
    }
    ks_metrics_add(rt->m_routed, 1, tier, d.reason);

out:
    ks_task_destroy(task);
}

static void handle(struct router *rt, rd_kafka_message_t *rkm)
{
    struct pending *p;

    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ks_log_warn("router", "consumer: %s", rd_kafka_message_errstr(rkm));
        }
        return;
    }
    p = ks_xcalloc(1, sizeof(*p));
    ks_offsets_track(rt->offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                     rkm->offset, &p->ticket);
    if (rkm->len > rt->cfg->limits.max_message_bytes) {
        char detail[128];

        snprintf(detail, sizeof(detail),
                 "message of %zu bytes is over "
                 "limits.max_message_bytes (%zu)",
                 rkm->len, rt->cfg->limits.max_message_bytes);
        dead_letter(rt, rkm, p, "too_large", detail);
        return;
    }
    route_one(rt, rkm, p);
}

/* Before partitions go: let every record produced for them be
 * acknowledged, so their stored offsets are final when librdkafka commits
 * on unassign. Records still unacknowledged at the deadline keep their
 * offsets uncommitted, and the new owner reprocesses them. */
static void on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct router *rt = opaque;

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (rd_kafka_flush(rt->rk_prod, (int)rt->cfg->drain_timeout_ms) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            ks_log_warn("router",
                        "revocation: %zu record(s) still "
                        "unacknowledged",
                        rt->unacked);
        }
        for (int i = 0; i < parts->cnt; i++) {
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
        }
    }
    ks_kafka_rebalance_apply(rk, err, parts);
}

static int subscribe(struct router *rt, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(topics, rt->tasks_topic,
                                      RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rt->rk_cons, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe to %s: %s", rt->tasks_topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static void register_metrics(struct router *rt)
{
    rt->metrics = ks_metrics_new();
    rt->m_routed = ks_metrics_family(
        rt->metrics, "kascade_tasks_routed_total",
        "Tasks published to a tier topic, by tier and deciding rule.",
        KS_METRIC_COUNTER, "tier,reason");
    rt->m_dlq = ks_metrics_family(rt->metrics, "kascade_dlq_total",
                                  "Messages written to the dead-letter "
                                  "topic, by error code.",
                                  KS_METRIC_COUNTER, "error");
    rt->m_inflight = ks_metrics_family(
        rt->metrics, "kascade_inflight",
        "Records produced and not yet acknowledged.", KS_METRIC_GAUGE, "tier");
}

struct router *router_new(const struct ks_config *cfg,
                          char *errstr,
                          size_t errstr_size)
{
    struct router *rt = ks_xcalloc(1, sizeof(*rt));
    char group[TOPIC_MAX];

    rt->cfg = cfg;
    rt->wake.fds[0] = rt->wake.fds[1] = -1;
    rt->offsets = ks_offsets_new();
    ks_config_topic(cfg, "tasks", rt->tasks_topic, TOPIC_MAX);
    ks_config_topic(cfg, "dlq", rt->dlq_topic, TOPIC_MAX);
    rt->tier_topics = ks_xcalloc(cfg->n_tiers, sizeof(*rt->tier_topics));
    for (size_t i = 0; i < cfg->n_tiers; i++) {
        char suffix[128];

        snprintf(suffix, sizeof(suffix), "tier.%s", cfg->tiers[i].name);
        ks_config_topic(cfg, suffix, rt->tier_topics[i], TOPIC_MAX);
    }
    register_metrics(rt);
    ks_config_topic(cfg, "router", group, sizeof(group));
    rt->rk_prod =
        ks_kafka_producer_new(cfg, on_delivery, rt, errstr, errstr_size);
    if (!rt->rk_prod) {
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_tiers; i++) {
        ks_kafka_warm(rt->rk_prod, (const char *const[]){rt->tier_topics[i]},
                      1);
    }
    ks_kafka_warm(rt->rk_prod, (const char *const[]){rt->dlq_topic}, 1);
    rt->rk_cons = ks_kafka_consumer_new(cfg, group, on_rebalance, rt, errstr,
                                        errstr_size);
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

static void serve_queues(struct router *rt)
{
    struct pollfd pfd = {.fd = rt->wake.fds[0], .events = POLLIN};
    rd_kafka_message_t *rkm;
    int n = 0;

    /* The pipe is written only when a queue turns non-empty, so each wake
     * drains the queues; the timeout bounds the wait regardless. */
    poll(&pfd, 1, 100);
    ks_kafka_wake_drain(&rt->wake);
    while (n++ < POLL_BATCH && !ks_stop_requested &&
           (rkm = rd_kafka_consumer_poll(rt->rk_cons, 0)) != NULL) {
        handle(rt, rkm);
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_poll(rt->rk_prod, 0);
    ks_metrics_set(rt->m_inflight, (double)rt->unacked, "");
}

int router_run(struct router *rt)
{
    int ret = 0;

    ks_log_info("router", "routing %s to %zu tier(s)", rt->tasks_topic,
                rt->cfg->n_tiers);
    while (!ks_stop_requested) {
        serve_queues(rt);
    }
    ks_log_info("router", "draining: %zu record(s) unacknowledged",
                rt->unacked);
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
    ks_metrics_destroy(rt->metrics);
    ks_offsets_destroy(rt->offsets);
    free(rt->tier_topics);
    free(rt);
}
