/*
 * router.c - the routing loop: tasks and escalations in, one record out
 * for each (tier topic, Result, or DLQ).
 *
 * Commit rule (DESIGN.md section 8): every consumed message gets an offset
 * ticket; the record produced for it carries the ticket as its opaque;
 * the delivery report marks the ticket done, and only the highest
 * contiguous done offset is stored for auto-commit. A record whose
 * delivery finally fails is produced again from the delivery report, so
 * its offset is never skipped. On revocation and shutdown the producer is
 * flushed first, so the offsets stored before the commit are complete.
 *
 * Held records: a task whose tier is spent under `defer`, an escalation
 * waiting for such a tier, and an escalation whose context Redis could
 * not serve wait in memory with their tickets open, and are decided again
 * every second. Others pass them by (the offsets module commits around
 * them only up to the first held one of a partition). At
 * router.max_deferred the tasks partitions are paused (polling goes on,
 * librdkafka #2703) until half have left. Revocation drops the held
 * records of the lost partitions, shutdown drops them all: uncommitted,
 * they come back to whoever consumes next.
 *
 * Budgets are read from Redis at most once a second for all tiers; with
 * Redis down the budget step is skipped (workers still fail closed).
 *
 * Reload (SIGHUP) swaps the routing config between poll batches: nothing
 * keeps a pointer into a config across batches (held records keep their
 * own task, delivery reports only tickets), so the old one is freed at
 * once. Kafka, Redis, topic and metrics settings stay those of start-up.
 */
#include "router.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "budget.h"
#include "codec.h"
#include "ctx.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "route.h"
#include "store.h"
#include "util.h"

#include "banned.h"

#define TOPIC_MAX         256
#define POLL_BATCH        1000
#define HOLD_RETRY_MS     1000
#define BUDGET_REFRESH_MS 1000
#define MISSING_MAX       64

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

struct held {
    enum held_kind kind;
    struct pending *p;
    struct src src; /* points into the copies below */
    void *key;
    void *payload;
    rd_kafka_headers_t *hdrs;
    struct ks_task *task; /* HELD_TASK */
    enum ks_format fmt;
    struct ks_escalation *esc; /* HELD_ESCALATION */
    struct ks_ctx *ctx;        /* NULL until loaded */
};

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
    char tasks_topic[TOPIC_MAX];
    char esc_topic[TOPIC_MAX];
    char dlq_topic[TOPIC_MAX];
    char results_topic[TOPIC_MAX];
    char (*tier_topics)[TOPIC_MAX]; /* cfg->n_tiers */
    size_t unacked;                 /* produced, not yet acknowledged */
    /* budget snapshot */
    bool *tier_spent; /* cfg->n_tiers */
    bool budget_known;
    bool redis_down_logged;
    int64_t budget_read_ms; /* monotonic; 0: never */
    /* held records */
    struct held **held;
    size_t n_held, cap_held;
    bool paused;
    int64_t held_retry_ms; /* monotonic */
    /* transactions (router.transactions) */
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

/* ---- producing ---------------------------------------------------------- */

static struct src src_of(const rd_kafka_message_t *rkm, const char *topic)
{
    rd_kafka_headers_t *hdrs = NULL;
    struct src s = {topic,        rkm->partition, rkm->offset, rkm->key,
                    rkm->key_len, rkm->payload,   rkm->len,    NULL};

    if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
        s.hdrs = hdrs;
    }
    return s;
}

/* Produces one record for p; on a refused produce the ticket stays open
 * (uncommitted: redelivered later) and p is freed. */
static void txn_begin(struct router *rt);

static void produce(struct router *rt,
                    const char *topic,
                    const void *key,
                    size_t key_len,
                    const void *value,
                    size_t len,
                    rd_kafka_headers_t *hdrs,
                    struct pending *p)
{
    txn_begin(rt);
    rt->unacked++;
    if (ks_kafka_produce(rt->rk_prod, topic, key, key_len, value, len, hdrs,
                         p) != KS_OK) {
        rt->unacked--;
        free(p);
    }
}

