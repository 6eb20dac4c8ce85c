/*
 * hold.c - held records: a task whose tier is spent under `defer`,
 * an escalation waiting for such a tier, and an escalation whose context
 * Redis could not serve wait in memory with their tickets open, and are
 * decided again every second. Others pass them by (the offsets module
 * commits around them only up to the first held one of a partition). At
 * router.max_deferred the tasks partitions are paused (polling goes on,
 * librdkafka #2703) until half have left. Revocation drops the held
 * records of the lost partitions, shutdown drops them all: uncommitted,
 * they come back to whoever consumes next.
 *
 * Invariants: a held record owns copies of its message (key, payload,
 * headers), its decoded task or escalation and context, and its pending
 * until that is handed on with a produced record.
 */
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/ctx.h"
#include "router_internal.h"
#include "wire/codec.h"

#include "base/banned.h"

#define HOLD_RETRY_MS 1000

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
void router_hold(struct router *rt,
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
void router_set_paused(struct router *rt, bool pause)
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

void router_update_pause(struct router *rt)
{
    size_t max = (size_t)rt->cfg->router_max_deferred;

    if (!rt->paused && rt->n_held >= max) {
        router_set_paused(rt, true);
    } else if (rt->paused && rt->n_held <= max / 2) {
        router_set_paused(rt, false);
    }
}

/* Decides h again. Returns true when it is done (and may be freed). */
static bool retry_held(struct router *rt, struct held *h)
{
    enum ks_err err;

    if (h->kind == HELD_TASK) {
        h->task = router_decide_task(rt, &h->src, h->p, h->task, h->fmt);
        return h->task == NULL;
    }
    if (!h->ctx) {
        err = router_load_context(rt, &h->src, h->p, h->esc, &h->ctx);
        if (err == KS_ERR_RETRY) {
            return false;
        }
        if (err == KS_ERR_INVALID) {
            return true;
        }
    }
    if (router_decide_escalation(rt, &h->src, h->p, h->esc, h->ctx)) {
        return false;
    }
    h->esc = NULL; /* router_decide_escalation took them */
    h->ctx = NULL;
    return true;
}

void router_serve_held(struct router *rt)
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
void router_drop_held(struct router *rt,
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
