/*
 * produce.c - the produce paths every daemon shares: one record with
 * back-pressure, and the dead-letter write that keeps the original bytes.
 */
#include "kafka/produce.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define PRODUCE_RETRY_MS 30000

const char *ks_kafka_header(const rd_kafka_message_t *rkm,
                            const char *name,
                            char *buf,
                            size_t size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t len;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val) {
        return NULL;
    }
    if (len >= size) {
        len = size - 1;
    }
    memcpy(buf, val, len);
    buf[len] = '\0';
    return buf;
}

enum ks_err ks_kafka_produce_fault(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return KS_OK;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return KS_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return KS_ERR_INVALID;
    case RD_KAFKA_RESP_ERR__FATAL:
        return KS_ERR_FATAL;
    default:
        return KS_ERR_RETRY;
    }
}

enum ks_err ks_kafka_produce(rd_kafka_t *rk,
                             const char *topic,
                             const void *key,
                             size_t key_len,
                             const void *value,
                             size_t value_len,
                             rd_kafka_headers_t *hdrs,
                             void *msg_opaque)
{
    return ks_kafka_produce_err(rk, topic, key, key_len, value, value_len, hdrs,
                                msg_opaque, NULL);
}

enum ks_err ks_kafka_produce_keep(rd_kafka_t *rk,
                                  const char *topic,
                                  const void *key,
                                  size_t key_len,
                                  const void *value,
                                  size_t value_len,
                                  rd_kafka_headers_t *hdrs,
                                  void *msg_opaque,
                                  rd_kafka_resp_err_t *errp)
{
    int64_t deadline = 0; /* set at the first full queue, not per record */
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_KEY((void *)(uintptr_t)key, key_len),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)value, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        if (deadline == 0) {
            deadline = ks_mono_ms() + PRODUCE_RETRY_MS;
        } else if (ks_mono_ms() > deadline) {
            break;
        }
        /* Back-pressure: serve delivery reports to make room. */
        rd_kafka_poll(rk, 100);
    }
    if (errp) {
        *errp = err;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return KS_OK;
    }
    ks_log_error("kafka", "produce to %s failed: %s", topic,
                 rd_kafka_err2str(err));
    return ks_kafka_produce_fault(err);
}

enum ks_err ks_kafka_produce_err(rd_kafka_t *rk,
                                 const char *topic,
                                 const void *key,
                                 size_t key_len,
                                 const void *value,
                                 size_t value_len,
                                 rd_kafka_headers_t *hdrs,
                                 void *msg_opaque,
                                 rd_kafka_resp_err_t *errp)
{
    enum ks_err ret = ks_kafka_produce_keep(rk, topic, key, key_len, value,
                                            value_len, hdrs, msg_opaque, errp);

    if (ret != KS_OK && hdrs) {
        rd_kafka_headers_destroy(hdrs);
    }
    return ret;
}

rd_kafka_headers_t *ks_kafka_dlq_headers(const rd_kafka_message_t *rkm,
                                         const char *code,
                                         const char *detail)
{
    rd_kafka_headers_t *orig = NULL, *hdrs;
    char source[512];

    if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        hdrs = rd_kafka_headers_copy(orig);
    } else {
        hdrs = rd_kafka_headers_new(3);
    }
    snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64,
             rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR, -1, code, -1);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR_DETAIL, -1, detail, -1);
    rd_kafka_header_add(hdrs, KS_HDR_SOURCE, -1, source, -1);
    return hdrs;
}

enum ks_err ks_kafka_dlq(rd_kafka_t *rk,
                         const char *dlq_topic,
                         const rd_kafka_message_t *rkm,
                         const char *code,
                         const char *detail,
                         void *msg_opaque)
{
    return ks_kafka_produce(rk, dlq_topic, rkm->key, rkm->key_len, rkm->payload,
                            rkm->len, ks_kafka_dlq_headers(rkm, code, detail),
                            msg_opaque);
}

int64_t ks_kafka_produce_backoff_ms(int n)
{
    int64_t ms = 500;

    while (--n > 0 && ms < 30000) {
        ms *= 2;
    }
    if (ms > 30000) {
        ms = 30000;
    }
    return ms / 2 + (int64_t)(random() % (ms / 2 + 1));
}
