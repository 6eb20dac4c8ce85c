/*
 * defer.h - the deferred topic (<prefix>deferred, docs/design.md section
 * 3): a task whose tier is spent under `defer`, an escalation waiting for
 * such a tier, and an escalation whose context Redis cannot serve leave
 * the input for it, so their input offsets commit; the router reads them
 * back in rounds and routes each again. This module builds the deferred
 * record, reads one back, and paces the rounds (pause and resume of the
 * deferred partitions); router.c produces and decides. Router thread only.
 */
#ifndef KASCADE_ROUTER_DEFER_H
#define KASCADE_ROUTER_DEFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "kafka/client.h"
#include "src.h"

/* The header naming the input topic a deferred record came from. */
#define KS_HDR_DEFERRED_FROM "kascade-deferred-from"

/* A deferred partition: records below mark belong to the current round;
 * at mark (what was deferred during the round) it pauses until the next. */
struct defer_part {
    char topic[KS_TOPIC_MAX];
    int32_t partition;
    int64_t mark; /* this round ends here; -1: no round yet */
    int64_t next; /* the offset after the last one read; -1: unknown */
    bool paused;
};

/* The deferred partitions seen, embedded in struct router (zeroed to
 * start). */
struct defer {
    struct defer_part *parts;
    size_t n;
    bool *spent; /* each tier's spent flag at the last tick */
    size_t n_spent;
    bool unknown;          /* the last tick could not read the budgets */
    int64_t next_round_ms; /* monotonic */
};

/* The headers of the deferred copy of s: s's own (borrowed) without a
 * KS_HDR_DEFERRED_FROM of theirs, plus KS_HDR_DEFERRED_FROM naming
 * origin. Caller owns the result. */
rd_kafka_headers_t *router_defer_headers(const struct src *s,
                                         const char *origin);

/* Reads rkm, a record of the deferred topic: its origin topic into
 * origin (size bytes) and its headers without KS_HDR_DEFERRED_FROM into
 * *hdrs (caller owns; NULL when none). Returns 0, or -1 when the header
 * is missing or too long (the caller dead-letters the record). */
int router_defer_read(const rd_kafka_message_t *rkm,
                      char *origin,
                      size_t size,
                      rd_kafka_headers_t **hdrs);

/* Partitions of the deferred topic (named topic) in parts were just
 * assigned: each starts paused, read only in a round. */
void router_defer_assigned(struct defer *df,
                           rd_kafka_t *rk,
                           const char *topic,
                           const rd_kafka_topic_partition_list_t *parts);

/* Before a deferred record of rkm's partition is dealt with: a record at
 * or past the round's mark pauses the partition until the next round (a
 * record read outside a round ends one at itself). rk is the consumer. */
void router_defer_seen(struct defer *df,
                       rd_kafka_t *rk,
                       const rd_kafka_message_t *rkm);

/* Starts a new round (every paused partition with records it has not
 * read gets its end as the mark and resumes) when a tier's budget came back
 * since the last tick (spent[i] went from true to false; spent may be NULL:
 * unknown), when they are known again after being unknown, or when the round
 * timer ran out, and at the first tick (a restart routes the backlog at once).
 * mono: now, monotonic. rk is the consumer; rk_query (the router's
 * producer) asks the partitions' ends: on the consumer's own connection a
 * ListOffsets waits behind the fetch in flight (the broker answers a
 * connection's requests in order), up to fetch.wait.max.ms each. */
void router_defer_tick(struct defer *df,
                       rd_kafka_t *rk,
                       rd_kafka_t *rk_query,
                       const bool *spent,
                       size_t n_tiers,
                       int64_t mono);

/* Frees what df holds. */
void router_defer_fini(struct defer *df);

#endif
