/*
 * hold.c - held records: a task whose tier is spent under `defer`, an
 * escalation waiting for such a tier, and an escalation whose context
 * Redis could not serve wait in memory with their tickets open and are
 * handed back to router.c every second to be decided again. Others pass
 * them by (the offsets module commits around them only up to the first
 * held one of a partition). Revocation drops the held records of the
 * lost partitions, shutdown drops them all: uncommitted, they come back
 * to whoever consumes next.
 *
 * Invariants: a held record owns copies of its message (key, payload,
 * headers), its decoded task or escalation and context, and its pending
 * until that is handed on with a produced record. This file never
 * decides or produces.
 */
#include "hold.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "produce.h"

#include "base/banned.h"

#define HOLD_RETRY_MS 1000

static void *memdup(const void *buf, size_t len)
{
    void *copy = ks_xmalloc(len ? len : 1);

    memcpy(copy, buf, len);
    return copy;
}

struct held *router_held_new(enum held_kind kind,
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
    return h;
}

void router_held_free(struct held *h)
{
    if (!h) {
        return;
    }
    free(h->p);
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

void router_hold_add(struct hold *hs, struct held *h)
{
    if (hs->n == hs->cap) {
        hs->cap = hs->cap ? hs->cap * 2 : 64;
        hs->v = ks_xrealloc(hs->v, hs->cap * sizeof(*hs->v));
    }
    hs->v[hs->n++] = h;
}

struct held **router_hold_take_due(struct hold *hs, int64_t mono, size_t *n)
{
    struct held **due;

    *n = 0;
    if (hs->n == 0 || mono < hs->retry_ms) {
        return NULL;
    }
    hs->retry_ms = mono + HOLD_RETRY_MS;
    due = hs->v;
    *n = hs->n;
    hs->v = NULL;
    hs->n = hs->cap = 0;
    return due;
}

void router_hold_drop(struct hold *hs,
                      const rd_kafka_topic_partition_list_t *parts)
{
    size_t keep = 0;

    for (size_t i = 0; i < hs->n; i++) {
        struct held *h = hs->v[i];
        bool drop = !parts;

        for (int j = 0; parts && j < parts->cnt; j++) {
            drop |= parts->elems[j].partition == h->src.partition &&
                    strcmp(parts->elems[j].topic, h->src.topic) == 0;
        }
        if (drop) {
            router_held_free(h);
        } else {
            hs->v[keep++] = h;
        }
    }
    if (keep < hs->n) {
        ks_log_info("router", "dropped %zu held record(s) uncommitted",
                    hs->n - keep);
    }
    hs->n = keep;
}

void router_hold_fini(struct hold *hs)
{
    router_hold_drop(hs, NULL);
    free(hs->v);
    hs->v = NULL;
    hs->cap = 0;
}
