/*
 * kafka.h - librdkafka set-up shared by the daemons and the CLI: client
 * construction from the config, header helpers, produce with back-pressure,
 * the dead-letter write, and a wake-up pipe that turns "a queue has events"
 * into a readable fd for poll() or curl_multi_poll().
 *
 * Thread rule: the functions are stateless; the handles they return follow
 * librdkafka's own rules.
 */
#ifndef KASCADE_COMMON_KAFKA_H
#define KASCADE_COMMON_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"

/* Header names of DESIGN.md section 3. */
#define KS_HDR_TIER         "kascade-tier"
#define KS_HDR_HOP          "kascade-hop"
#define KS_HDR_REASON       "kascade-reason"
#define KS_HDR_ERROR        "kascade-error"
#define KS_HDR_ERROR_DETAIL "kascade-error-detail"
#define KS_HDR_SOURCE       "kascade-source"
#define KS_HDR_CONTENT_TYPE "content-type"
#define KS_CONTENT_PROTOBUF "application/x-protobuf"

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
 * auto-commit commits what was stored), or NULL with errstr. rebalance_cb
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

/* Copies header name's last value into buf as a string. Returns buf, or
 * NULL when the header is absent. */
const char *ks_kafka_header(const rd_kafka_message_t *rkm,
                            const char *name,
                            char *buf,
                            size_t size);

/* Produces one message, copying key and value. hdrs (may be NULL) is taken
 * over on success and destroyed on failure. When the local queue is full
 * it serves delivery reports and retries for up to 30 s. Returns KS_OK, or
 * KS_ERR_RETRY / KS_ERR_INVALID with a log line. */
enum ks_err ks_kafka_produce(rd_kafka_t *rk,
                             const char *topic,
                             const void *key,
                             size_t key_len,
                             const void *value,
                             size_t value_len,
                             rd_kafka_headers_t *hdrs,
                             void *msg_opaque);

/* Writes rkm to the dead-letter topic: the original key, value and headers
 * untouched, plus kascade-error (code), kascade-error-detail and
 * kascade-source (topic/partition/offset). Same return as
 * ks_kafka_produce. */
enum ks_err ks_kafka_dlq(rd_kafka_t *rk,
                         const char *dlq_topic,
                         const rd_kafka_message_t *rkm,
                         const char *code,
                         const char *detail,
                         void *msg_opaque);

/* Stores position (the next offset to consume) for commit by auto-commit.
 * Errors (a partition no longer assigned) are logged at debug only. */
void ks_kafka_store_offset(rd_kafka_t *rk,
                           const char *topic,
                           int32_t partition,
                           int64_t position);

/* Applies a rebalance event: assigns or unassigns parts, incrementally when
 * the group uses the cooperative protocol; before giving partitions up it
 * commits the stored offsets synchronously. Call it from a rebalance_cb
 * after the caller's own work for revoked partitions is done. */
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

/* A self-pipe that librdkafka queues write to when they become non-empty.
 * fds[0] is for poll(); call ks_kafka_wake_drain() after it is readable. */
struct ks_kafka_wake {
    int fds[2];
};

/* Returns 0, or -1 with errno. */
int ks_kafka_wake_init(struct ks_kafka_wake *wake);
void ks_kafka_wake_fini(struct ks_kafka_wake *wake);

/* Makes rkqu (borrowed; the caller keeps its reference) wake the pipe. */
void ks_kafka_wake_watch(struct ks_kafka_wake *wake, rd_kafka_queue_t *rkqu);

void ks_kafka_wake_drain(struct ks_kafka_wake *wake);

#endif
