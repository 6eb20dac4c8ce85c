/*
 * batch.h - the worker's Redis round trips for many jobs at once
 * (batch.c): at the start of each loop turn, one pipelined round trip
 * (batch_turn_run) writes the done records of every job waiting on one,
 * saves the escalation contexts of every job handing on and looks up the
 * done records (and, for hop > 0, the contexts) of every newly accepted
 * job; batch_store writes done records alone (the escalations stored in
 * the same turn). Returns per-job results that
 * job.c applies; the jobs are borrowed and left unchanged. Event-loop
 * thread only.
 */
#ifndef KASCADE_WORKERS_BATCH_H
#define KASCADE_WORKERS_BATCH_H

#include "worker_internal.h"

#define BATCH_MAX 1024 /* jobs in one batch_store round trip */

/* Writes the done records (tag byte, then the outcome: job->stash) of
 * jobs[0..n), n <= BATCH_MAX, in one round trip; errs[i] is KS_OK once
 * job i's is stored. */
void batch_store(struct worker *w,
                 size_t n,
                 struct job *const *jobs,
                 enum ks_err *errs);

/* Up to BATCH_MAX jobs in state whose due time has come and that have no
 * looked-up record waiting (pre_done), oldest first, into out (borrowed
 * pointers). Returns how many. */
size_t batch_collect_due(struct worker *w,
                         enum job_state state,
                         struct job **out);

/* What the turn's round trip found for one JOB_CHECK_DONE job. */
struct batch_found {
    enum ks_err err;    /* of the done record, as ks_store_done_get */
    char *value;        /* owned; NULL: no record (or conflict) */
    size_t len;         /* of value */
    bool conflict;      /* the record under the key is another task's */
    struct ks_ctx *ctx; /* hop > 0: the context (owned); NULL: none */
};

/* The turn's round trip: every due JOB_STORING job (its done record
 * written first, as batch_store would; at most BATCH_MAX), every due
 * JOB_ESCALATING job (its job->ctx saved) and every due JOB_CHECK_DONE
 * job without pre_done (its done record and, for hop > 0, its context
 * looked up). */
struct batch_turn {
    size_t n_store;
    struct job **store;      /* borrowed */
    enum ks_err *store_errs; /* as batch_store's errs */
    size_t n_save;
    struct job **save;      /* borrowed */
    enum ks_err *save_errs; /* KS_OK: saved; KS_ERR_RETRY: Redis down;
                               KS_ERR_UPSTREAM: an error reply;
                               KS_ERR_NOMEM: it cannot be encoded */
    size_t n_check;
    struct job **check; /* borrowed */
    struct batch_found *found;
};

/* Collects the due jobs into bt (caller's, filled here) and makes their
 * round trip: all of them in one pipeline, whatever their number. A
 * context that cannot be loaded (missing, corrupt, an error reply) is
 * logged and left NULL: the job is answered without the earlier
 * attempts. Release bt with batch_turn_fini. */
void batch_turn_run(struct worker *w, struct batch_turn *bt);

/* Frees bt's arrays and whatever value or ctx job.c did not take (it
 * takes one by setting the field to NULL). */
void batch_turn_fini(struct batch_turn *bt);

#endif
