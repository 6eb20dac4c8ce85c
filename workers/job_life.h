/*
 * job_life.h - the job object and how a job ends (job_life.c): the
 * worker's job list (the backlog), creating and freeing a job, and
 * applying an outcome (store then produce, DLQ entry, hand-on). One of
 * the four files of the job module (job.c, job_life.c, job_call.c,
 * job_store.c), the only ones that change a job's state; included by
 * those only. Nothing returned is owned by the caller. Event-loop thread
 * only.
 */
#ifndef KASCADE_WORKERS_JOB_LIFE_H
#define KASCADE_WORKERS_JOB_LIFE_H

#include <stddef.h>

#include "finish.h"
#include "worker_internal.h"

/* A new job for rkm (takes ownership), appended to the list, its offset
 * tracked. */
struct job *job_new(struct worker *w, rd_kafka_message_t *rkm);

/* Takes job out of the list (ordering "key": it waits in its key's
 * queue instead). */
void job_unlink(struct worker *w, struct job *job);

/* Unlinks and frees job, passing its ordering key on. */
void job_free(struct worker *w, struct job *job);

/* The job has produced everything it will: JOB_PRODUCING (or, nothing
 * out, abandoned and freed by the next job_advance_all). */
void job_produced(struct job *job);

/* Ends the job with a DLQ entry only (code and detail copied). */
void job_refuse(struct worker *w,
                struct job *job,
                const char *code,
                const char *detail);

/* Redis answered the step `what` with an error: DLQ with code `redis`. */
void job_redis_error(struct worker *w, struct job *job, const char *what);

/* Stores (tag != 0) and produces the outcome, then its DLQ entry; frees
 * out->value. */
void job_apply(struct worker *w, struct job *job, struct outcome *out);

/* JOB_ESCALATING: due now; the next turn saves the context. */
void job_hand_on(struct worker *w, struct job *job);

/* Applies how the job ends (finish.c): a hand-on, or job_apply. */
void job_finish(struct worker *w, struct job *job, struct outcome *out);

#endif
