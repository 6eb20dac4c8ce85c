/*
 * spend.h - the budget around each model call (spend.c, docs/design.md section
 * 7): a reservation of the call's worst case before it, the settle after.
 * Kept settles and fail-open spend are owned by the worker (w->spend);
 * the job's reservation fields (res, has_res, unreserved, holds,
 * refused_by, due_ms on a hold) are written here and read by job.c.
 * Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_SPEND_H
#define KASCADE_WORKERS_SPEND_H

#include "worker_internal.h"

enum spend_verdict {
    SPEND_GO,      /* reserved (or fail-open): call */
    SPEND_HOLD,    /* try again at job->due_ms: Redis down, or budget spent
                      under the downgrade/defer policy */
    SPEND_REFUSED, /* budget spent under the reject policy, or the call's
                      worst case is over the task's max_cost_usd */
    SPEND_WAIT,    /* the tier's budget is full of open reservations: the
                      job stays in JOB_WAIT_SLOT until the gate opens */
    SPEND_ERROR,   /* Redis answered with an error (WRONGTYPE, a script
                      error; ks_store_last_error): permanent for the task,
                      never fail-open: DLQ `redis` */
    SPEND_INVALID, /* the task's tenant cannot name a budget (too long):
                      DLQ `invalid` */
};

/* Milliseconds until the worker's reservation gate opens (0: open). */
int64_t spend_gate_ms(const struct worker *w);

/* Reserves the worst-case cost of the next call of each of jobs[0..n)
 * (n <= 256, borrowed), all in one Redis round trip: verdicts[i] is job
 * i's (the job's reservation fields are set as the verdict says). */
void spend_reserve_many(struct worker *w,
                        size_t n,
                        struct job *const *jobs,
                        enum spend_verdict *verdicts);

/* What the ended call of job owes (micro-dollars): the usage when the
 * answer had it; 0 when the request never went out (easy and rc tell) or
 * the provider answered with an error status; else (sent, no usable
 * answer: timeout, reset, malformed 200) its worst case
 * (spend_worst_case). */
int64_t spend_call_charge(struct worker *w,
                          const struct job *job,
                          CURL *easy,
                          CURLcode rc,
                          const struct ks_model_reply *reply);

/* The worst case of one call of the job's turn: its reservation's amount
 * (or, fail open, unreserved, computed again) shared by the turn's calls
 * (agree_calls; several calls each ask for one answer, so the parts are
 * equal). */
int64_t spend_worst_case(struct worker *w, const struct job *job);

/* Settles the job's open reservation with the actual cost (0: nothing was
 * sent); kept and retried when Redis cannot be reached. */
void spend_settle(struct worker *w, struct job *job, int64_t actual_micro);

/* Reads the replies of the settles spend_flush sent (the ones Redis did
 * not take are kept and retried by spend_tick). */
void spend_collect(struct worker *w);

/* Collects the settles sent before, then sends this turn's in one
 * pipeline without waiting for the replies (redis/store.h's deferred
 * pipeline): Redis settles while the loop serves Kafka; the reservations
 * sent after them see them. */
void spend_flush(struct worker *w);

/* Once a second: retries kept settles and fail-open spend, refreshes the
 * budget gauges. */
void spend_tick(struct worker *w);

void spend_fini(struct worker *w);

#endif