static void on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct router *rt = opaque;
    struct pending *p = rkm->_private;
    rd_kafka_headers_t *hdrs = NULL;
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int64_t pos;

    if (rkm->err && rt->txn) {
        /* The transaction cannot commit now: it is aborted and the input
         * rewound (txn_commit), so nothing is produced again here. A
         * missing reply_to is remembered, or it would fail every retry. */
        if (p->is_result && rt->n_missing < MISSING_MAX &&
            (rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
             rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)) {
            rt->missing_reply_to[rt->n_missing++] = ks_xstrdup(topic);
        }
        ks_log_warn("router", "delivery to %s failed in a transaction (%s)",
                    topic, rd_kafka_err2str(rkm->err));
        if (rkm->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
            rkm->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
            rt->txn_failed = true; /* (a purge is our own abort's) */
        }
        rt->unacked--;
        free(p);
        return;
    }
    if (rkm->err) {
        if (p->is_result && strcmp(topic, rt->results_topic) != 0 &&
            (rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
             rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)) {
            /* A reply_to naming no topic: the answer goes to the results
             * topic rather than nowhere. */
            ks_log_warn("router",
                        "reply_to topic %s does not exist: the "
                        "result goes to %s",
                        topic, rt->results_topic);
            topic = rt->results_topic;
        } else {
            /* librdkafka gave up after its own retries: produce again
             * rather than lose the record or commit past it. */
            ks_log_warn("router",
                        "delivery to %s failed (%s): producing "
                        "again",
                        topic, rd_kafka_err2str(rkm->err));
        }
        if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
            hdrs = rd_kafka_headers_copy(hdrs);
        }
        if (ks_kafka_produce(rk, topic, rkm->key, rkm->key_len, rkm->payload,
                             rkm->len, hdrs, p) == KS_OK) {
            return;
        }
        ks_log_error("router", "cannot produce again; the offset stays "
                               "uncommitted and the record will be "
                               "redelivered");
        rt->unacked--;
        free(p);
        return;
    }
    rt->unacked--;
    pos = ks_offsets_done(rt->offsets, &p->ticket);
    if (pos >= 0 && rt->txn) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
            rt->txn_offsets, p->ticket.topic, p->ticket.partition);

        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(
                rt->txn_offsets, p->ticket.topic, p->ticket.partition);
        }
        tp->offset = pos;
    } else if (pos >= 0) {
        ks_kafka_store_offset(rt->rk_cons, p->ticket.topic, p->ticket.partition,
                              pos);
    }
    free(p);
}

static void dead_letter(struct router *rt,
                        const struct src *s,
                        struct pending *p,
                        const char *code,
                        const char *detail)
{
    rd_kafka_headers_t *hdrs;
    char source[512];

    ks_log_warn("router", "%s/%" PRId32 "@%" PRId64 " to DLQ: %s: %s", s->topic,
                s->partition, s->offset, code, detail);
    ks_metrics_add(rt->m_dlq, 1, code);
    hdrs = s->hdrs ? rd_kafka_headers_copy(s->hdrs) : rd_kafka_headers_new(3);
    snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64, s->topic,
             s->partition, s->offset);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR, -1, code, -1);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR_DETAIL, -1, detail, -1);
    rd_kafka_header_add(hdrs, KS_HDR_SOURCE, -1, source, -1);
    produce(rt, rt->dlq_topic, s->key, s->key_len, s->payload, s->len, hdrs, p);
}

/* The original headers without kascade's routing ones, plus new ones. */
static rd_kafka_headers_t *routing_headers(const rd_kafka_headers_t *orig,
                                           const char *tier,
                                           uint32_t hop,
                                           const char *reason)
{
    rd_kafka_headers_t *hdrs;
    char hopbuf[16];

    if (orig) {
        hdrs = rd_kafka_headers_copy(orig);
        rd_kafka_header_remove(hdrs, KS_HDR_TIER);
        rd_kafka_header_remove(hdrs, KS_HDR_HOP);
        rd_kafka_header_remove(hdrs, KS_HDR_REASON);
    } else {
        hdrs = rd_kafka_headers_new(4);
    }
    snprintf(hopbuf, sizeof(hopbuf), "%u", (unsigned)hop);
    rd_kafka_header_add(hdrs, KS_HDR_TIER, -1, tier, -1);
    rd_kafka_header_add(hdrs, KS_HDR_HOP, -1, hopbuf, -1);
    rd_kafka_header_add(hdrs, KS_HDR_REASON, -1, reason, -1);
    return hdrs;
}

/* Publishes res (in fmt) to the task's reply_to or the results topic. */
static void publish_result(struct router *rt,
                           const struct ks_task *task,
                           enum ks_format fmt,
                           const struct ks_result *res,
                           const struct src *s,
                           struct pending *p)
{
    const char *topic = task->reply_to ? task->reply_to : rt->results_topic;
    rd_kafka_headers_t *hdrs = NULL;
    char *buf = NULL;
    size_t len = 0;

    for (size_t i = 0; i < rt->n_missing; i++) {
        if (strcmp(rt->missing_reply_to[i], topic) == 0) {
            topic = rt->results_topic;
        }
    }
    if (ks_result_encode(fmt, res, &buf, &len) != KS_OK) {
        dead_letter(rt, s, p, "invalid", "the result cannot be encoded");
        return;
    }
    if (fmt == KS_FORMAT_PROTOBUF) {
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, KS_HDR_CONTENT_TYPE, -1, KS_CONTENT_PROTOBUF,
                            -1);
    }
    ks_log_info("router", "%s: result %s (%s)", res->id,
                ks_status_str(res->status), res->error ? res->error : "");
    ks_metrics_add(rt->m_results, 1, ks_status_str(res->status));
    p->is_result = true;
    produce(rt, topic, task->id, strlen(task->id), buf, len, hdrs, p);
    free(buf);
}

/* ---- the outside world: budgets and the score --------------------------- */

/* Refreshes the per-tier budget flags when they are older than a second.
 * Returns the state route_task() takes (tier_spent NULL when unknown). */
static struct route_state world(struct router *rt, const struct ks_task *task)
{
    struct route_state st = {-1, NULL};
    int64_t mono = ks_mono_ms();

