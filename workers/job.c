/*
 * job.c - one task's way through the worker: accepted and decoded,
 * answered from its done record or by a model call (job_call.c), its
 * outcome stored and published (job_life.c, job_store.c), and its offset
 * released once everything it produced is acknowledged; revocation and
 * abandonment. The loop's side of the job module: job_advance_all moves
 * every job in one pass per turn.
 */
#include "job.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "escalate.h"
#include "fanout.h"
#include "guard.h"
#include "job_call.h"
#include "job_life.h"
#include "job_store.h"
#include "order.h"
#include "send.h"
#include "spend.h"

#include "base/banned.h"


/* ---- accepting ---------------------------------------------------------- */

/* ---- accepting ---------------------------------------------------------- */

static uint32_t hop_of(const rd_kafka_message_t *rkm)
{
    char buf[16];
    int64_t hop;

    if (ks_kafka_header(rkm, KS_HDR_HOP, buf, sizeof(buf)) &&
        ks_parse_int64(buf, 0, 1000, &hop) == 0) {
        return (uint32_t)hop;
    }
    return 0;
}

/* topics.reply_to_allow again (the router checked it at decode; a record
 * written straight to a tier or escalation topic did not pass there):
 * a refused reply_to is dead-lettered before any call or produce. */
static bool reply_to_refused(struct worker *w, struct job *job)
{
    const char *topic = job->task->reply_to;
    const char *why = ks_config_reply_to_refusal(w->cfg, topic);
    char detail[400];

    if (!why) {
        return false;
    }
    if (ks_topic_name_valid(topic, strlen(topic))) {
        snprintf(detail, sizeof(detail), "field 'reply_to': topic '%s': %s",
                 topic, why);
    } else {
        snprintf(detail, sizeof(detail), "field 'reply_to': %s", why);
    }
    send_dead_letter(w, job, "invalid", detail);
    job_produced(job);
    return true;
}

void job_accept(struct worker *w, rd_kafka_message_t *rkm)
{
    struct job *job = job_new(w, rkm);
    struct ks_codec_error cerr = {0};
    char ctype[64], detail[128];

    job->hop = hop_of(rkm);
    job->due_ms = 0;
    if (rkm->len > w->cfg->limits.max_message_bytes) {
        snprintf(detail, sizeof(detail),
                 "message of %zu bytes is over "
                 "limits.max_message_bytes (%zu)",
                 rkm->len, w->cfg->limits.max_message_bytes);
        send_dead_letter(w, job, "too_large", detail);
        job_produced(job);
        return;
    }
    if (ks_codec_detect(
            ks_kafka_header(rkm, KS_HDR_CONTENT_TYPE, ctype, sizeof(ctype)),
            rkm->payload, rkm->len, &job->fmt, &cerr) != KS_OK ||
        ks_task_decode(job->fmt, rkm->payload, rkm->len, &w->cfg->limits,
                       &job->task, &cerr) != KS_OK) {
        send_dead_letter(w, job, cerr.code, cerr.detail);
        job_produced(job);
        return;
    }
    if (reply_to_refused(w, job)) {
        return;
    }
    ks_log_debug("worker", "%s: accepted from %s [%" PRId32 "] at %" PRId64,
                 job->task->id, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                 rkm->offset);
    job->state = JOB_CHECK_DONE;
    /* ordering "key": behind an older job of its key the job waits in
     * the key's queue, outside the backlog (order.h). */
    switch (order_enter(w, job)) {
    case ORDER_HOLD:
        job->key_held = true;
        break;
    case ORDER_WAIT:
        job_unlink(w, job);
        order_park(w, job);
        break;
    case ORDER_FREE:
        break;
    }
}

/* A redelivered task that was already answered: the stored outcome (tag
 * byte first; an untagged record is produced whole) goes out again,
 * without calling or paying. */
static void replay_stored(struct worker *w,
                          struct job *job,
                          const char *stored,
                          size_t len)
{
    const char *topic;

    ks_log_info("worker", "%s hop %" PRIu32 ": answered from the done record",
                job->task->id, job->hop);
    topic = job->task->reply_to ? job->task->reply_to : w->results_topic;
    if (len > 0 && stored[0] == DONE_ESCALATION) {
        topic = w->esc_topic;
    }
    ks_metrics_add(w->m_results, 1, w->tier->name, "stored");
    if (len > 0 && (stored[0] == DONE_RESULT || stored[0] == DONE_ESCALATION)) {
        send_produce(w, job, topic, stored + 1, len - 1);
    } else {
        send_produce(w, job, topic, stored, len);
    }
    job_produced(job);
}

/* Takes the done record job_lookup_all found: with one, the task is answered
 * from it; without, the job waits for a call slot. A job job_lookup_all has
 * not looked up yet waits for the next turn's round trip (there is no
 * look-up of one job alone). */
static void check_done(struct worker *w, struct job *job)
{
    char *stored = job->pre_value;

    if (!job->pre_done) {
        return;
    }
    job->pre_value = NULL;
    job->pre_done = false;
    if (!stored) {
        escalate_prepare(w, job);
        job->state = JOB_WAIT_SLOT;
        return;
    }
    replay_stored(w, job, stored, job->pre_len);
    free(stored);
}

