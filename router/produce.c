/*
 * produce.c - records out: the tier record, the Result, the DLQ
 * entry, and their delivery reports.
 *
 * Commit rule (docs/design.md section 8): every consumed message gets an offset
 * ticket; the record produced for it carries the ticket as its opaque
 * (a struct pending); the delivery report marks the ticket done, and only
 * the highest contiguous done offset is stored for auto-commit (or added
 * to the open transaction's offsets). A record whose delivery finally
 * fails is produced again from the delivery report, so its offset is
 * never skipped; in a transaction it fails the transaction instead, which
 * router.c aborts and rewinds. rt->unacked counts what is produced and not yet
 * reported; each pending is freed exactly once, by its last report.
 */
#include "produce.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "kafka/client.h"
#include "kafka/offsets.h"
#include "kafka/produce.h"
#include "state.h"
#include "wire/codec.h"

#include "base/banned.h"

void router_produce(struct router *rt,
                    const char *topic,
                    const void *key,
                    size_t key_len,
                    const void *value,
                    size_t len,
                    rd_kafka_headers_t *hdrs,
                    struct pending *p)
{
    rt->unacked++;
    if (ks_kafka_produce(rt->rk_prod, topic, key, key_len, value, len, hdrs,
                         p) != KS_OK) {
        rt->unacked--;
        free(p);
    }
}

/* A topic that will not take the record however often it is retried. */
static bool unknown_topic(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
           err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
           err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
}

static bool missing_has(const struct router *rt, const char *topic)
{
    for (size_t i = 0; i < rt->n_missing; i++) {
        if (strcmp(rt->missing_reply_to[i], topic) == 0) {
            return true;
        }
    }
    return false;
}

/* Remembers a missing reply_to topic in the ring of MISSING_MAX: when it
 * is full the oldest is forgotten (it costs one more failed delivery if
 * it comes back, never a stuck batch). */
static void missing_remember(struct router *rt, const char *topic)
{
    if (missing_has(rt, topic)) {
        return;
    }
    if (rt->n_missing < MISSING_MAX) {
        rt->missing_reply_to[rt->n_missing++] = ks_xstrdup(topic);
        return;
    }
    free(rt->missing_reply_to[rt->missing_next]);
    rt->missing_reply_to[rt->missing_next] = ks_xstrdup(topic);
    rt->missing_next = (rt->missing_next + 1) % MISSING_MAX;
}

/* Transactional policy: the transaction cannot commit now; it is aborted
 * and the input rewound (router.c), so nothing is produced again here. A
 * missing reply_to is remembered, and the retry of the batch sends every
 * Result to the results topic (reply_fallback, cleared by the next
 * commit): the retry cannot fail on a reply_to however many there are. */
static void failed_in_txn(struct router *rt,
                          const rd_kafka_message_t *rkm,
                          struct pending *p)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);

    if (p->is_result && strcmp(topic, rt->results_topic) != 0 &&
        unknown_topic(rkm->err)) {
        missing_remember(rt, topic);
        rt->reply_fallback = true;
    }
    ks_log_warn("router", "delivery to %s failed in a transaction (%s)", topic,
                rd_kafka_err2str(rkm->err));
    if (rkm->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
        rkm->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        rt->txn_failed = true; /* (a purge is our own abort's) */
    }
    rt->unacked--;
    free(p);
}

/* Policy without transactions: produce the record again (a Result for a
 * missing reply_to to the results topic) rather than lose it or commit
 * past it. */
static void failed_produce_again(struct router *rt,
                                 rd_kafka_t *rk,
                                 const rd_kafka_message_t *rkm,
                                 struct pending *p)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    rd_kafka_headers_t *hdrs = NULL;

    if (p->is_result && strcmp(topic, rt->results_topic) != 0 &&
        unknown_topic(rkm->err)) {
        /* A reply_to naming no topic: the answer goes to the results
         * topic rather than nowhere. */
        missing_remember(rt, topic);
        ks_log_warn("router",
                    "reply_to topic %s does not exist: the "
                    "result goes to %s",
                    topic, rt->results_topic);
        topic = rt->results_topic;
    } else {
        /* librdkafka gave up after its own retries. */
        ks_log_warn("router",
                    "delivery to %s failed (%s): producing "
                    "again",
                    topic, rd_kafka_err2str(rkm->err));
    }
    if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
        hdrs = rd_kafka_headers_copy(hdrs);
    }
    if (ks_kafka_produce(rk, topic, rkm->key, rkm->key_len, rkm->payload,
                         rkm->len, hdrs, p) == KS_OK) {
        return;
    }
    ks_log_error("router", "cannot produce again; the offset stays "
                           "uncommitted and the record will be "
                           "redelivered");
    rt->unacked--;
    free(p);
}