    if (rt->budget_read_ms == 0 ||
        mono - rt->budget_read_ms >= BUDGET_REFRESH_MS) {
        int64_t now = ks_config_budget_now_ms(rt->cfg);
        bool ok = true;
        char day[9];

        rt->budget_read_ms = mono;
        ks_budget_day(now, day);
        for (size_t i = 0; ok && i < rt->cfg->n_tiers; i++) {
            const struct ks_tier_cfg *t = &rt->cfg->tiers[i];
            struct ks_budget_state bs;

            if (ks_budget_read(rt->rs, "tier", t->name, day,
                               t->daily_budget_micro, now, &bs) != KS_OK) {
                ok = false;
                break;
            }
            rt->tier_spent[i] =
                bs.limit_micro != KS_BUDGET_NO_LIMIT &&
                bs.spent_micro + bs.reserved_micro >= bs.limit_micro;
        }
        if (!ok && !rt->redis_down_logged) {
            ks_log_warn("router", "redis unreachable: routing without the "
                                  "budget step until it is back");
        } else if (ok && rt->redis_down_logged) {
            ks_log_info("router", "redis is back: budgets apply again");
        }
        rt->redis_down_logged = !ok;
        rt->budget_known = ok;
    }
    st.tier_spent = rt->budget_known ? rt->tier_spent : NULL;
    if (task && rt->cfg->score_model) {
        if (rt->model) {
            struct ks_buf text;
            char *s;

            ks_buf_init(&text);
            if (task->input) {
                ks_buf_append(&text, task->input, strlen(task->input));
            }
            for (size_t i = 0; i < task->n_messages; i++) {
                ks_buf_append(&text, "\n", text.len ? 1 : 0);
                ks_buf_append(&text, task->messages[i].content,
                              strlen(task->messages[i].content));
            }
            s = ks_buf_take(&text);
            st.score =
                rt->scorer->score(rt->model, s ? s : "", s ? strlen(s) : 0);
            free(s);
        } else if (!rt->no_scorer_logged) {
            ks_log_warn("router", "routing.score_model is set but this "
                                  "router has no scorer: score step skipped");
            rt->no_scorer_logged = true;
        }
    }
    return st;
}

/* ---- held records ------------------------------------------------------- */

static void *memdup(const void *buf, size_t len)
{
    void *copy = ks_xmalloc(len ? len : 1);

    memcpy(copy, buf, len);
    return copy;
}

static void held_free(struct held *h)
{
    if (!h) {
        return;
    }
    free(h->key);
    free(h->payload);
    if (h->hdrs) {
        rd_kafka_headers_destroy(h->hdrs);
    }
    ks_task_destroy(h->task);
    ks_escalation_destroy(h->esc);
    ks_ctx_destroy(h->ctx);
    free(h);
}

/* Keeps a copy of s with p's ticket open. Takes ownership of task, esc and
 * ctx (any may be NULL). */
static void hold(struct router *rt,
                 enum held_kind kind,
                 const struct src *s,
                 struct pending *p,
                 struct ks_task *task,
                 enum ks_format fmt,
                 struct ks_escalation *esc,
                 struct ks_ctx *ctx)
{
    struct held *h = ks_xcalloc(1, sizeof(*h));

    h->kind = kind;
    h->p = p;
    h->key = s->key ? memdup(s->key, s->key_len) : NULL;
    h->payload = memdup(s->payload, s->len);
    h->hdrs = s->hdrs ? rd_kafka_headers_copy(s->hdrs) : NULL;
    h->src = *s;
    h->src.topic = p->ticket.topic;
    h->src.key = h->key;
    h->src.payload = h->payload;
    h->src.hdrs = h->hdrs;
    h->task = task;
    h->fmt = fmt;
    h->esc = esc;
    h->ctx = ctx;
    if (rt->n_held == rt->cap_held) {
        rt->cap_held = rt->cap_held ? rt->cap_held * 2 : 64;
        rt->held = ks_xrealloc(rt->held, rt->cap_held * sizeof(*rt->held));
    }
    rt->held[rt->n_held++] = h;
}

