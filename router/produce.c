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
 *
 * Failures (docs/design.md section 8: no offset stays unfinished), sorted
 * by ks_kafka_produce_fault, for a refused produce and a failed delivery
 * alike: a transient one is produced again after a backoff (librdkafka
 * has already retried it for message.timeout.ms), up to KS_PRODUCE_TRIES
 * times, then the record goes to the DLQ with code `produce`; a topic
 * that will never take it (missing, invalid, not authorized) sends it to
 * the DLQ at once (a missing reply_to first falls back to the results
 * topic); a Result too large for the broker is replaced by a small
 * `failed` Result with error `too_large` and the record goes to the DLQ
 * with code `too_large` (any other too large record too). The DLQ entry
 * of a failed record is that record (the routed task, or the Result),
 * its kascade-source naming the consumed message; a too large one keeps
 * its key and headers with an empty value (it would not fit there
 * either). A DLQ record that cannot be written is retried with a backoff
 * growing to 30 s as long as the router runs, its offset
 * uncommitted (the partition's offsets window bounds what runs past it).
 * In a transaction a permanent failure is dead-lettered the same way,
 * inside the transaction, so no batch is aborted for ever.
 */
#include "produce.h"

#include <inttypes.h>
#include <stdint.h>
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
#include "kafka/redo.h"
#include "state.h"
#include "wire/codec.h"

#include "base/banned.h"


#define PENDING_POOL_MAX 65536

struct pending *router_pending_new(struct router *rt)
{
    struct pending *p;

    if (rt->n_pending_pool == 0) {
        return ks_xcalloc(1, sizeof(*p));
    }
    p = rt->pending_pool[--rt->n_pending_pool];
    memset(p, 0, sizeof(*p));
    return p;
}

void router_pending_free(struct router *rt, struct pending *p)
{
    if (!p) {
        return;
    }
    if (rt->n_pending_pool == rt->pending_pool_cap) {
        size_t cap = rt->pending_pool_cap ? 2 * rt->pending_pool_cap : 1024;

        if (cap > PENDING_POOL_MAX) {
            free(p);
            return;
        }
        rt->pending_pool =
            ks_xrealloc(rt->pending_pool, cap * sizeof(*rt->pending_pool));
        rt->pending_pool_cap = cap;
    }
    rt->pending_pool[rt->n_pending_pool++] = p;
}

void router_pending_pool_fini(struct router *rt)
{
    for (size_t i = 0; i < rt->n_pending_pool; i++) {
        free(rt->pending_pool[i]);
    }
    free(rt->pending_pool);
    rt->pending_pool = NULL;
    rt->n_pending_pool = rt->pending_pool_cap = 0;
}

static void record_failed(struct router *rt,
                          const char *topic,
                          const void *key,
                          size_t key_len,
                          const void *value,
                          size_t len,
                          rd_kafka_headers_t *hdrs,
                          struct pending *p,
                          rd_kafka_resp_err_t err);

void router_produce(struct router *rt,
                    const char *topic,
                    const void *key,
                    size_t key_len,
                    const void *value,
                    size_t len,
                    rd_kafka_headers_t *hdrs,
                    struct pending *p)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    rt->unacked++;
    /* A refused record keeps its headers (no copy made in advance). */
    if (ks_kafka_produce_keep(rt->rk_prod, topic, key, key_len, value, len,
                              hdrs, p, &err) == KS_OK) {
        return;
    }
    record_failed(rt, topic, key, key_len, value, len, hdrs, p, err);
}

/* Keeps the failed record (still counted in rt->unacked) to produce it
 * again after a backoff. Takes ownership of hdrs and p. */
static void redo_add(struct router *rt,
                     const char *topic,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t len,
                     rd_kafka_headers_t *hdrs,
                     struct pending *p)
{
    ks_redo_push(&rt->redo, topic, key, key_len, value, len, hdrs, p,
                 ks_mono_ms() + ks_kafka_produce_backoff_ms(p->failures));
}

int64_t router_redo_due(struct router *rt)
{
    int64_t wait = 1000;
    struct ks_redo_rec *due = ks_redo_take_due(&rt->redo, ks_mono_ms(), &wait);

    while (due) { /* taken out first: producing may add more */
        struct ks_redo_rec *r = due;

        due = r->next;
        rt->unacked--; /* counted again by router_produce */
        router_produce(rt, r->topic, r->key, r->key_len, r->value, r->len,
                       r->hdrs, r->opaque);
        r->hdrs = NULL;
        ks_redo_rec_free(r);
    }
    return wait;
}

