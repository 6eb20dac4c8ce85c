/*
 * hold.h - held records: a container of consumed messages that wait in
 * memory with their offset tickets open (a task whose tier is spent under
 * `defer`, an escalation waiting for such a tier or for Redis). It keeps
 * them, hands out the ones due for another try, and drops them; router.c
 * decides what to hold and what to do with them. Router thread only.
 */
#ifndef KASCADE_ROUTER_HOLD_H
#define KASCADE_ROUTER_HOLD_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "redis/ctx.h"
#include "route.h"
#include "src.h"
#include "wire/codec.h"

struct pending;

enum held_kind {
    HELD_TASK = 0,   /* task waits for a spent `defer` tier */
    HELD_ESCALATION, /* escalation waits (ctx NULL: Redis was down) */
};

/* One held message. It owns everything it points to: the copies of the
 * message that src views, the pending, the task or escalation and
 * context. Callers may take a pointer out (setting the field NULL). */
struct held {
    enum held_kind kind;
    struct pending *p;
    struct src src;           /* views the copies below */
    struct ks_task *task;     /* HELD_TASK */
    struct route_rules rules; /* HELD_TASK: its rules step, kept */
    enum ks_format fmt;
    struct ks_escalation *esc; /* HELD_ESCALATION */
    struct ks_ctx *ctx;        /* NULL until loaded */
    void *key;
    void *payload;
    rd_kafka_headers_t *hdrs;
};

/* The held records of a router, embedded (zeroed to start). */
struct hold {
    struct held **v;
    size_t n, cap;
    int64_t retry_ms; /* monotonic: when the held ones are due next */
};

/* A held record with copies of s (borrowed). Takes ownership of p, task,
 * esc and ctx (any of the last three may be NULL). Caller owns the
 * result. */
struct held *router_held_new(enum held_kind kind,
                             const struct src *s,
                             struct pending *p,
                             struct ks_task *task,
                             enum ks_format fmt,
                             struct ks_escalation *esc,
                             struct ks_ctx *ctx);

/* Frees h with what it owns (its pending's ticket stays open). Accepts
 * NULL. */
void router_held_free(struct held *h);

/* Appends h (takes ownership). */
void router_hold_add(struct hold *hs, struct held *h);

/* At most once a second (mono: now, monotonic): takes every held record
 * out, in the order they were added, and returns them with their count
 * in *n (caller owns the array and the records; add back the ones still
 * waiting). NULL with *n 0 when none is due. */
struct held **router_hold_take_due(struct hold *hs, int64_t mono, size_t *n);

/* Frees the held records of the partitions in parts (borrowed; all when
 * NULL): their offsets stay uncommitted. */
void router_hold_drop(struct hold *hs,
                      const rd_kafka_topic_partition_list_t *parts);

/* Drops every held record and frees the container's memory. */
void router_hold_fini(struct hold *hs);

#endif
