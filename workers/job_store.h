/*
 * job_store.h - done records and escalation contexts for many jobs at
 * once (job_store.c, over batch.c's pipelined round trips). Part of the
 * job module (see job_life.h); included by job.c only. Event-loop thread
 * only.
 */
#ifndef KASCADE_WORKERS_JOB_STORE_H
#define KASCADE_WORKERS_JOB_STORE_H

#include "worker_internal.h"

/* Writes the done records of every due JOB_STORING job in one round trip
 * and produces their outcomes (or, Redis down, retries in a second). */
void job_store_all(struct worker *w);

/* The turn's round trip: writes the done records of due JOB_STORING jobs
 * (their outcomes then go out), saves the contexts of due hand-ons and
 * looks up the done records (and contexts, hop > 0) of due
 * JOB_CHECK_DONE jobs; what it finds waits in job->pre_* for the job's
 * turn. */
void job_lookup_all(struct worker *w);

#endif