/* Pauses or resumes the assigned partitions of the tasks topic. */
static void set_paused(struct router *rt, bool pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL, *tasks;

    if (pause == rt->paused || rd_kafka_assignment(rt->rk_cons, &parts) !=
                                   RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    tasks = rd_kafka_topic_partition_list_new(parts->cnt ? parts->cnt : 1);
    for (int i = 0; i < parts->cnt; i++) {
        if (strcmp(parts->elems[i].topic, rt->tasks_topic) == 0) {
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
                pause ? "paused" : "resumed", tasks->cnt, rt->n_held);
    rd_kafka_topic_partition_list_destroy(tasks);
    rd_kafka_topic_partition_list_destroy(parts);
    rt->paused = pause;
}

static void update_pause(struct router *rt)
{
    size_t max = (size_t)rt->cfg->router_max_deferred;

    if (!rt->paused && rt->n_held >= max) {
        set_paused(rt, true);
    } else if (rt->paused && rt->n_held <= max / 2) {
        set_paused(rt, false);
    }
}

/* ---- tasks -------------------------------------------------------------- */

/* Decides task (taking ownership) and acts. Returns the task back when it
 * must be held (ROUTE_DEFER), else NULL (consumed). */
static struct ks_task *decide_task(struct router *rt,
                                   const struct src *s,
                                   struct pending *p,
                                   struct ks_task *task,
                                   enum ks_format fmt)
{
    struct route_state st = world(rt, task);
    struct route_decision d;
    struct ks_result *res;
    const char *tier;

    if (route_task(rt->cfg, task, &st, &d) != 0) {
        dead_letter(rt, s, p, d.error, d.detail);
        goto out;
    }
    tier = rt->cfg->tiers[d.tier].name;
    switch (d.action) {
    case ROUTE_DEFER:
        return task;
    case ROUTE_REJECT:
    case ROUTE_STOP:
        res = ks_result_new();
        res->id = ks_xstrdup(task->id);
        res->type = ks_xstrdup(task->type);
        res->tenant = task->tenant ? ks_xstrdup(task->tenant) : NULL;
        res->status = d.stop_status;
        res->error = ks_xstrdup(d.detail);
        ks_metrics_add(rt->m_routed, 1, tier, d.reason);
        publish_result(rt, task, fmt, res, s, p);
        ks_result_destroy(res);
        goto out;
    case ROUTE_PUBLISH:
        break;
    }
    ks_log_debug("router", "%s (%s) -> %s: %s", task->id, task->type, tier,
                 d.reason);
    ks_metrics_add(rt->m_routed, 1, tier, d.reason);
    produce(rt, rt->tier_topics[d.tier], s->key, s->key_len, s->payload, s->len,
            routing_headers(s->hdrs, tier, 0, d.reason), p);

out:
    ks_task_destroy(task);
    return NULL;
}

static void task_one(struct router *rt, const struct src *s, struct pending *p)
{
    struct ks_codec_error cerr = {0};
    struct ks_task *task = NULL;
    enum ks_format fmt;
    char ctype[64] = "";
    const void *ct = NULL;
    size_t ctlen = 0;

    if (s->hdrs &&
        rd_kafka_header_get_last(s->hdrs, KS_HDR_CONTENT_TYPE, &ct, &ctlen) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        ct) {
        snprintf(ctype, sizeof(ctype), "%.*s", (int)ctlen, (const char *)ct);
    }
    if (ks_codec_detect(ct ? ctype : NULL, s->payload, s->len, &fmt, &cerr) !=
            KS_OK ||
        ks_task_decode(fmt, s->payload, s->len, &rt->cfg->limits, &task,
                       &cerr) != KS_OK) {
        dead_letter(rt, s, p, cerr.code, cerr.detail);
        return;
    }
    task = decide_task(rt, s, p, task, fmt);
    if (task) {
        ks_log_info("router", "%s: held (budget_defer)", task->id);
        hold(rt, HELD_TASK, s, p, task, fmt, NULL, NULL);
    }
}

/* ---- escalations -------------------------------------------------------- */

/* Ends an escalation: the best answer so far, or a failure. */
static void finish_escalation(struct router *rt,
                              const struct src *s,
                              struct pending *p,
                              const struct ks_ctx *ctx,
                              const struct route_decision *d)
{
    int best = ks_ctx_best(ctx);
    struct ks_result *res;
    char why[400];

    if (best < 0) {
        snprintf(why, sizeof(why), "no attempt produced an output (%s)",
                 d->detail);
        res = ks_ctx_result(ctx, -1, KS_STATUS_FAILED, why);
    } else {
        res = ks_ctx_result(ctx, best, d->stop_status, d->detail);
    }
    publish_result(rt, ctx->task, ctx->fmt, res, s, p);
    ks_result_destroy(res);
}

/* Decides an escalation whose context is loaded. Takes ownership of esc
 * and ctx; returns true when they were kept for a later retry (held). */
static bool decide_escalation(struct router *rt,
                              const struct src *s,
                              struct pending *p,
                              struct ks_escalation *esc,
                              struct ks_ctx *ctx)
{
    int from = ks_config_tier_index(rt->cfg, esc->from_tier);
    int64_t cost = esc->cost_so_far_micro > ctx->cost_micro
                       ? esc->cost_so_far_micro
                       : ctx->cost_micro;
    struct route_state st;
    struct route_decision d;
    char reason[160];
    char *buf = NULL;
    size_t len = 0;
    rd_kafka_headers_t *hdrs;
    const char *tier;

    if (from < 0) {
        char detail[200];

        snprintf(detail, sizeof(detail),
                 "field 'from_tier': no tier named '%s'", esc->from_tier);
        dead_letter(rt, s, p, "invalid", detail);
        goto out;
    }
    st = world(rt, NULL);
    route_escalation(rt->cfg, ctx->task, from, esc->hop, cost, &st, &d);
    switch (d.action) {
    case ROUTE_DEFER:
        return true;
    case ROUTE_STOP:
    case ROUTE_REJECT:
        ks_log_info("router", "%s: escalation from %s stops: %s", ctx->task->id,
                    esc->from_tier, d.reason);
        finish_escalation(rt, s, p, ctx, &d);
        goto out;
    case ROUTE_PUBLISH:
        break;
    }
    if (ks_task_encode(ctx->fmt, ctx->task, &buf, &len) != KS_OK) {
        dead_letter(rt, s, p, "invalid",
                    "the context's task cannot be "
                    "encoded");
        goto out;
    }
    tier = rt->cfg->tiers[d.tier].name;
    snprintf(reason, sizeof(reason), "escalation:%s",
             esc->reason ? esc->reason : "unknown");
    hdrs = routing_headers(NULL, tier, esc->hop + 1, reason);
    if (ctx->fmt == KS_FORMAT_PROTOBUF) {
        rd_kafka_header_add(hdrs, KS_HDR_CONTENT_TYPE, -1, KS_CONTENT_PROTOBUF,
                            -1);
    }
    ks_log_info("router", "%s: escalation %s -> %s (hop %u, %s)", ctx->task->id,
                esc->from_tier, tier, (unsigned)esc->hop + 1, reason);
    ks_metrics_add(rt->m_escalations, 1, esc->from_tier,
                   esc->reason ? esc->reason : "unknown");
    produce(rt, rt->tier_topics[d.tier], ctx->task->id, strlen(ctx->task->id),
            buf, len, hdrs, p);
    free(buf);

out:
    ks_escalation_destroy(esc);
    ks_ctx_destroy(ctx);
    return false;
}

/* Loads the context of esc. Returns KS_OK with *ctxp, KS_ERR_RETRY (Redis
 * down: hold and retry), or KS_ERR_INVALID after dead-lettering. */
static enum ks_err load_context(struct router *rt,
                                const struct src *s,
                                struct pending *p,
                                const struct ks_escalation *esc,
                                struct ks_ctx **ctxp)
{
    char errstr[256], detail[400];
    enum ks_err err;

    *ctxp = NULL;
    err = ks_ctx_load(rt->rs, esc->context_key, &rt->cfg->limits, ctxp, errstr,
                      sizeof(errstr));
    if (err == KS_OK || err == KS_ERR_RETRY) {
        return err;
    }
    snprintf(detail, sizeof(detail), "escalation %s: %s", esc->id, errstr);
    dead_letter(rt, s, p, "invalid", detail);
    return KS_ERR_INVALID;
}

static void escalation_one(struct router *rt,
                           const struct src *s,
                           struct pending *p)
{
    struct ks_codec_error cerr = {0};
    struct ks_escalation *esc = NULL;
    struct ks_ctx *ctx = NULL;
    enum ks_format fmt;
    char ctype[64] = "";
    const void *ct = NULL;
    size_t ctlen = 0;
    enum ks_err err;

    if (s->hdrs &&
        rd_kafka_header_get_last(s->hdrs, KS_HDR_CONTENT_TYPE, &ct, &ctlen) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        ct) {
        snprintf(ctype, sizeof(ctype), "%.*s", (int)ctlen, (const char *)ct);
    }
    if (ks_codec_detect(ct ? ctype : NULL, s->payload, s->len, &fmt, &cerr) !=
            KS_OK ||
        ks_escalation_decode(fmt, s->payload, s->len, &rt->cfg->limits, &esc,
                             &cerr) != KS_OK) {
        dead_letter(rt, s, p, cerr.code, cerr.detail);
        return;
    }
    err = load_context(rt, s, p, esc, &ctx);
    if (err == KS_ERR_INVALID) {
        ks_escalation_destroy(esc);
        return;
    }
    if (err == KS_ERR_RETRY) {
        ks_log_warn("router", "%s: context not loaded (redis down): held",
                    esc->id);
        hold(rt, HELD_ESCALATION, s, p, NULL, fmt, esc, NULL);
        return;
    }
    if (decide_escalation(rt, s, p, esc, ctx)) {
        ks_log_info("router", "%s: escalation held (budget_defer)", esc->id);
        hold(rt, HELD_ESCALATION, s, p, NULL, fmt, esc, ctx);
    }
}

/* ---- the held list ------------------------------------------------------ */

/* Decides h again. Returns true when it is done (and may be freed). */
static bool retry_held(struct router *rt, struct held *h)
{
    enum ks_err err;

    if (h->kind == HELD_TASK) {
        h->task = decide_task(rt, &h->src, h->p, h->task, h->fmt);
        return h->task == NULL;
    }
    if (!h->ctx) {
        err = load_context(rt, &h->src, h->p, h->esc, &h->ctx);
        if (err == KS_ERR_RETRY) {
            return false;
        }
        if (err == KS_ERR_INVALID) {
            return true;
        }
    }
    if (decide_escalation(rt, &h->src, h->p, h->esc, h->ctx)) {
        return false;
    }
    h->esc = NULL; /* decide_escalation took them */
    h->ctx = NULL;
    return true;
}

static void serve_held(struct router *rt)
{
    size_t keep = 0;
    int64_t mono = ks_mono_ms();

    if (rt->n_held == 0 || mono < rt->held_retry_ms) {
        return;
    }
    rt->held_retry_ms = mono + HOLD_RETRY_MS;
    for (size_t i = 0; i < rt->n_held; i++) {
        struct held *h = rt->held[i];

        if (retry_held(rt, h)) {
            h->p = NULL; /* handed on with the produced record */
            held_free(h);
        } else {
            rt->held[keep++] = h;
        }
    }
    if (keep < rt->n_held) {
        ks_log_info("router", "released %zu held record(s), %zu still held",
                    rt->n_held - keep, keep);
    }
    rt->n_held = keep;
}

/* Drops the held records of the partitions in parts (all when NULL):
 * their offsets stay uncommitted. */
static void drop_held(struct router *rt,
                      const rd_kafka_topic_partition_list_t *parts)
{
    size_t keep = 0;

    for (size_t i = 0; i < rt->n_held; i++) {
        struct held *h = rt->held[i];
        bool drop = !parts;

        for (int j = 0; parts && j < parts->cnt; j++) {
            drop |= parts->elems[j].partition == h->src.partition &&
                    strcmp(parts->elems[j].topic, h->src.topic) == 0;
        }
        if (drop) {
            free(h->p);
            h->p = NULL;
            held_free(h);
        } else {
            rt->held[keep++] = h;
        }
    }
    if (keep < rt->n_held) {
        ks_log_info("router", "dropped %zu held record(s) uncommitted",
                    rt->n_held - keep);
    }
    rt->n_held = keep;
}

/* ---- transactions ------------------------------------------------------- */

/* router.transactions: each poll batch is one Kafka transaction holding
 * the records produced for the batch and the consumed positions they
 * complete (send_offsets_to_transaction with the group's metadata), so a
 * read_committed reader sees a task's tier record exactly when its offset
 * is committed: a crash between the two cannot duplicate it. Held records
 * keep their tickets open across transactions, as without. An abortable
 * error aborts the transaction and rewinds the input to the committed
 * offsets (held records are dropped: they are consumed again); a fatal
 * one (fenced by a newer instance with the same transactional.id) stops
 * the router. */

static bool txn_error(const char *what, rd_kafka_error_t *e)
{
    if (!e) {
        return false;
    }
    ks_log_error("router", "transaction %s: %s", what,
                 rd_kafka_error_string(e));
    if (rd_kafka_error_is_fatal(e)) {
        ks_log_error("router", "fatal transaction error: stopping");
        ks_stop_requested = 1;
    }
    rd_kafka_error_destroy(e);
    return true;
}

static void txn_begin(struct router *rt)
{
    if (!rt->txn || rt->txn_open) {
        return;
    }
    if (!txn_error("begin", rd_kafka_begin_transaction(rt->rk_prod))) {
        rt->txn_open = true;
    }
}

/* Seeks every assigned partition back to its committed offset and forgets
 * what was consumed after it. */
static void rewind_input(struct router *rt)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_error_t *e;

    drop_held(rt, NULL);
    if (rd_kafka_assignment(rt->rk_cons, &parts) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    if (parts->cnt > 0 && rd_kafka_committed(rt->rk_cons, parts, 10000) ==
                              RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt; i++) {
            if (parts->elems[i].offset < 0) {
                parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            }
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
        }
        e = rd_kafka_seek_partitions(rt->rk_cons, parts, 10000);
        if (e) {
            ks_log_error("router", "rewind: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    ks_log_warn("router",
                "transaction aborted: rewound %d partition(s) to "
                "their committed offsets",
                parts->cnt);
    rd_kafka_topic_partition_list_destroy(parts);
}

static void txn_abort(struct router *rt)
{
    txn_error("abort", rd_kafka_abort_transaction(
                           rt->rk_prod, (int)rt->cfg->drain_timeout_ms));
    rt->txn_open = false;
    rt->txn_failed = false;
    rd_kafka_topic_partition_list_destroy(rt->txn_offsets);
    rt->txn_offsets = rd_kafka_topic_partition_list_new(16);
    rewind_input(rt);
}

/* Ends the open transaction: waits for its records, adds the positions
 * they complete, commits. */
static void txn_commit(struct router *rt)
{
    rd_kafka_consumer_group_metadata_t *cgmd;
    rd_kafka_error_t *e = NULL;

    if (!rt->txn || !rt->txn_open) {
        return;
    }
    rd_kafka_flush(rt->rk_prod, (int)rt->cfg->drain_timeout_ms);
    if (rt->txn_failed || rt->unacked > 0) {
        txn_abort(rt);
        return;
    }
    if (rt->txn_offsets->cnt > 0) {
        cgmd = rd_kafka_consumer_group_metadata(rt->rk_cons);
        e = rd_kafka_send_offsets_to_transaction(
            rt->rk_prod, rt->txn_offsets, cgmd, (int)rt->cfg->drain_timeout_ms);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    }
    for (int tries = 0; !e && tries < 3; tries++) {
        e = rd_kafka_commit_transaction(rt->rk_prod,
                                        (int)rt->cfg->drain_timeout_ms);
        if (!e) {
            rt->txn_open = false;
            rd_kafka_topic_partition_list_destroy(rt->txn_offsets);
            rt->txn_offsets = rd_kafka_topic_partition_list_new(16);
            return;
        }
        if (!rd_kafka_error_is_retriable(e)) {
            break;
        }
        rd_kafka_error_destroy(e);
        e = NULL;
    }
    if (e && rd_kafka_error_txn_requires_abort(e)) {
        txn_error("commit", e);
        txn_abort(rt);
        return;
    }
    if (txn_error("commit", e) && !ks_stop_requested) {
        txn_abort(rt);
    }
}

/* ---- consuming ---------------------------------------------------------- */

static void handle(struct router *rt, rd_kafka_message_t *rkm)
{
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
    s = src_of(rkm, p->ticket.topic);
    if (rkm->len > rt->cfg->limits.max_message_bytes) {
        char detail[128];

        snprintf(detail, sizeof(detail),
                 "message of %zu bytes is over "
                 "limits.max_message_bytes (%zu)",
                 rkm->len, rt->cfg->limits.max_message_bytes);
        dead_letter(rt, &s, p, "too_large", detail);
        return;
    }
    if (strcmp(s.topic, rt->esc_topic) == 0) {
        escalation_one(rt, &s, p);
    } else {
        task_one(rt, &s, p);
    }
}

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

    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        txn_commit(rt); /* the batch so far, before the partitions go */
        if (rd_kafka_flush(rt->rk_prod, (int)rt->cfg->drain_timeout_ms) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            ks_log_warn("router",
                        "revocation: %zu record(s) still "
                        "unacknowledged",
                        rt->unacked);
        }
        drop_held(rt, parts);
        for (int i = 0; i < parts->cnt; i++) {
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
        }
        /* librdkafka keeps a pause across revocation. */
        rd_kafka_resume_partitions(rk, parts);
    }
    ks_kafka_rebalance_apply(rk, err, parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && rt->paused) {
        rt->paused = false;
        set_paused(rt, true);
    }
}

static int subscribe(struct router *rt, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(2);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(topics, rt->tasks_topic,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, rt->esc_topic,
                                      RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rt->rk_cons, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe to %s and %s: %s",
                 rt->tasks_topic, rt->esc_topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
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
    rt->m_held = ks_metrics_family(
        rt->metrics, "kascade_router_held",
        "Tasks and escalations held in memory (budget_defer, context not "
        "loadable yet).",
        KS_METRIC_GAUGE, "");
    rt->m_reloads =
        ks_metrics_family(rt->metrics, "kascade_config_reloads_total",
                          "SIGHUP config reloads, by result (ok, error).",
                          KS_METRIC_COUNTER, "result");
}

/* (Re)builds what depends on the tier list. */
static void build_tiers(struct router *rt)
{
    free(rt->tier_topics);
    free(rt->tier_spent);
    rt->tier_topics = ks_xcalloc(rt->cfg->n_tiers, sizeof(*rt->tier_topics));
    rt->tier_spent = ks_xcalloc(rt->cfg->n_tiers, sizeof(*rt->tier_spent));
    for (size_t i = 0; i < rt->cfg->n_tiers; i++) {
        char suffix[128];

        snprintf(suffix, sizeof(suffix), "tier.%s", rt->cfg->tiers[i].name);
        ks_config_topic(rt->boot, suffix, rt->tier_topics[i], TOPIC_MAX);
    }
    rt->budget_read_ms = 0; /* read the new tiers' budgets now */
}

static void kafka_add(struct ks_config *cfg, const char *key, const char *val)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return; /* the user's setting wins */
        }
    }
    cfg->kafka =
        ks_xrealloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof(*cfg->kafka));
    cfg->kafka[cfg->n_kafka].key = ks_xstrdup(key);
    cfg->kafka[cfg->n_kafka++].value = ks_xstrdup(val);
}

