/*
 * batch.c - the worker's done-record round trips for many jobs at once.
 *
 * Each turn of the loop first writes the done records of every job whose
 * outcome is waiting for one (JOB_STORING), then looks up the done records
 * of every newly accepted job (JOB_CHECK_DONE), each set in one pipelined
 * round trip instead of one round trip a job: with blocking hiredis calls
 * on the event loop, round trips were what bounded a worker with hundreds
 * of calls in flight. Outcomes are produced only after their records are
 * stored (fail closed); under budget.fail_open an outcome whose record
 * cannot be stored goes out anyway.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "worker_internal.h"

#include "base/banned.h"

#define BATCH_MAX 256

static size_t collect(struct worker *w, enum job_state state, struct job **out)
{
    int64_t now = ks_mono_ms();
    size_t n = 0;

    for (struct job *job = w->head; job && n < BATCH_MAX; job = job->next) {
        if (job->state == state && job->due_ms <= now && !job->pre_done) {
            out[n++] = job;
        }
    }
    return n;
}

static void stored(struct worker *w, struct job *job)
{
    job->state = JOB_PRODUCING;
    job_produce(w, job, job->stash_topic, job->stash + 1, job->stash_len - 1);
    free(job->stash);
    job->stash = NULL;
    job_produced(w, job);
}

static void not_stored(struct worker *w, struct job *job)
{
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

void batch_stores(struct worker *w)
{
    struct job *jobs[BATCH_MAX];
    const char *ids[BATCH_MAX], *values[BATCH_MAX];
    uint32_t hops[BATCH_MAX];
    size_t lens[BATCH_MAX], n = collect(w, JOB_STORING, jobs);
    enum ks_err errs[BATCH_MAX];

    if (n == 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = jobs[i]->task->id;
        hops[i] = jobs[i]->hop;
        values[i] = jobs[i]->stash;
        lens[i] = jobs[i]->stash_len;
    }
    ks_store_done_put_many(w->rs, n, ids, hops, values, lens, errs);
    for (size_t i = 0; i < n; i++) {
        if (errs[i] == KS_OK) {
            stored(w, jobs[i]);
        } else {
            not_stored(w, jobs[i]);
        }
    }
}

void batch_lookups(struct worker *w)
{
    struct job *jobs[BATCH_MAX];
    const char *ids[BATCH_MAX];
    uint32_t hops[BATCH_MAX];
    char *values[BATCH_MAX];
    size_t lens[BATCH_MAX], n = collect(w, JOB_CHECK_DONE, jobs);

    if (n < 2) {
        return; /* one job: check_done's own look-up is as cheap */
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = jobs[i]->task->id;
        hops[i] = jobs[i]->hop;
    }
    if (ks_store_done_get_many(w->rs, n, ids, hops, values, lens) != KS_OK) {
        return; /* check_done finds Redis down and holds the jobs */
    }
    for (size_t i = 0; i < n; i++) {
        jobs[i]->pre_done = true;
        jobs[i]->pre_value = values[i];
        jobs[i]->pre_len = lens[i];
    }
}