/* A delivered record: its ticket is done; the position it completes (if
 * any) is stored for auto-commit or kept for the transaction. */
static void delivered(struct router *rt, struct pending *p)
{
    int64_t pos;

    rt->unacked--;
    pos = ks_offsets_done(rt->offsets, &p->ticket);
    if (pos >= 0 && rt->txn) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
            rt->txn_offsets, p->ticket.topic, p->ticket.partition);

        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(
                rt->txn_offsets, p->ticket.topic, p->ticket.partition);
        }
        tp->offset = pos;
    } else if (pos >= 0) {
        ks_kafka_store_offset(rt->rk_cons, p->ticket.topic, p->ticket.partition,
                              pos);
    }
    free(p);
}

void router_on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct router *rt = opaque;
    struct pending *p = rkm->_private;

    if (!rkm->err) {
        delivered(rt, p);
    } else if (rt->txn) {
        failed_in_txn(rt, rkm, p);
    } else {
        failed_produce_again(rt, rk, rkm, p);
    }
}

void router_dead_letter(struct router *rt,
                        const struct src *s,
                        struct pending *p,
                        const char *code,
                        const char *detail)
{
    rd_kafka_headers_t *hdrs;
    char source[512];

    ks_log_warn("router", "%s/%" PRId32 "@%" PRId64 " to DLQ: %s: %s", s->topic,
                s->partition, s->offset, code, detail);
    ks_metrics_add(rt->m_dlq, 1, code);
    hdrs = s->hdrs ? rd_kafka_headers_copy(s->hdrs) : rd_kafka_headers_new(3);
    snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64, s->topic,
             s->partition, s->offset);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR, -1, code, -1);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR_DETAIL, -1, detail, -1);
    rd_kafka_header_add(hdrs, KS_HDR_SOURCE, -1, source, -1);
    router_produce(rt, rt->dlq_topic, s->key, s->key_len, s->payload, s->len,
                   hdrs, p);
}

void router_publish_result(struct router *rt,
                           const struct ks_task *task,
                           enum ks_format fmt,
                           const struct ks_result *res,
                           const struct src *s,
                           struct pending *p)
{
    const char *topic = task->reply_to ? task->reply_to : rt->results_topic;
    rd_kafka_headers_t *hdrs = NULL;
    char *buf = NULL;
    size_t len = 0;

    /* Checked at decode (task.c); again here for a task that comes back
     * from an escalation's context, perhaps under a reloaded list. */
    if (ks_config_reply_to_refusal(rt->cfg, task->reply_to)) {
        router_dead_letter(rt, s, p, "invalid",
                           "field 'reply_to': refused by "
                           "topics.reply_to_allow");
        return;
    }
    if ((rt->txn && rt->reply_fallback) || missing_has(rt, topic)) {
        topic = rt->results_topic;
    }
    if (ks_result_encode(fmt, res, &buf, &len) != KS_OK) {
        router_dead_letter(rt, s, p, "invalid", "the result cannot be encoded");
        return;
    }
    if (fmt == KS_FORMAT_PROTOBUF) {
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, KS_HDR_CONTENT_TYPE, -1, KS_CONTENT_PROTOBUF,
                            -1);
    }
    ks_log_info("router", "%s: result %s (%s)", res->id,
                ks_status_str(res->status), res->error ? res->error : "");
    ks_metrics_add(rt->m_results, 1, ks_status_str(res->status));
    p->is_result = true;
    router_produce(rt, topic, task->id, strlen(task->id), buf, len, hdrs, p);
    free(buf);
}