/* ---- the loop's side ---------------------------------------------------- */

int64_t job_advance_all(struct worker *w)
{
    int64_t now = ks_mono_ms(), wait = 100;
    struct job *job = w->head, *next;

    spend_flush(w);
    job_lookup_all(w); /* done records written and looked up, contexts */
    job_reserve_all(w);
    order_begin(w);
    for (; job; job = next) {
        next = job->next;
        if (job->state == JOB_PRODUCING && job->unacked == 0) {
            job_free(w, job); /* produced nothing (job_produced) */
            continue;
        }
        if (job->state == JOB_PRODUCING) {
            send_redo_due(w, job, now, &wait); /* failed records again */
            continue;
        }
        if (!order_claim(w, job)) {
            continue; /* an older task of its key is not finished */
        }
        if ((job->state == JOB_CHECK_DONE || job->state == JOB_BACKOFF ||
             job->state == JOB_ESCALATING || job->state == JOB_STORING) &&
            job->due_ms > now) {
            if (job->due_ms - now < wait) {
                wait = job->due_ms - now;
            }
            continue;
        }
        if (job->state == JOB_CHECK_DONE) {
            check_done(w, job);
        }
        if (job->state == JOB_ESCALATING) {
            job_hand_on(w, job);
            continue;
        }
        if (job->state == JOB_STORING) {
            wait = 0; /* the next pass's round trip stores it: now */
            continue;
        }
        if (job->state == JOB_BACKOFF) {
            job->state = JOB_WAIT_SLOT;
        }
        if (job->state == JOB_WAIT_SLOT &&
            w->n_calls < (size_t)w->tier->max_inflight &&
            !job_reserve_and_call(w, job) && spend_gate_ms(w) == 0) {
            wait = 0; /* reserved by the next turn's job_reserve_all */
        }
        if (job->state == JOB_WAIT_SLOT && spend_gate_ms(w) > 0 &&
            spend_gate_ms(w) < wait) {
            wait = spend_gate_ms(w);
        }
    }
    return wait;
}

void job_delivery_failed(struct worker *w,
                         struct job *job,
                         const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        hdrs = rd_kafka_headers_copy(hdrs);
    } else {
        hdrs = NULL;
    }
    if (send_failed(w, job, rd_kafka_topic_name(rkm->rkt), rkm->key,
                    rkm->key_len, rkm->payload, rkm->len, hdrs, rkm->err)) {
        job_delivered(w, job, true); /* replaced: its own ack counts */
    }
}

void job_delivered(struct worker *w, struct job *job, bool ok)
{
    int64_t pos;

    if (!ok) {
        /* Could not even be produced again: keep the offset uncommitted
         * so the task is redelivered after a restart or rebalance. */
        job->abandoned = true;
    }
    if (--job->unacked > 0 || job->state != JOB_PRODUCING) {
        return;
    }
    if (!job->abandoned) {
        pos = ks_offsets_done(w->offsets, &job->ticket);
        if (pos >= 0) {
            ks_kafka_store_offset(w->rk_cons, job->ticket.topic,
                                  job->ticket.partition, pos);
        }
    }
    job_free(w, job);
}

static bool job_of(const struct job *job,
                   const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == job->ticket.partition &&
            strcmp(parts->elems[i].topic, job->ticket.topic) == 0) {
            return true;
        }
    }
    return false;
}

size_t job_drop_revoked(struct worker *w,
                        const rd_kafka_topic_partition_list_t *parts)
{
    size_t dropped = 0;

    for (struct job *job = w->head, *next; job; job = next) {
        next = job->next;
        if (parts && job_of(job, parts)) {
            job->revoked = true;
        }
        if (!job->revoked || job->abandoned ||
            (job->state != JOB_CHECK_DONE && job->state != JOB_WAIT_SLOT &&
             job->state != JOB_BACKOFF)) {
            continue;
        }
        /* Not started (or between two calls): nothing is paid for it and
         * nothing committed; the next owner calls, or answers from the
         * done record of an earlier hop. */
        dropped++;
        job_abandon(w, job);
    }
    return dropped;
}

void job_abandon(struct worker *w, struct job *job)
{
    /* The turn's calls are cancelled: those ended owe what they owe, each
     * one still in flight may have reached the provider and is charged
     * at its worst case, in the one settle of the turn; a reservation
     * with no call yet is released (0). A job with no call in flight may
     * have no task (a record that did not decode): no worst case then. */
    int64_t owed = fanout_cancel(
        w, job, job->fan.n_fly > 0 ? spend_worst_case(w, job) : 0);

    if (job->has_res || job->unreserved) {
        spend_settle(w, job, owed);
    }
    guard_release(w, job);
    send_redo_drop(job); /* not produced again: the task is redelivered */
    if (job->unacked > 0) {
        /* Delivery reports still point at it: free on the last one. */
        job->abandoned = true;
        return;
    }
    job_free(w, job);
}
