/*
 * send.c - a job's records out (the Result, Escalation or DLQ entry job.c
 * decides on) and what happens when the producer refuses one or its
 * delivery fails. Split from job.c, which owns the job: this file changes
 * only the job's producing fields (unacked, redo, produce_failures,
 * too_large_done, and abandoned on a fatal producer error) and never
 * frees a job; job.c counts the acknowledgements and commits.
 */
#include "send.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "finish.h"
#include "process/daemon.h"

#include "base/banned.h"

/* Produce failures (docs/design.md section 8: no offset stays unfinished).
 * A refused produce or a failed delivery is sorted by
 * ks_kafka_produce_fault: a record too large for the broker becomes a
 * small `failed` Result with error `too_large` plus the DLQ entry; a topic
 * that will never take it (missing, invalid, not authorized) sends the
 * task to the DLQ at once; anything else is produced again after a
 * backoff (librdkafka has already retried it for message.timeout.ms),
 * up to KS_PRODUCE_TRIES failures per job, then dead-lettered with code
 * `produce`. The DLQ itself is the last home: a DLQ record that cannot be
 * written is retried with a backoff growing to 30 s for
 * as long as the worker runs, logged as an error each time, and its
 * offset stays uncommitted (the task is never lost); the partition's
 * offsets window (limits.max_open_offsets) bounds how far consumption
 * runs past it, and a restart redelivers it. A fatal producer error
 * stops the worker (a restart gets a new producer). */

static void job_send(struct worker *w,
                     struct job *job,
                     const char *topic,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t len,
                     rd_kafka_headers_t *hdrs);

/* Keeps the failed record (still counted in job->unacked) to produce it
 * again after a backoff. Takes ownership of hdrs. */
static void job_redo_add(struct job *job,
                         const char *topic,
                         const void *key,
                         size_t key_len,
                         const void *value,
                         size_t len,
                         rd_kafka_headers_t *hdrs,
                         int64_t wait_ms)
{
    ks_redo_push(&job->redo, topic, key, key_len, value, len, hdrs, NULL,
                 ks_mono_ms() + wait_ms);
}

/* The headers of a record in the job's format. */
static rd_kafka_headers_t *job_headers(const struct job *job)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (job->fmt == KS_FORMAT_PROTOBUF) {
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, KS_HDR_CONTENT_TYPE, -1, KS_CONTENT_PROTOBUF,
                            -1);
    }
    return hdrs;
}

/* Produces value keyed by the task id, counted in job->unacked. */
void send_produce(struct worker *w,
                  struct job *job,
                  const char *topic,
                  const char *value,
                  size_t len)
{
    job_send(w, job, topic, job->task->id, strlen(job->task->id), value, len,
             job_headers(job));
}

/* Sends the job's original message to the DLQ with code and detail. */
void send_dead_letter(struct worker *w,
                      struct job *job,
                      const char *code,
                      const char *detail)
{
    ks_log_warn("worker", "%s/%" PRId32 "@%" PRId64 " to DLQ: %s: %s",
                rd_kafka_topic_name(job->rkm->rkt), job->rkm->partition,
                job->rkm->offset, code, detail);
    ks_metrics_add(w->m_dlq, 1, code);
    job_send(w, job, w->dlq_topic, job->rkm->key, job->rkm->key_len,
             job->rkm->payload, job->rkm->len,
             ks_kafka_dlq_headers(job->rkm, code, detail));
}

/* The job's record for topic was too large for the broker: a `too_large`
 * Result in its place and the task to the DLQ (finish.c). */
static void job_too_large(struct worker *w,
                          struct job *job,
                          const char *topic,
                          size_t len,
                          rd_kafka_resp_err_t err)
{
    char detail[400];
    struct outcome out;

    snprintf(detail, sizeof(detail),
             "the record of %zu bytes for topic '%s' is over the broker's "
             "message size limit (%s)",
             len, topic, rd_kafka_err2str(err));
    if (job->too_large_done || !job->task) {
        send_dead_letter(w, job, "too_large", detail);
        return;
    }
    job->too_large_done = true;
    finish_too_large(w, job, detail, &out);
    if (out.value) {
        send_produce(w, job, out.topic, out.value, out.len);
    }
    send_dead_letter(w, job, "too_large", detail);
    free(out.value);
}

/* A record of the job was refused by the producer or failed delivery
 * with err (policy above). Takes ownership of hdrs. Returns true when the
 * record is dealt with (its count in job->unacked may go: a replacement,
 * if any, is counted already), false when it stays counted (a redo). */
