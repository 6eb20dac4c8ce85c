/*
 * fanout.h - a job's turn of model calls (fanout.c), in flight together
 * on the worker's one curl multi: one call, or for agreement without
 * supports_n one call per answer missing (agree_plan). Owns job->fan's
 * calls, the failure kept for its reply and the turn's charge (what its
 * ended calls owe, settled once when the last ends), and w->n_calls (the
 * calls in flight, which tiers[].max_inflight bounds). job->fan's shape
 * (n_calls, n_ask) is planned by the job module. Called by the job module
 * only; calls nothing of it. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_FANOUT_H
#define KASCADE_WORKERS_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker_internal.h"

/* Prepares the turn's job->fan.n_calls calls of the job's provider with
 * the job's system prompt, each asking for n_ask / n_calls answers, and
 * adds them to w->multi. Returns false with errstr when a call cannot be
 * prepared: then none was started. */
bool fanout_start(struct worker *w,
                  struct job *job,
                  char *errstr,
                  size_t errstr_size);

/* A call of the job's turn ended (its reply read): it leaves w->multi and
 * the turn, and what it owes (charge, micro-USD) is added to the turn's.
 * Returns true when the call is kept (the turn's first failure, its reply
 * copied to job->fan.fail_reply): the caller must not destroy it. */
bool fanout_end(struct worker *w,
                struct job *job,
                struct ks_model_call *call,
                const struct ks_model_reply *reply,
                int64_t charge);

/* The turn is over (no call in flight): returns its charge and clears it. */
int64_t fanout_take_charge(struct job *job);

/* The turn's kept failure, if any, handed to the caller (who destroys it
 * once done with *reply, whose strings are the call's); NULL when none
 * failed. */
struct ks_model_call *fanout_take_failure(struct job *job,
                                          struct ks_model_reply *reply);

/* The job leaves (abandoned, freed): every call in flight leaves w->multi
 * and is freed, the kept failure too. Returns what the turn owes: its
 * ended calls' charge plus worst_each for each call cancelled in flight
 * (it may have reached the provider). */
int64_t fanout_cancel(struct worker *w, struct job *job, int64_t worst_each);

#endif
