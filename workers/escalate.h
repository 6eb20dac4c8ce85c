/*
 * escalate.h - the worker's side of the escalation loop (escalate.c): the
 * system prompt of a call, the context of an escalated task (job->ctx,
 * job->system: owned by the job, made here) and the Escalation of a
 * hand-on, returned in a struct outcome that job.c owns and applies.
 * The context's Redis round trips are batch.c's. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_ESCALATE_H
#define KASCADE_WORKERS_ESCALATE_H

#include "worker_internal.h"

/* Builds the job's system prompt from the tier, the task and job->ctx
 * (for hop > 0 the context the turn's round trip loaded, batch.c; NULL
 * when it could not be had). No Redis. */
void escalate_prepare(struct worker *w, struct job *job);

/* Adds attempt a (copied) to job->ctx, made on the first hand-on.
 * Returns false when the task cannot be copied into a context. */
bool escalate_record(struct worker *w,
                     struct job *job,
                     const struct ks_ctx_attempt *a);

/* Fills out with the Escalation of job->ctx's last attempt, for
 * kascade.escalations (out->abandon when it cannot be encoded). Call only
 * once job->ctx is saved (the turn's round trip, batch.c): the router
 * must never read an escalation whose context is missing. No Redis. */
void escalate_hand_on(struct worker *w,
                      const struct job *job,
                      struct outcome *out);

#endif
