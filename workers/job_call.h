/*
 * job_call.h - a job's model calls (job_call.c): the turn's reservations
 * and admissions in bulk, starting a call, and what a finished call
 * leads to (job_call_done, declared in job.h for worker.c). Part of the
 * job module (see job_life.h); included by job.c only. Event-loop thread
 * only.
 */
#ifndef KASCADE_WORKERS_JOB_CALL_H
#define KASCADE_WORKERS_JOB_CALL_H

#include <stdbool.h>

#include "worker_internal.h"

/* Reserves, in one round trip, the budget of every job that may start a
 * call in this pass, then admits the reserved ones under their rate
 * limits in a second; job_reserve_and_call applies each verdict. */
void job_reserve_all(struct worker *w);

/* A JOB_WAIT_SLOT job with a free slot: circuit choice, then the verdict
 * job_reserve_all made for it, then admission and the call. Returns false
 * when it has no verdict yet (the next turn's job_reserve_all makes it). */
bool job_reserve_and_call(struct worker *w, struct job *job);

#endif
