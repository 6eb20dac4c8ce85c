/*
 * client.h - librdkafka clients built from the config, shared by the
 * daemons and the CLI: producer and consumer construction, offset store,
 * rebalance and close. Producing is in produce.h, the wake pipe in wake.h.
 *
 * Thread rule: the functions are stateless; the handles they return follow
 * librdkafka's own rules.
 */
#ifndef KASCADE_COMMON_KAFKA_CLIENT_H
#define KASCADE_COMMON_KAFKA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "base/err.h"
#include "config/config.h"

/* Returns a new idempotent producer the caller owns (rd_kafka_destroy), or
 * NULL with the reason in errstr. dr_msg_cb receives each message's opaque
 * (the msg_opaque given to ks_kafka_produce). */
rd_kafka_t *ks_kafka_producer_new(
    const struct ks_config *cfg,
    void (*dr_msg_cb)(rd_kafka_t *rk,
                      const rd_kafka_message_t *rkm,
                      void *opaque),
    void *opaque,
    char *errstr,
    size_t errstr_size);

/* Returns a new consumer in group_id the caller owns, with manual offset
 * store (offsets are stored by the caller once their work is acknowledged;
 * auto-commit commits what was stored) and cooperative-sticky assignment
 * (incremental rebalancing), or NULL with errstr. rebalance_cb
 * may be NULL for librdkafka's default. defaults (may be NULL; ends at a
 * NULL key) are librdkafka properties the caller prefers, applied unless
 * the config's kafka section sets them. */
rd_kafka_t *ks_kafka_consumer_new(
    const struct ks_config *cfg,
    const char *group_id,
    const struct ks_kv *defaults,
    void (*rebalance_cb)(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque),
    void *opaque,
    char *errstr,
    size_t errstr_size);

/* Returns a conf with the config's Kafka properties (caller owns), or NULL
 * with errstr. For clients the helpers above do not cover. */
rd_kafka_conf_t *ks_kafka_conf_new(const struct ks_config *cfg,
                                   char *errstr,
                                   size_t errstr_size);

/* Looks up the metadata of the topics rk will produce to, so the first
 * record to each is not held back by a lookup of its own. Bounded (5 s a
 * topic); a failure is logged and harmless. */
void ks_kafka_warm(rd_kafka_t *rk, const char *const *topics, size_t n);

/* Stores position (the next offset to consume) for commit by auto-commit.
 * Errors (a partition no longer assigned) are logged at debug only. */
void ks_kafka_store_offset(rd_kafka_t *rk,
                           const char *topic,
                           int32_t partition,
                           int64_t position);

/* Applies a rebalance event: assigns or unassigns parts, incrementally when
 * the group uses the cooperative protocol (the default), the whole
 * assignment when the config chose an eager strategy. Before giving
 * partitions up it commits the stored offsets synchronously, unless the
 * assignment was lost (rd_kafka_assignment_lost): then it commits nothing
 * and clears what was stored for parts. Call it from a rebalance_cb after
 * the caller's own work for revoked partitions is done. */
void ks_kafka_rebalance_apply(rd_kafka_t *rk,
                              rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts);

/* Leaves the group and commits what was stored, for at most timeout_ms
 * (a broker that is gone must not hang a shutdown), handing the final
 * revocation to rebalance_cb (the consumer's own; NULL: plain unassign).
 * Then destroys rk, without a second close attempt when the first did not
 * finish. Returns 0, or -1 when the close timed out. */
int ks_kafka_consumer_close_destroy(
    rd_kafka_t *rk,
    void (*rebalance_cb)(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque),
    void *opaque,
    int timeout_ms);

#endif
