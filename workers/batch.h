/*
 * batch.h - the done-record round trips of many jobs at once (batch.c):
 * one pipelined Redis round trip for every job that waits on its record.
 * Returns per-job results that job.c applies; the jobs are borrowed and
 * left unchanged. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_BATCH_H
#define KASCADE_WORKERS_BATCH_H

#include "worker_internal.h"

#define BATCH_MAX 256 /* jobs in one round trip */

/* Writes the done records (tag byte, then the outcome: job->stash) of
 * jobs[0..n), n <= BATCH_MAX, in one round trip; errs[i] is KS_OK once
 * job i's is stored. */
void batch_store(struct worker *w,
                 size_t n,
                 struct job *const *jobs,
                 enum ks_err *errs);

/* Looks up the done records of jobs[0..n), n <= BATCH_MAX, in one round
 * trip: values[i] (caller owns; NULL: no record, or another task's record
 * under the id: conflicts[i]) of lens[i] bytes. Returns KS_OK, or an
 * error of ks_store_done_get_many (every value NULL). */
enum ks_err batch_lookup(struct worker *w,
                         size_t n,
                         struct job *const *jobs,
                         char **values,
                         size_t *lens,
                         bool *conflicts);

/* Up to BATCH_MAX jobs in state whose due time has come and that have no
 * looked-up record waiting (pre_done), oldest first, into out (borrowed
 * pointers). Returns how many. */
size_t batch_collect_due(struct worker *w,
                         enum job_state state,
                         struct job **out);

#endif