/* transactional.id "<topics.prefix>router-<instance>" (instance:
 * router.instance, else the host name): stable across restarts of one
 * instance, so a restarted router fences its predecessor and its open
 * transaction is aborted at once. Offsets go through the transactions, so
 * the consumer does not auto-commit. */
static void txn_settings(struct ks_config *cfg)
{
    char host[65] = "", id[TOPIC_MAX + 80];
    const char *instance = cfg->router_instance;

    if (!instance) {
        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) {
            snprintf(host, sizeof(host), "router");
        }
        instance = host;
    }
    snprintf(id, sizeof(id), "%srouter-%s", cfg->topic_prefix, instance);
    kafka_add(cfg, "transactional.id", id);
    kafka_add(cfg, "enable.auto.commit", "false");
    ks_log_info("router", "transactions on: transactional.id %s", id);
}

struct router *router_new(struct ks_config *cfg,
                          const struct ks_cmdline *cl,
                          char *errstr,
                          size_t errstr_size)
{
    struct router *rt = ks_xcalloc(1, sizeof(*rt));
    char group[TOPIC_MAX];

    rt->boot = rt->cfg = cfg;
    rt->cl = cl;
    rt->n_kafka_user = cfg->n_kafka;
    rt->txn = cfg->router_transactions;
    rt->txn_offsets = rd_kafka_topic_partition_list_new(16);
    if (rt->txn) {
        txn_settings(cfg);
    }
    rt->wake.fds[0] = rt->wake.fds[1] = -1;
    rt->offsets = ks_offsets_new();
    ks_config_topic(cfg, "tasks", rt->tasks_topic, TOPIC_MAX);
    ks_config_topic(cfg, "escalations", rt->esc_topic, TOPIC_MAX);
    ks_config_topic(cfg, "dlq", rt->dlq_topic, TOPIC_MAX);
    ks_config_topic(cfg, "results", rt->results_topic, TOPIC_MAX);
    build_tiers(rt);
    register_metrics(rt);
    rt->rs = ks_store_new(cfg, errstr, errstr_size);
    if (!rt->rs) {
        goto fail;
    }
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
    if (rt->txn &&
        txn_error("init", rd_kafka_init_transactions(rt->rk_prod, 30000))) {
        snprintf(errstr, errstr_size,
                 "router.transactions: init_transactions failed (see the "
                 "log; the broker needs transaction support)");
        goto fail;
    }
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

/* ---- reload ------------------------------------------------------------- */

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Start-up-only settings of next that differ from boot are logged and put
 * back to boot's values. */
static void keep_connection_settings(const struct ks_config *boot,
                                     size_t n_kafka_user,
                                     struct ks_config *next)
{
    bool kafka = n_kafka_user != next->n_kafka;

    for (size_t i = 0; !kafka && i < n_kafka_user; i++) {
        kafka = str_differs(boot->kafka[i].key, next->kafka[i].key) ||
                str_differs(boot->kafka[i].value, next->kafka[i].value);
    }
    if (kafka) {
        ks_log_warn("router", "reload: kafka settings changed; they need a "
                              "restart and are ignored");
    }
    if (str_differs(boot->redis_url, next->redis_url) ||
        str_differs(boot->redis_prefix, next->redis_prefix) ||
        boot->redis_timeout_ms != next->redis_timeout_ms) {
        ks_log_warn("router", "reload: redis settings changed; they need a "
                              "restart and are ignored");
    }
    if (str_differs(boot->topic_prefix, next->topic_prefix)) {
        ks_log_warn("router", "reload: topics.prefix changed; it needs a "
                              "restart and is ignored");
        free(next->topic_prefix);
        next->topic_prefix = ks_xstrdup(boot->topic_prefix);
    }
    if (boot->router_transactions != next->router_transactions ||
        str_differs(boot->router_instance, next->router_instance)) {
        ks_log_warn("router", "reload: router.transactions / instance "
                              "changed; they need a restart and are ignored");
    }
    if (str_differs(boot->metrics_host, next->metrics_host) ||
        boot->metrics_port != next->metrics_port) {
        ks_log_warn("router", "reload: metrics settings changed; they need "
                              "a restart and are ignored");
    }
}

static void reload(struct router *rt)
{
    struct ks_config *next;
    void *model = NULL;
    char errstr[512];

    ks_log_info("router", "SIGHUP: reloading %s", rt->cl->config_path);
    next = ks_config_load(rt->cl->config_path, rt->cl->overrides,
                          rt->cl->n_overrides, errstr, sizeof(errstr));
    if (!next) {
        ks_log_error("router", "reload failed, keeping the old config: %s",
                     errstr);
        ks_metrics_add(rt->m_reloads, 1, "error");
        return;
    }
    if (next->score_model && rt->scorer) {
        /* Loaded again even under the same path: a retrained model is
         * usually written over the old file. */
        model = rt->scorer->load(next->score_model, errstr, sizeof(errstr));
        if (!model) {
            ks_log_error("router",
                         "reload failed, keeping the old config: %s: key "
                         "'routing.score_model': %s",
                         next->path, errstr);
            ks_config_destroy(next);
            ks_metrics_add(rt->m_reloads, 1, "error");
            return;
        }
    }
    keep_connection_settings(rt->boot, rt->n_kafka_user, next);
    if (rt->model) {
        rt->scorer->destroy(rt->model);
    }
    rt->model = model;
    rt->no_scorer_logged = false;
    if (rt->cfg != rt->boot) {
        ks_config_destroy(rt->cfg);
    }
    rt->cfg = next;
    build_tiers(rt);
    for (size_t i = 0; i < rt->cfg->n_tiers; i++) {
        ks_kafka_warm(rt->rk_prod, (const char *const[]){rt->tier_topics[i]},
                      1);
    }
    ks_metrics_add(rt->m_reloads, 1, "ok");
    ks_log_info("router",
                "reloaded: %zu tier(s), %zu task type(s), %zu "
                "rule(s)",
                rt->cfg->n_tiers, rt->cfg->n_routes, rt->cfg->n_rules);
}

/* ---- the loop ----------------------------------------------------------- */

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
    serve_held(rt);
    txn_commit(rt);
    update_pause(rt);
    ks_metrics_set(rt->m_inflight, (double)rt->unacked, "");
    ks_metrics_set(rt->m_held, (double)rt->n_held);
}

int router_run(struct router *rt)
{
    int ret = 0;

    ks_log_info("router", "routing %s and %s to %zu tier(s)", rt->tasks_topic,
                rt->esc_topic, rt->cfg->n_tiers);
    while (!ks_stop_requested) {
        if (ks_reload_requested) {
            ks_reload_requested = 0;
            reload(rt); /* between batches: nothing points into the config */
        }
        serve_queues(rt);
    }
    ks_log_info("router",
                "draining: %zu record(s) unacknowledged, %zu held "
                "(left uncommitted)",
                rt->unacked, rt->n_held);
    drop_held(rt, NULL);
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
    drop_held(rt, NULL);
    free(rt->held);
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
