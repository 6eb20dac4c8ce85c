/*
 * produce.h - producing one record with back-pressure, the dead-letter
 * write, and the header names of the contract (docs/design.md section 3).
 *
 * Thread rule: stateless; rk follows librdkafka's own rules.
 */
#ifndef KASCADE_COMMON_KAFKA_PRODUCE_H
#define KASCADE_COMMON_KAFKA_PRODUCE_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "base/err.h"

/* Header names of docs/design.md section 3. */
#define KS_HDR_TIER         "kascade-tier"
#define KS_HDR_HOP          "kascade-hop"
#define KS_HDR_REASON       "kascade-reason"
#define KS_HDR_ERROR        "kascade-error"
#define KS_HDR_ERROR_DETAIL "kascade-error-detail"
#define KS_HDR_SOURCE       "kascade-source"
#define KS_HDR_CONTENT_TYPE "content-type"
#define KS_CONTENT_PROTOBUF "application/x-protobuf"

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

#endif
