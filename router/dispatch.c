/*
 * dispatch.c - messages in: each consumed message gets its offset ticket
 * and a pending, is checked (size, format), decoded, decided by task.c or
 * escalate.c, and the outcome applied: a record produced, a Result, a DLQ
 * entry, or a copy on the deferred topic. Also the offsets window's
 * pause and resume per partition (limits.max_open_offsets).
 *
 * Invariants: every consumed message gets an offset ticket before any
 * handler runs, and exactly one record (or the DLQ entry standing for
 * it) carries its pending; the batch's transaction is begun before its
 * first record is produced.
 */
#include "dispatch.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/metrics.h"
#include "defer.h"
#include "escalate.h"
#include "kafka/offsets.h"
#include "produce.h"
#include "src.h"
#include "state.h"
#include "task.h"
#include "tenant.h"
#include "txn.h"
#include "wire/codec.h"

#include "base/banned.h"


/* Carries out out for the message s (not ROUTER_ACT_HOLD): begins the
 * batch's transaction, then produces. Takes ownership of p and of what
 * out owns. */
static void apply(struct router *rt,
                  const struct src *s,
                  struct pending *p,
                  struct router_outcome *out)
{
    assert(out->act != ROUTER_ACT_HOLD); /* the caller defers */
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

/* A message of the tasks topic: decoded, decided, or deferred (takes
 * ownership of p). */
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

    if (ks_task_decode_lent(fmt, s->payload, s->len, &rt->cfg->limits, &task,
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
 * paused (polling goes on) until it drains (router_resume_drained). */
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

void router_resume_drained(struct router *rt)
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

void router_handle(struct router *rt, const rd_kafka_message_t *rkm)
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
    p = router_pending_new(rt);
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
