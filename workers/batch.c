/*
 * batch.c - the worker's Redis round trips for many jobs at once.
 *
 * Each turn of the loop job.c makes one round trip (batch_turn_run) that
 * writes the done records of every job whose outcome is waiting for one
 * (JOB_STORING), saves the escalation context of every job handing on
 * (JOB_ESCALATING) and looks up the done record of every newly accepted
 * job (JOB_CHECK_DONE), with the context of those escalated here (hop >
 * 0) in the same pipeline; the writes go first, as when they were a
 * round trip of their own (batch_store, now only for the escalations
 * stored later in the turn). A single job takes the
 * same path: there is no per-job round trip, so the number of round trips
 * a turn makes is fixed, whatever the number of jobs. This file makes the
 * round trips and returns what each job got; job.c acts on it.
 *
 * Why pipelined once per turn, not hiredis's async API on the loop's
 * poll: hiredis 0.14.1's redisAsyncContext has no command timeouts (each
 * command would need its own deadline and a disconnect on expiry), its fd
 * would have to join worker.c's curl_multi_poll, and the budget and rate
 * limit round trips (spend.c, guard.c) are pipelined once per turn too,
 * so one model serves them all. The cost: a turn still waits for its
 * round trips, so a Redis that stalls for S (DEBUG SLEEP, a fork) holds
 * the loop for about S once per turn, not once per job; calls in flight
 * lose S of their provider timeout, never more (tests/integration/
 * test_redis_slow.sh).
 */
#include "batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
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

/* Is job due for the turn's round trip: 1 a context to save, 2 a
 * look-up, 3 a done record to write (batch_collect_due's rule), 0 none. */
static int turn_wants(const struct job *job, int64_t now)
{
    if (job->due_ms > now) {
        return 0;
    }
    if (job->state == JOB_STORING) {
        return job->pre_done ? 0 : 3;
    }
    if (job->state == JOB_ESCALATING) {
        return 1;
    }
    return job->state == JOB_CHECK_DONE && !job->pre_done ? 2 : 0;
}

/* Every due JOB_ESCALATING and JOB_CHECK_DONE job into bt (nothing is
 * allocated on a turn without any: most turns of a busy loop). */
static void turn_collect(struct worker *w, struct batch_turn *bt)
{
    int64_t now = ks_mono_ms();
    size_t n_save = 0, n_check = 0, n_store = 0;

    *bt = (struct batch_turn){0};
    for (const struct job *job = w->head; job; job = job->next) {
        int wants = turn_wants(job, now);

        n_save += wants == 1;
        n_check += wants == 2;
        n_store += wants == 3;
    }
    if (n_save + n_check + n_store == 0) {
        return;
    }
    n_store = n_store < BATCH_MAX ? n_store : BATCH_MAX;
    bt->store = ks_xcalloc(n_store + 1, sizeof(*bt->store));
    bt->store_errs = ks_xcalloc(n_store + 1, sizeof(*bt->store_errs));
    bt->save = ks_xcalloc(n_save + 1, sizeof(*bt->save));
    bt->save_errs = ks_xcalloc(n_save + 1, sizeof(*bt->save_errs));
    bt->check = ks_xcalloc(n_check + 1, sizeof(*bt->check));
    bt->found = ks_xcalloc(n_check + 1, sizeof(*bt->found));
    for (struct job *job = w->head; job; job = job->next) {
        switch (turn_wants(job, now)) {
        case 1:
            bt->save[bt->n_save++] = job;
            break;
        case 2:
            bt->check[bt->n_check++] = job;
            break;
        case 3:
            if (bt->n_store < n_store) {
                bt->store[bt->n_store++] = job;
            }
            break;
        }
    }
}

/* Indexes of one job's commands in the batch. */
struct turn_idx {
    size_t done, ctx;
    bool has_done, has_ctx;
};

/* Appends the commands of bt's jobs to b; idx[] says where they went. */
static void turn_build(struct worker *w,
                       struct batch_turn *bt,
                       struct ks_store_batch *b,
                       size_t *store_idx,
                       struct turn_idx *save_idx,
                       struct turn_idx *check_idx)
{
    for (size_t i = 0; i < bt->n_store; i++) {
        const struct job *job = bt->store[i];

        bt->store_errs[i] =
            ks_store_done_put_add(w->rs, b, job->task, job->hop, job->stash,
                                  job->stash_len, &store_idx[i]);
    }
    for (size_t i = 0; i < bt->n_save; i++) {
        bt->save_errs[i] =
            ks_ctx_save_add(w->rs, b, bt->save[i]->ctx, &save_idx[i].done);
    }
    for (size_t i = 0; i < bt->n_check; i++) {
        const struct job *job = bt->check[i];

        bt->found[i].err = ks_store_done_get_add(w->rs, b, job->task, job->hop,
                                                 &check_idx[i].done);
        check_idx[i].has_done = bt->found[i].err == KS_OK;
        if (check_idx[i].has_done && job->hop > 0 && !job->ctx) {
            ks_ctx_load_add(w->rs, b, job->task->tenant, job->task->id,
                            &check_idx[i].ctx);
            check_idx[i].has_ctx = true;
        }
    }
}

