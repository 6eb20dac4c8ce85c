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

/* Sorts a produce or delivery error by what to do with the record:
 *   KS_ERR_TOO_LARGE  over message.max.bytes (the client's or the
 *                     broker's): it will never be taken as it is;
 *   KS_ERR_INVALID    the topic does not exist, is invalid, or we may not
 *                     write it (topic or cluster authorization): trying
 *                     again cannot help, the record needs another home;
 *   KS_ERR_FATAL      the producer is unusable (idempotence lost): the
 *                     process must restart;
 *   KS_ERR_RETRY      anything else (queue full, timeouts, a broker
 *                     away): the same record may be taken later.
 * KS_OK for RD_KAFKA_RESP_ERR_NO_ERROR. */
enum ks_err ks_kafka_produce_fault(rd_kafka_resp_err_t err);

/* A transiently failed record is produced again up to this many times
 * (worker and router alike), then dead-lettered with code `produce`. */
#define KS_PRODUCE_TRIES 5

/* The wait before the n-th try again of a failed record: 500 ms doubling
 * to 30 s, with full jitter on its upper half so that many records failed
 * together do not come back in one burst. */
int64_t ks_kafka_produce_backoff_ms(int n);

/* Produces one message, copying key and value. hdrs (may be NULL) is taken
 * over on success and destroyed on failure. When the local queue is full
 * it serves delivery reports and retries for up to 30 s. Returns KS_OK, or
 * with a log line the refusal sorted by ks_kafka_produce_fault; when
 * err is not NULL it gets librdkafka's own code. */
enum ks_err ks_kafka_produce_err(rd_kafka_t *rk,
                                 const char *topic,
                                 const void *key,
                                 size_t key_len,
                                 const void *value,
                                 size_t value_len,
                                 rd_kafka_headers_t *hdrs,
                                 void *msg_opaque,
                                 rd_kafka_resp_err_t *err);

/* ks_kafka_produce_err, but on failure hdrs stays the caller's (not
 * destroyed), so a record that is refused can be kept or dead-lettered
 * with its headers without copying them before every produce. */
enum ks_err ks_kafka_produce_keep(rd_kafka_t *rk,
                                  const char *topic,
                                  const void *key,
                                  size_t key_len,
                                  const void *value,
                                  size_t value_len,
                                  rd_kafka_headers_t *hdrs,
                                  void *msg_opaque,
                                  rd_kafka_resp_err_t *err);

/* ks_kafka_produce_err without the code. */
enum ks_err ks_kafka_produce(rd_kafka_t *rk,
                             const char *topic,
                             const void *key,
                             size_t key_len,
                             const void *value,
                             size_t value_len,
                             rd_kafka_headers_t *hdrs,
                             void *msg_opaque);

/* The headers of rkm's dead-letter record: the original ones untouched,
 * plus kascade-error (code), kascade-error-detail and kascade-source
 * (topic/partition/offset). Caller owns the result. */
rd_kafka_headers_t *ks_kafka_dlq_headers(const rd_kafka_message_t *rkm,
                                         const char *code,
                                         const char *detail);

/* Writes rkm to the dead-letter topic with ks_kafka_dlq_headers: the
 * original key and value untouched. Same return as ks_kafka_produce. */
enum ks_err ks_kafka_dlq(rd_kafka_t *rk,
                         const char *dlq_topic,
                         const rd_kafka_message_t *rkm,
                         const char *code,
                         const char *detail,
                         void *msg_opaque);

#endif
