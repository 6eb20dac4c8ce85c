/*
 * job_store.c - done records and escalation contexts in bulk: one
 * pipelined round trip per loop turn (batch.c) for every job that needs
 * one. An outcome goes out only once its done record is stored; a
 * different task under the same tenant and id within the TTL is
 * dead-lettered (`conflict`), never answered from the other task's
 * record. Split from job.c; see job_store.h.
 */
#include "job_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "batch.h"
#include "escalate.h"
#include "job_life.h"
#include "send.h"

#include "base/banned.h"

static void stored(struct worker *w, struct job *job)
{
    job->state = JOB_PRODUCING;
    send_produce(w, job, job->stash_topic, job->stash + 1, job->stash_len - 1);
    free(job->stash);
    job->stash = NULL;
    job_produced(job);
}

/* The record was not stored. Redis down: fail closed, the outcome waits
 * for its record; under budget.fail_open it goes out anyway. An error
 * reply (OOM, READONLY, NOPERM) or a key that does not fit would come
 * back each second and hold the partition's commits: the call is paid
 * for, so the outcome goes out without its record. */
static void not_stored(struct worker *w, struct job *job, enum ks_err err)
{
    if (err == KS_ERR_UPSTREAM || err == KS_ERR_INVALID) {
        ks_log_error("worker",
                     "%s: done record refused (%s): the outcome goes out "
                     "without it",
                     job->task->id,
                     err == KS_ERR_INVALID ? "key too long"
                                           : ks_store_last_error(w->rs));
        stored(w, job);
        return;
    }
    if (w->cfg->budget_fail_open) {
        ks_log_warn("worker",
                    "%s: done record not stored (redis down, fail open); "
                    "a redelivery would call the model again",
                    job->task->id);
        stored(w, job);
        return;
    }
    if (!job->stash_warned) {
        ks_log_warn("worker",
                    "%s: done record not stored (redis down): the outcome "
                    "waits for it",
                    job->task->id);
        job->stash_warned = true;
    }
    job->due_ms = ks_mono_ms() + REDIS_RETRY_MS;
}

/* Writes the done records of every due JOB_STORING job in one round trip
 * and produces their outcomes (or, Redis down, retries in a second). */
void job_store_all(struct worker *w)
{
    struct job *jobs[BATCH_MAX];
    enum ks_err errs[BATCH_MAX];
    size_t n = batch_collect_due(w, JOB_STORING, jobs);

    if (n == 0) {
        return;
    }
    batch_store(w, n, jobs, errs);
    for (size_t i = 0; i < n; i++) {
        if (errs[i] == KS_OK) {
            stored(w, jobs[i]);
        } else {
            not_stored(w, jobs[i], errs[i]);
        }
    }
}

/* The turn's round trip saved job->ctx (err KS_OK) or not: on KS_OK the
 * Escalation is stored and produced. Returns true when the job now waits
 * for its done record (JOB_STORING). */
static bool hand_on_saved(struct worker *w, struct job *job, enum ks_err err)
{
    struct outcome out;

    switch (err) {
    case KS_OK:
        escalate_hand_on(w, job, &out);
        job_apply(w, job, &out);
        return job->state == JOB_STORING;
    case KS_ERR_RETRY: /* Redis down: the context waits for it */
        job->due_ms = ks_mono_ms() + REDIS_RETRY_MS;
        return false;
    case KS_ERR_UPSTREAM:
        job_redis_error(w, job, "escalation context");
        return false;
    default: /* the context cannot be encoded: it never will be */
        job_refuse(w, job, "invalid",
                   "the escalation context could not be encoded");
        return false;
    }
}

/* What the turn's round trip found for a JOB_CHECK_DONE job: a refusal
 * now, a hold while Redis is down (fail closed), or the record (or its
 * absence) in job->pre_*, which check_done takes in the job's turn of
 * the loop (after its ordering key's claim). Takes f->value and f->ctx. */
static void looked_up(struct worker *w, struct job *job, struct batch_found *f)
{
    if (f->err == KS_OK && f->conflict) {
        /* The id was used by a different task within redis.done_ttl_s:
         * its record is not this task's answer, and a second record
         * under the key would answer the first task's redeliveries. */
        job_refuse(w, job, "conflict",
                   "the id was used for a different task within "
                   "redis.done_ttl_s");
        return;
    }
    if (f->err == KS_ERR_INVALID) {
        job_refuse(w, job, "invalid",
                   "the tenant and id are too long for a key");
        return;
    }
    if (f->err == KS_ERR_UPSTREAM) {
        job_redis_error(w, job, "done record");
        return;
    }
    if (f->err != KS_OK && (!w->cfg->budget_fail_open || job->hop > 0)) {
        /* Fail closed: no call that could be a second payment (nor, on
         * a later hop, one without the earlier attempts). */
        ks_metrics_set_health(w->metrics, false,
                              "redis unreachable: model calls held");
        job->due_ms = ks_mono_ms() + REDIS_RETRY_MS;
        return;
    }
    if (f->err == KS_OK) {
        ks_metrics_set_health(w->metrics, true, NULL);
    }
    if (f->ctx) {
        ks_ctx_destroy(job->ctx);
        job->ctx = f->ctx;
        f->ctx = NULL;
    }
    job->pre_done = true;
    job->pre_value = f->value;
    job->pre_len = f->len;
    f->value = NULL;
}

/* One pipelined round trip for the turn (batch.c): the done records of
 * every due JOB_STORING job are written (and their outcomes produced),
 * the contexts of every due hand-on saved and the done records (and
 * contexts, hop > 0) of every due JOB_CHECK_DONE job looked up, one job
 * as many. Escalations
 * whose context was saved are stored and produced in this turn (one more
 * round trip, store_all, only when there are some). */
void job_lookup_all(struct worker *w)
{
    struct batch_turn bt;
    bool storing = false;

    batch_turn_run(w, &bt);
    for (size_t i = 0; i < bt.n_store; i++) {
        if (bt.store_errs[i] == KS_OK) {
            stored(w, bt.store[i]);
        } else {
            not_stored(w, bt.store[i], bt.store_errs[i]);
        }
    }
    for (size_t i = 0; i < bt.n_save; i++) {
        storing |= hand_on_saved(w, bt.save[i], bt.save_errs[i]);
    }
    for (size_t i = 0; i < bt.n_check; i++) {
        looked_up(w, bt.check[i], &bt.found[i]);
    }
    batch_turn_fini(&bt);
    if (storing) {
        job_store_all(w);
    }
}
