/*
 * produce.h - records out: the tier record, the Result, the DLQ entry,
 * and their delivery reports. Router thread only (delivery reports are
 * served by rd_kafka_poll / flush on it).
 *
 * Ownership: a struct pending is created for each consumed message and
 * handed to exactly one place: a produced record (freed by its last
 * delivery report), a record to produce again, or freed at once when a
 * produce is refused. The functions below that take a pending take
 * ownership of it. Transactions are router.c's: it begins the batch's
 * one (txn.h) before it calls any of them.
 */
#ifndef KASCADE_ROUTER_PRODUCE_H
#define KASCADE_ROUTER_PRODUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kafka/offsets.h"
#include "src.h"
#include "wire/codec.h"

struct router;

/* What a produced record carries back in its delivery report. */
struct pending {
    struct ks_offset_ticket ticket;
    bool is_result; /* a Result: a missing reply_to topic falls back */
    int failures;   /* failed produces and deliveries of its record */
    int extra;      /* records beyond one that carry it (a too large
                       Result's replacement and DLQ entry) */
    bool shrunk;    /* its Result was replaced by a too_large one */
};

/* A zeroed pending for a consumed message (caller owns; freed by
 * router_pending_free or, by code that predates the pool, free()). Freed
 * pendings are kept for reuse, up to PENDING_POOL_MAX, so the delivery
 * report of a record frees nothing: at 100k records a second, the
 * allocator's slow path for a burst of 1,000 small blocks allocated
 * before any is freed was several percent of the router's CPU. */
struct pending *router_pending_new(struct router *rt);

/* Gives p back to the pool (or frees it when the pool is full). Accepts
 * NULL. */
void router_pending_free(struct router *rt, struct pending *p);

/* Frees the pooled pendings (router_destroy). */
void router_pending_pool_fini(struct router *rt);

/* Produces one record (takes ownership of hdrs and p; key and value are
 * copied). A refused produce is dealt with as a failed delivery (see
 * router_on_delivery). */
void router_produce(struct router *rt,
                    const char *topic,
                    const void *key,
                    size_t key_len,
                    const void *value,
                    size_t len,
                    rd_kafka_headers_t *hdrs,
                    struct pending *p);

/* The producer's delivery report callback (opaque: the router): stores
 * the offset a delivered record completes (or adds it to the open
 * transaction's offsets). A failed record (policy in produce.c) is
 * produced again after a backoff, a bounded number of times, then
 * dead-lettered; a permanent failure (topic missing or refused, record
 * too large) is dead-lettered at once, a too large Result replaced by a
 * small `failed` one; a missing reply_to falls back to the results
 * topic. In a transaction a transient failure marks the transaction
 * failed instead (aborted and rewound by router.c). */
void router_on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque);

/* Produces the records whose backoff is over; returns the ms until the
 * next one is due (or 1000). */
int64_t router_redo_due(struct router *rt);

/* Drops every record waiting to be produced again (their offsets stay
 * uncommitted). */
void router_redo_drop(struct router *rt);

/* Sends s (borrowed) to the DLQ with the error code and detail headers
 * (takes ownership of p). */
void router_dead_letter(struct router *rt,
                        const struct src *s,
                        struct pending *p,
                        const char *code,
                        const char *detail);

/* Publishes res (in fmt) to the task's reply_to or the results topic
 * (takes ownership of p; task, res and s borrowed). A result that does
 * not encode dead-letters s instead. */
void router_publish_result(struct router *rt,
                           const struct ks_task *task,
                           enum ks_format fmt,
                           const struct ks_result *res,
                           const struct src *s,
                           struct pending *p);

#endif
