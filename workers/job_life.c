/*
 * job_life.c - the job object and how a job ends: the worker's job list,
 * a job's birth and death, and the application of its outcome. A
 * successful outcome is stored in kascade:done:<tenant>:<id>:<hop> with
 * the task's digest before it is published (JOB_STORING, written in bulk
 * by job_store.c), so a redelivery never pays for the same call twice.
 * Split from job.c; see job_life.h.
 */
#include "job_life.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "base/log.h"
#include "base/util.h"
#include "fanout.h"
#include "order.h"
#include "send.h"

#include "base/banned.h"

/* Appends job to the worker's list (the backlog). */
static void job_link(struct worker *w, struct job *job)
{
    job->prev = w->tail;
    job->next = NULL;
    if (w->tail) {
        w->tail->next = job;
    } else {
        w->head = job;
    }
    w->tail = job;
    w->n_jobs++;
}

void job_unlink(struct worker *w, struct job *job)
{
    if (job->prev) {
        job->prev->next = job->next;
    } else {
        w->head = job->next;
    }
    if (job->next) {
        job->next->prev = job->prev;
    } else {
        w->tail = job->prev;
    }
    job->prev = job->next = NULL;
    w->n_jobs--;
}

struct job *job_new(struct worker *w, rd_kafka_message_t *rkm)
{
    struct job *job = ks_xcalloc(1, sizeof(*job));

    job->w = w;
    job->rkm = rkm;
    job_link(w, job);
    ks_offsets_track(w->offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                     rkm->offset, &job->ticket);
    return job;
}

/* Frees a job that is in no list. */
static void job_destroy(struct worker *w, struct job *job)
{
    fanout_cancel(w, job, 0); /* job_abandon settled what it owes */
    send_redo_drop(job);
    ks_ctx_destroy(job->ctx);
    agree_free(job);
    free(job->system);
    free(job->stash);
    free(job->pre_value);
    ks_task_destroy(job->task);
    rd_kafka_message_destroy(job->rkm);
    free(job);
}

/* ordering "key": the job leaves its key to the next job waiting for it,
 * which joins the list; behind a revoked job they are dropped instead
 * (not started, uncommitted: the next owner is given them again). */
static void job_pass_key(struct worker *w, struct job *job)
{
    struct job *next = job->key_held ? order_leave(w, job) : NULL;

    while (next && job->revoked) {
        struct job *after = order_leave(w, next);

        job_destroy(w, next);
        next = after;
    }
    if (next) {
        next->key_held = true;
        job_link(w, next);
    }
}

void job_free(struct worker *w, struct job *job)
{
    job_unlink(w, job);
    job_pass_key(w, job);
    job_destroy(w, job);
}

/* Called once a job has produced everything it will produce. */
void job_produced(struct job *job)
{
    if (job->state == JOB_STORING) {
        return; /* produced later, once its done record is stored */
    }
    job->state = JOB_PRODUCING;
    if (job->unacked == 0) {
        /* Nothing went out (produce refused): dropped without commit.
         * Freed by the next job_advance_all, not here: callers up the
         * stack (that loop among them) still read the job. */
        job->abandoned = true;
    }
}

/* Ends the job with a DLQ entry only: no call, no Result. */
void job_refuse(struct worker *w,
                struct job *job,
                const char *code,
                const char *detail)
{
    send_dead_letter(w, job, code, detail);
    job_produced(job);
}

/* Redis answered one of the task's commands with an error (WRONGTYPE, a
 * script error): it would answer the same again, so this is not "Redis
 * down" and never a reason to fail open; the task goes to the DLQ with
 * code `redis` and the error (docs/design.md section 7). what names the
 * step. */
void job_redis_error(struct worker *w, struct job *job, const char *what)
{
    char detail[384];

    snprintf(detail, sizeof(detail), "%s: redis answered with an error: %s",
             what, ks_store_last_error(w->rs));
    job_refuse(w, job, "redis", detail);
}

/* An outcome is produced only once its done record is stored: a record
 * out without one would be answered by a second (paid) call when a
 * rebalance or a crash redelivers the task. The record waits in the job
 * (JOB_STORING) for the next turn of the loop, which writes every waiting
 * record in one round trip (store_all), and again each second while Redis
 * cannot take it; a drain waits for it like for a call. Tag 0: produced
 * at once, not stored. topic is borrowed: it outlives the job. */
static void job_store_and_produce(struct worker *w,
                                  struct job *job,
                                  char tag,
                                  const char *topic,
                                  const char *value,
                                  size_t len)
{
    if (!tag) {
        send_produce(w, job, topic, value, len);
        return;
    }
    free(job->stash);
    job->stash = ks_xmalloc(len + 2);
    job->stash[0] = tag;
    memcpy(job->stash + 1, value, len);
    job->stash[len + 1] = '\0';
    job->stash_len = len + 1;
    job->stash_topic = topic;
    job->state = JOB_STORING;
    job->due_ms = 0;
}

/* Stores and produces the outcome (finish.c, escalate.c), then its DLQ
 * entry. Frees out->value. */
void job_apply(struct worker *w, struct job *job, struct outcome *out)
{
    if (out->abandon) {
        job->abandoned = true; /* nothing to commit: redelivered */
    }
    if (out->value) {
        job_store_and_produce(w, job, out->tag, out->topic, out->value,
                              out->len);
    }
    if (out->dlq_code) {
        send_dead_letter(w, job, out->dlq_code, out->dlq_detail);
    }
    free(out->value);
    out->value = NULL;
    job_produced(job);
}

/* JOB_ESCALATING: the context is saved by the next turn's round trip
 * (lookup_all, with every other job's), then the Escalation goes out
 * (hand_on_saved); Redis down, the save is tried again at due_ms. */
void job_hand_on(struct worker *w, struct job *job)
{
    (void)w;
    job->due_ms = 0; /* due now (the loop calls it only once due) */
}

/* Applies how the job ends (finish.c): a hand-on, or an outcome. */
void job_finish(struct worker *w, struct job *job, struct outcome *out)
{
    if (out->hand_on) {
        job->state = JOB_ESCALATING;
        job_hand_on(w, job);
        return;
    }
    job_apply(w, job, out);
}