void router_redo_drop(struct router *rt)
{
    struct ks_redo_rec *all = ks_redo_take_due(&rt->redo, INT64_MAX, NULL);

    while (all) {
        struct ks_redo_rec *r = all;

        all = r->next;
        rt->unacked--;
        free(r->opaque); /* the record's struct pending */
        ks_redo_rec_free(r);
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

/* Lets go of a record's pending: the record is gone without an ack (its
 * offset stays open: redelivered), or was replaced by others that carry
 * p on. */
static void release(struct router *rt, struct pending *p)
{
    rt->unacked--;
    if (p->extra > 0) {
        p->extra--; /* another record still carries it */
        return;
    }
    router_pending_free(rt, p);
}

/* The DLQ entry of a failed record: its key, headers and (unless
 * value_dropped) value, the error headers, and kascade-source naming the
 * consumed message. Takes ownership of hdrs and p. */
static void dead_letter_record(struct router *rt,
                               const void *key,
                               size_t key_len,
                               const void *value,
                               size_t len,
                               rd_kafka_headers_t *hdrs,
                               struct pending *p,
                               const char *code,
                               const char *detail)
{
    char source[512];

    snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64, p->ticket.topic,
             p->ticket.partition, p->ticket.offset);
    ks_log_warn("router", "%s to DLQ: %s: %s", source, code, detail);
    ks_metrics_add(rt->m_dlq, 1, code);
    if (!hdrs) {
        hdrs = rd_kafka_headers_new(3);
    }
    rd_kafka_header_remove(hdrs, KS_HDR_ERROR);
    rd_kafka_header_remove(hdrs, KS_HDR_ERROR_DETAIL);
    rd_kafka_header_remove(hdrs, KS_HDR_SOURCE);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR, -1, code, -1);
    rd_kafka_header_add(hdrs, KS_HDR_ERROR_DETAIL, -1, detail, -1);
    rd_kafka_header_add(hdrs, KS_HDR_SOURCE, -1, source, -1);
    p->is_result = false;
    router_produce(rt, rt->dlq_topic, key, key_len, value, len, hdrs, p);
}

/* A small `failed` Result in place of value (a Result in the format its
 * headers name), error "too_large: <detail>", its output and path
 * dropped. Returns the encoded Result (caller frees), or NULL when value
 * is not a Result that can be decoded. */
static char *shrink_result(const void *value,
                           size_t len,
                           const rd_kafka_headers_t *hdrs,
                           const char *detail,
                           size_t *out_len)
{
    struct ks_codec_limits lim;
    struct ks_codec_error cerr = {0};
    struct ks_result *res = NULL;
    enum ks_format fmt = KS_FORMAT_JSON;
    const void *ct = NULL;
    size_t ct_len = 0;
    char *buf = NULL, msg[480];

    if (hdrs &&
        rd_kafka_header_get_last(hdrs, KS_HDR_CONTENT_TYPE, &ct, &ct_len) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        ct && ct_len == strlen(KS_CONTENT_PROTOBUF) &&
        memcmp(ct, KS_CONTENT_PROTOBUF, ct_len) == 0) {
        fmt = KS_FORMAT_PROTOBUF;
    }
    ks_codec_limits_default(&lim);
    lim.max_message_bytes = len + 1;
    lim.max_text_bytes = len + 1;
    if (ks_result_decode(fmt, value, len, &lim, &res, &cerr) != KS_OK) {
        return NULL;
    }
    free(res->output);
    res->output = NULL;
    res->status = KS_STATUS_FAILED;
    free(res->error);
    snprintf(msg, sizeof(msg), "too_large: %s", detail);
    res->error = ks_xstrdup(msg);
    if (ks_result_encode(fmt, res, &buf, out_len) != KS_OK) {
        buf = NULL;
    }
    ks_result_destroy(res);
    return buf;
}

/* A record too large for the broker: a Result is replaced by a small
 * failed one, and the record goes to the DLQ without its value. The
 * record's count moves to what replaces it. Takes hdrs and p. */
static void too_large(struct router *rt,
                      const char *topic,
                      const void *key,
                      size_t key_len,
                      const void *value,
                      size_t len,
                      rd_kafka_headers_t *hdrs,
                      struct pending *p,
                      rd_kafka_resp_err_t err)
{
    char detail[400], *small = NULL;
    size_t small_len = 0;

    snprintf(detail, sizeof(detail),
             "the record of %zu bytes for topic '%s' is over the broker's "
             "message size limit (%s)",
             len, topic, rd_kafka_err2str(err));
    if (p->is_result && !p->shrunk) {
        small = shrink_result(value, len, hdrs, detail, &small_len);
    }
    rt->unacked--;
    if (small) {
        p->shrunk = true;
        p->extra++; /* the small Result and the DLQ entry both carry p */
        router_produce(rt, topic, key, key_len, small, small_len,
                       hdrs ? rd_kafka_headers_copy(hdrs) : NULL, p);
        free(small);
    }
    dead_letter_record(rt, key, key_len, NULL, 0, hdrs, p, "too_large", detail);
}