bool send_failed(struct worker *w,
                 struct job *job,
                 const char *topic,
                 const void *key,
                 size_t key_len,
                 const void *value,
                 size_t len,
                 rd_kafka_headers_t *hdrs,
                 rd_kafka_resp_err_t err)
{
    enum ks_err fault = ks_kafka_produce_fault(err);
    bool is_reply_to = job->task && job->task->reply_to &&
                       strcmp(topic, job->task->reply_to) == 0;
    char detail[400];

    if (fault == KS_ERR_FATAL) {
        ks_log_error("worker",
                     "producer failed for good (%s): stopping; the task "
                     "stays uncommitted and is redelivered",
                     rd_kafka_err2str(err));
        ks_stop_requested = 1;
        job->abandoned = true;
    } else if (strcmp(topic, w->dlq_topic) == 0) {
        job->produce_failures++;
        ks_log_error("worker",
                     "DLQ %s refuses %s/%" PRId32 "@%" PRId64
                     " (%s): kept uncommitted, trying again",
                     topic, rd_kafka_topic_name(job->rkm->rkt),
                     job->rkm->partition, job->rkm->offset,
                     rd_kafka_err2str(err));
        job_redo_add(job, topic, key, key_len, value, len, hdrs,
                     ks_kafka_produce_backoff_ms(job->produce_failures));
        return false;
    } else if (fault == KS_ERR_TOO_LARGE) {
        job_too_large(w, job, topic, len, err);
    } else if (fault == KS_ERR_INVALID) {
        if (is_reply_to && (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                            err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)) {
            /* A reply_to naming no topic is the producer's mistake. */
            snprintf(detail, sizeof(detail),
                     "field 'reply_to': topic '%s' does not exist", topic);
        } else {
            snprintf(detail, sizeof(detail), "%stopic '%s' refuses it: %s",
                     is_reply_to ? "field 'reply_to': " : "", topic,
                     rd_kafka_err2str(err));
        }
        send_dead_letter(w, job, is_reply_to ? "invalid" : "produce", detail);
    } else if (++job->produce_failures > KS_PRODUCE_TRIES) {
        snprintf(detail, sizeof(detail),
                 "topic '%s': produce failed %d times, last: %s", topic,
                 job->produce_failures, rd_kafka_err2str(err));
        send_dead_letter(w, job, "produce", detail);
    } else {
        ks_log_warn("worker", "produce to %s failed (%s): trying again", topic,
                    rd_kafka_err2str(err));
        job_redo_add(job, topic, key, key_len, value, len, hdrs,
                     ks_kafka_produce_backoff_ms(job->produce_failures));
        return false;
    }
    if (hdrs) {
        rd_kafka_headers_destroy(hdrs);
    }
    return true;
}

/* Produces one record for the job, counted in job->unacked (takes
 * ownership of hdrs); a refusal is dealt with as a failed delivery. Never
 * frees the job. */
static void job_send(struct worker *w,
                     struct job *job,
                     const char *topic,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t len,
                     rd_kafka_headers_t *hdrs)
{
    rd_kafka_headers_t *keep = hdrs ? rd_kafka_headers_copy(hdrs) : NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    job->unacked++;
    if (ks_kafka_produce_err(w->rk_prod, topic, key, key_len, value, len, hdrs,
                             job, &err) == KS_OK) {
        if (keep) {
            rd_kafka_headers_destroy(keep);
        }
        return;
    }
    if (send_failed(w, job, topic, key, key_len, value, len, keep, err)) {
        job->unacked--;
    }
}

/* Produces the job's records whose backoff is over (an abandoned job's
 * are dropped); lowers *wait to the next one's. */
void send_redo_due(struct worker *w,
                   struct job *job,
                   int64_t now,
                   int64_t *wait)
{
    struct ks_redo_rec *due =
        ks_redo_take_due(&job->redo, job->abandoned ? INT64_MAX : now, wait);

    while (due) { /* taken out first: sending may add more */
        struct ks_redo_rec *r = due;

        due = r->next;
        job->unacked--; /* counted again by job_send */
        if (!job->abandoned) {
            job_send(w, job, r->topic, r->key, r->key_len, r->value, r->len,
                     r->hdrs);
            r->hdrs = NULL;
        }
        ks_redo_rec_free(r);
    }
}

/* Drops every record waiting to be produced again, uncounting them. */
void send_redo_drop(struct job *job)
{
    struct ks_redo_rec *all = ks_redo_take_due(&job->redo, INT64_MAX, NULL);

    while (all) {
        struct ks_redo_rec *r = all;

        all = r->next;
        job->unacked--;
        ks_redo_rec_free(r);
    }
}
