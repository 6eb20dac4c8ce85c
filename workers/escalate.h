/*
 * escalate.h - the worker's side of the escalation loop (escalate.c): the
 * system prompt of a call, the context of an escalated task (job->ctx,
 * job->system: owned by the job, made here) and the Escalation of a
 * hand-on, returned in a struct outcome that job.c owns and applies.
 * Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_ESCALATE_H
#define KASCADE_WORKERS_ESCALATE_H

#include "worker_internal.h"

/* Loads the context of an escalated job (hop > 0) and builds the job's
 * system prompt. Returns KS_OK, or KS_ERR_RETRY when Redis is down. */
enum ks_err escalate_prepare(struct worker *w, struct job *job);

/* Adds attempt a (copied) to job->ctx, made on the first hand-on.
 * Returns false when the task cannot be copied into a context. */
bool escalate_record(struct worker *w,
                     struct job *job,
                     const struct ks_ctx_attempt *a);

/* Saves job->ctx and fills out with the Escalation of its last attempt,
 * for kascade.escalations (out->abandon when it cannot be encoded).
 * Returns KS_OK; KS_ERR_RETRY when Redis is down, KS_ERR_UPSTREAM when
 * it answered with an error (ks_store_last_error), another error when the
 * context cannot be encoded (out empty in each case). */
enum ks_err escalate_hand_on(struct worker *w,
                             const struct job *job,
                             struct outcome *out);

#endif