/* Takes ownership of hdrs and p; the failed record is counted in
 * rt->unacked (policy at the top of this file). */
static void record_failed(struct router *rt,
                          const char *topic,
                          const void *key,
                          size_t key_len,
                          const void *value,
                          size_t len,
                          rd_kafka_headers_t *hdrs,
                          struct pending *p,
                          rd_kafka_resp_err_t err)
{
    enum ks_err fault = ks_kafka_produce_fault(err);
    char detail[400];

    if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT || fault == KS_ERR_FATAL) {
        /* our own abort's purge, or a producer that cannot go on (the
         * transaction code stops the router): uncommitted */
        if (fault == KS_ERR_FATAL) {
            ks_log_error("router", "producer failed for good (%s)",
                         rd_kafka_err2str(err));
        }
    } else if (strcmp(topic, rt->dlq_topic) == 0) {
        p->failures++;
        ks_log_error("router",
                     "DLQ %s refuses the entry of %s/%" PRId32 "@%" PRId64
                     " (%s): kept uncommitted, trying again",
                     topic, p->ticket.topic, p->ticket.partition,
                     p->ticket.offset, rd_kafka_err2str(err));
        if (!rt->txn) {
            redo_add(rt, topic, key, key_len, value, len, hdrs, p);
            return;
        }
        rt->txn_failed = true;
    } else if (p->is_result && strcmp(topic, rt->results_topic) != 0 &&
               unknown_topic(err)) {
        /* A reply_to naming no topic: the answer goes to the results
         * topic rather than nowhere (in a transaction, the retry of the
         * batch sends every Result there: reply_fallback). */
        missing_remember(rt, topic);
        ks_log_warn("router",
                    "reply_to topic %s does not exist: the result "
                    "goes to %s",
                    topic, rt->results_topic);
        if (!rt->txn) {
            rt->unacked--;
            router_produce(rt, rt->results_topic, key, key_len, value, len,
                           hdrs, p);
            return;
        }
        rt->reply_fallback = true;
        rt->txn_failed = true;
    } else if (fault == KS_ERR_TOO_LARGE) {
        too_large(rt, topic, key, key_len, value, len, hdrs, p, err);
        return;
    } else if (fault == KS_ERR_INVALID ||
               (!rt->txn && ++p->failures > KS_PRODUCE_TRIES)) {
        snprintf(detail, sizeof(detail), "topic '%s' refuses the record: %s",
                 topic, rd_kafka_err2str(err));
        rt->unacked--;
        dead_letter_record(rt, key, key_len, value, len, hdrs, p, "produce",
                           detail);
        return;
    } else if (!rt->txn) {
        ks_log_warn("router", "produce to %s failed (%s): trying again", topic,
                    rd_kafka_err2str(err));
        redo_add(rt, topic, key, key_len, value, len, hdrs, p);
        return;
    } else {
        /* transient in a transaction: aborted and rewound (router.c) */
        ks_log_warn("router", "delivery to %s failed in a transaction (%s)",
                    topic, rd_kafka_err2str(err));
        rt->txn_failed = true;
    }
    if (hdrs) {
        rd_kafka_headers_destroy(hdrs);
    }
    release(rt, p);
}

/* A delivered record: its ticket is done (once every record carrying it
 * is); the position it completes (if any) is stored for auto-commit or
 * kept for the transaction. */
static void delivered(struct router *rt, struct pending *p)
{
    int64_t pos;

    if (p->extra > 0) {
        release(rt, p);
        return;
    }
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
    router_pending_free(rt, p);
}

void router_on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct router *rt = opaque;
    struct pending *p = rkm->_private;
    rd_kafka_headers_t *hdrs = NULL;

    (void)rk;
    if (!rkm->err) {
        delivered(rt, p);
        return;
    }
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        hdrs = rd_kafka_headers_copy(hdrs);
    } else {
        hdrs = NULL;
    }
    record_failed(rt, rd_kafka_topic_name(rkm->rkt), rkm->key, rkm->key_len,
                  rkm->payload, rkm->len, hdrs, p, rkm->err);
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
