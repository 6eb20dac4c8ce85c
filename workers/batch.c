/*
 * batch.c - the worker's done-record round trips for many jobs at once.
 *
 * Each turn of the loop job.c first writes the done records of every job
 * whose outcome is waiting for one (JOB_STORING), then looks up the done
 * records of every newly accepted job (JOB_CHECK_DONE), each set in one
 * pipelined round trip instead of one round trip a job: with blocking
 * hiredis calls on the event loop, round trips were what bounded a worker
 * with hundreds of calls in flight. This file makes the round trips and
 * returns what each job got; job.c acts on it.
 */
#include "batch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

void batch_store(struct worker *w,
                 size_t n,
                 struct job *const *jobs,
                 enum ks_err *errs)
{
    const struct ks_task *tasks[BATCH_MAX];
    const char *values[BATCH_MAX];
    uint32_t hops[BATCH_MAX];
    size_t lens[BATCH_MAX];

    for (size_t i = 0; i < n; i++) {
        tasks[i] = jobs[i]->task;
        hops[i] = jobs[i]->hop;
        values[i] = jobs[i]->stash;
        lens[i] = jobs[i]->stash_len;
    }
    ks_store_done_put_many(w->rs, n, tasks, hops, values, lens, errs);
}

enum ks_err batch_lookup(struct worker *w,
                         size_t n,
                         struct job *const *jobs,
                         char **values,
                         size_t *lens,
                         bool *conflicts)
{
    const struct ks_task *tasks[BATCH_MAX];
    uint32_t hops[BATCH_MAX];

    for (size_t i = 0; i < n; i++) {
        tasks[i] = jobs[i]->task;
        hops[i] = jobs[i]->hop;
    }
    return ks_store_done_get_many(w->rs, n, tasks, hops, values, lens,
                                  conflicts);
}

/* Up to BATCH_MAX jobs in state whose time has come, oldest first. */
size_t batch_collect_due(struct worker *w,
                         enum job_state state,
                         struct job **out)
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
