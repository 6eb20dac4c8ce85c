/*
 * produce.h - records out: the tier record, the Result, the DLQ entry,
 * and their delivery reports. Router thread only (delivery reports are
 * served by rd_kafka_poll / flush on it).
 *
 * Ownership: a struct pending is created for each consumed message and
 * handed to exactly one place: a produced record (freed by its last
 * delivery report), a held record (hold.h), or freed at once when a
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
};

/* Produces one record (takes ownership of hdrs and p; key and value are
 * copied). On a refused produce the ticket stays open (uncommitted:
 * redelivered later) and p is freed. */
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
 * transaction's offsets), or produces a failed one again (a missing
 * reply_to falls back to the results topic); in a transaction a failure
 * marks the transaction failed instead. */
void router_on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque);

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