/* The context of a looked-up job, or NULL (logged) when it cannot be
 * had; only worth a line when the job is going to be called. */
static struct ks_ctx *turn_ctx(struct worker *w,
                               const struct ks_store_batch *b,
                               const struct job *job,
                               size_t idx,
                               const struct batch_found *f)
{
    struct ks_ctx *ctx = NULL;
    char errstr[256];
    enum ks_err err =
        ks_ctx_load_reply(w->rs, b, idx, job->task->tenant, job->task->id,
                          &w->cfg->limits, &ctx, errstr, sizeof(errstr));

    if (err != KS_OK && f->err == KS_OK && !f->value && !f->conflict) {
        ks_log_warn("worker",
                    "%s hop %" PRIu32 ": %s; answering without the "
                    "earlier attempts",
                    job->task->id, job->hop, errstr);
    }
    return ctx;
}

/* Reads the replies of a batch that ran into bt. */
static void turn_read(struct worker *w,
                      struct batch_turn *bt,
                      const struct ks_store_batch *b,
                      const size_t *store_idx,
                      const struct turn_idx *save_idx,
                      const struct turn_idx *check_idx)
{
    for (size_t i = 0; i < bt->n_store; i++) {
        if (bt->store_errs[i] == KS_OK) {
            bt->store_errs[i] =
                ks_store_done_put_reply(b, store_idx[i], bt->store[i]->task);
        }
    }
    for (size_t i = 0; i < bt->n_save; i++) {
        if (bt->save_errs[i] == KS_OK) {
            bt->save_errs[i] = ks_ctx_save_reply(b, save_idx[i].done);
        }
    }
    for (size_t i = 0; i < bt->n_check; i++) {
        struct batch_found *f = &bt->found[i];

        if (!check_idx[i].has_done) {
            continue; /* the key does not fit: KS_ERR_INVALID */
        }
        f->err = ks_store_done_get_reply(w->rs, b, check_idx[i].done,
                                         bt->check[i]->task, &f->value, &f->len,
                                         &f->conflict);
        if (check_idx[i].has_ctx) {
            f->ctx = turn_ctx(w, b, bt->check[i], check_idx[i].ctx, f);
        }
    }
}

void batch_turn_run(struct worker *w, struct batch_turn *bt)
{
    struct ks_store_batch *b;
    struct turn_idx *save_idx, *check_idx;
    size_t *store_idx;

    turn_collect(w, bt);
    if (bt->n_store == 0 && bt->n_save == 0 && bt->n_check == 0) {
        return;
    }
    b = ks_store_batch_new();
    store_idx = ks_xcalloc(bt->n_store + 1, sizeof(*store_idx));
    save_idx = ks_xcalloc(bt->n_save + 1, sizeof(*save_idx));
    check_idx = ks_xcalloc(bt->n_check + 1, sizeof(*check_idx));
    turn_build(w, bt, b, store_idx, save_idx, check_idx);
    if (ks_store_batch_run(w->rs, b) != KS_OK) {
        /* Redis down: every command is KS_ERR_RETRY, read below. */
        ks_log_debug("worker",
                     "redis unreachable: %zu done record(s), %zu "
                     "context(s) and %zu look-up(s) wait",
                     bt->n_store, bt->n_save, bt->n_check);
    }
    turn_read(w, bt, b, store_idx, save_idx, check_idx);
    free(check_idx);
    free(save_idx);
    free(store_idx);
    ks_store_batch_destroy(b);
}

void batch_turn_fini(struct batch_turn *bt)
{
    for (size_t i = 0; i < bt->n_check; i++) {
        free(bt->found[i].value);
        ks_ctx_destroy(bt->found[i].ctx);
    }
    free(bt->found);
    free(bt->check);
    free(bt->save_errs);
    free(bt->save);
    free(bt->store_errs);
    free(bt->store);
    *bt = (struct batch_turn){0};
}
