/*
 * guard.h - what stands between a job and its provider (guard.c): the
 * providers' circuit breakers (owned by the worker, w->guard) and their
 * fleet-wide rate limits. May move job->provider on to the next provider
 * and set job->due_ms for a wait; the verdict is applied by job.c.
 * Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_GUARD_H
#define KASCADE_WORKERS_GUARD_H

#include "worker_internal.h"

enum guard_verdict {
    GUARD_GO,        /* call job->provider (it may have moved on to the
                        next provider whose circuit lets calls through) */
    GUARD_WAIT,      /* hold until job->due_ms: every provider left has
                        its circuit open, or the rate limit is reached */
    GUARD_EXHAUSTED, /* every provider left stayed open past a probe */
    GUARD_ERROR,     /* the rate-limit script got an error reply from
                        Redis (ks_store_last_error): permanent for the
                        task, never fail-open: DLQ `redis` */
};

/* What follows a failed call (guard_after_failure). */
enum guard_retry {
    GUARD_RETRY,    /* the same provider again at job->due_ms */
    GUARD_FALLBACK, /* the next provider (job->provider moved on) */
    GUARD_GIVE_UP,  /* no provider left: the hop fails */
};

/* Registers the metrics and closes every circuit. */
void guard_init(struct worker *w);

/* Before a call, first: picks the job's provider by circuit (no Redis):
 * GUARD_GO, GUARD_WAIT or GUARD_EXHAUSTED. */
enum guard_verdict guard_pick(struct worker *w, struct job *job);

/* Before a call, last (its budget is reserved): admits the call under the
 * provider's rpm/tpm (Redis down: budget.fail_open decides; an error reply
 * is GUARD_ERROR whatever the policy). On GUARD_GO the admission is kept
 * in job->rate_member until the call starts or guard_release. */
enum guard_verdict guard_admit(struct worker *w, struct job *job);

/* guard_admit for jobs[0..n) (borrowed) in one Redis round trip:
 * verdicts[i] is job i's. */
void guard_admit_many(struct worker *w,
                      size_t n,
                      struct job *const *jobs,
                      enum guard_verdict *verdicts);

/* The admitted call will not start: gives its rate-limit slot back. */
void guard_release(struct worker *w, struct job *job);

/* The job's call started (after GUARD_GO, with nothing in between). */
void guard_call_begin(struct worker *w, struct job *job);

/* The job's call ended with reply: counts for or against its circuit. */
void guard_call_end(struct worker *w,
                    struct job *job,
                    const struct ks_model_reply *reply);

/* After a failed call: a retriable error with retries left backs off
 * (exponential, full jitter, never below Retry-After); else the next
 * provider, if any. Moves job->attempt, job->provider and job->due_ms. */
enum guard_retry guard_after_failure(struct worker *w,
                                     struct job *job,
                                     const struct ks_model_reply *reply);

void guard_fini(struct worker *w);

#endif
