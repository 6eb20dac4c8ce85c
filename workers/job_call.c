/*
 * job_call.c - a job's model calls: reservation and admission for many
 * jobs at once, starting the call, and its end.
 *
 * Retry policy (LESSONS.md): only timeouts, connection failures, 429 and
 * 5xx are retried, with exponential backoff and full jitter from 200 ms,
 * at least the provider's Retry-After, up to the provider's max_retries;
 * then the next provider; when none is left the task gets a `failed`
 * Result and a DLQ entry with error `provider` (or `timeout`) (guard.c
 * decides, finish.c builds the outcome). Split from job.c; see
 * job_call.h.
 */
#include "job_call.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "base/log.h"
#include "base/util.h"
#include "batch.h"
#include "classify.h"
#include "finish.h"
#include "guard.h"
#include "job.h"
#include "job_life.h"
#include "order.h"
#include "spend.h"

#include "base/banned.h"

static void start_call(struct worker *w, struct job *job)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];
    struct ks_task task = *job->task; /* borrows; system prompt swapped */
    char errstr[256];
    struct outcome out;

    task.instructions = job->system;
    job->call = ks_model_call_new(
        prov, &task, NULL, (uint32_t)ks_price_max_output(w->tier, job->task),
        agree_ask(w, job), w->cfg->limits.max_text_bytes * 2, job, errstr,
        sizeof(errstr));
    if (!job->call) {
        /* Nothing went out: the reservation and the rate slot are free. */
        spend_settle(w, job, 0);
        guard_release(w, job);
        finish_failed(w, job, KS_ERR_UPSTREAM, errstr, &out);
        job_finish(w, job, &out);
        return;
    }
    job->call_start_ms = ks_mono_ms();
    if (!job->start_ms) {
        job->start_ms = job->call_start_ms;
    }
    ks_log_debug("worker",
                 "%s: call %s (hop %" PRIu32 ") %s[%" PRId32 "] at %" PRId64,
                 job->task->id, prov->model, job->hop, job->ticket.topic,
                 job->ticket.partition, job->call_start_ms);
    curl_multi_add_handle(w->multi, ks_model_call_easy(job->call));
    job->state = JOB_CALLING;
    w->n_calls++;
    guard_call_begin(w, job);
}

/* The in-process classifier answers at once, free: nothing to reserve. */
static void answer_by_classifier(struct worker *w, struct job *job)
{
    struct ks_answer ans;
    struct outcome out;

    if (!job->start_ms) {
        job->start_ms = ks_mono_ms();
    }
    classify_run(w, job, &ans);
    finish_answer(w, job, &ans, 0, 0, &out);
    job_finish(w, job, &out);
    ks_answer_fini(&ans);
}

/* The job's budget is reserved: admission under the rate limit comes
 * last, so a job that waits holds no slot; refused, the reservation is
 * released (no call started) and the job waits. */
static void admit_and_call(struct worker *w, struct job *job)
{
    enum guard_verdict v = job->pre_admit
                               ? (enum guard_verdict)(job->pre_admit - 1)
                               : guard_admit(w, job);

    job->pre_admit = 0;
    switch (v) {
    case GUARD_GO:
        start_call(w, job);
        return;
    case GUARD_ERROR:
        spend_settle(w, job, 0);
        job_redis_error(w, job, "rate limit");
        return;
    default: /* GUARD_WAIT */
        spend_settle(w, job, 0);
        job->state = JOB_BACKOFF;
        return;
    }
}

/* Applies the verdict of the job's reservation (reserve_all's). */
static void apply_spend(struct worker *w, struct job *job, enum spend_verdict v)
{
    struct outcome out;

    switch (v) {
    case SPEND_GO:
        admit_and_call(w, job);
        break;
    case SPEND_HOLD:
        job->state = JOB_BACKOFF;
        break;
    case SPEND_REFUSED:
        finish_budget(w, job, &out);
        job_finish(w, job, &out);
        break;
    case SPEND_WAIT:
        break; /* stays in JOB_WAIT_SLOT */
    case SPEND_ERROR:
        job_redis_error(w, job, "budget");
        break;
    case SPEND_INVALID:
        job_refuse(w, job, "invalid",
                   "budget: the tenant cannot name a budget key");
        break;
    }
}

/* Circuit choice (no Redis), then the reservation reserve_all made for
 * this pass, then admission. Returns false when the job has no
 * reservation verdict yet: the next turn's reserve_all makes it. */
bool job_reserve_and_call(struct worker *w, struct job *job)
{
    struct outcome out;
    enum spend_verdict v;

    if (classify_is(w, job->provider)) {
        answer_by_classifier(w, job);
        return true;
    }
    switch (guard_pick(w, job)) {
    case GUARD_GO:
        break;
    case GUARD_EXHAUSTED:
        finish_failed(w, job, KS_ERR_UPSTREAM,
                      "the circuit of every provider left is open", &out);
        job_finish(w, job, &out);
        return true;
    default: /* GUARD_WAIT */
        job->state = JOB_BACKOFF;
        return true;
    }
    if (!job->pre_spend) {
        return false;
    }
    v = (enum spend_verdict)(job->pre_spend - 1);
    job->pre_spend = 0;
    apply_spend(w, job, v);
    return true;
}

/* Reserves, in one round trip, the budget of every job that may start a
 * call in this pass (due, its key free, its provider's circuit closed, up
 * to the free call slots), then admits the reserved ones under their rate
 * limits in a second; reserve_and_call applies each verdict. */
void job_reserve_all(struct worker *w)
{
    struct job *jobs[BATCH_MAX];
    enum spend_verdict v[BATCH_MAX];
    enum guard_verdict admit[BATCH_MAX];
    int64_t now = ks_mono_ms();
    size_t n = 0, m = 0,
           slots = (size_t)w->tier->max_inflight > w->n_calls
                       ? (size_t)w->tier->max_inflight - w->n_calls
                       : 0;

    order_begin(w);
    for (struct job *job = w->head; job && n < BATCH_MAX && n < slots;
         job = job->next) {
        if (job->state == JOB_PRODUCING || !order_claim(w, job) ||
            job->pre_spend || classify_is(w, job->provider)) {
            continue;
        }
        if ((job->state == JOB_WAIT_SLOT ||
             (job->state == JOB_BACKOFF && job->due_ms <= now)) &&
            guard_pick(w, job) == GUARD_GO) {
            jobs[n++] = job;
        }
    }
    if (n == 0) {
        return;
    }
    spend_reserve_many(w, n, jobs, v);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == SPEND_ERROR) {
            /* Now, while ks_store_last_error is still this one's. */
            apply_spend(w, jobs[i], v[i]);
            continue;
        }
        jobs[i]->pre_spend = (int)v[i] + 1;
        if (v[i] == SPEND_GO) {
            jobs[m++] = jobs[i]; /* the reserved ones, for admission */
        }
    }
    guard_admit_many(w, m, jobs, admit);
    for (size_t i = 0; i < m; i++) {
        if (admit[i] == GUARD_ERROR) {
            jobs[i]->pre_spend = 0;
            spend_settle(w, jobs[i], 0);
            job_redis_error(w, jobs[i], "rate limit");
            continue;
        }
        jobs[i]->pre_admit = (int)admit[i] + 1;
    }
}

/* A failed call: tried again after a backoff, on the next provider, or,
 * with none left, the end of the hop (guard.c decides which). */
static void call_failed(struct worker *w,
                        struct job *job,
                        const struct ks_model_reply *reply)
{
    struct outcome out;

    switch (guard_after_failure(w, job, reply)) {
    case GUARD_RETRY:
        job->state = JOB_BACKOFF;
        return;
    case GUARD_FALLBACK:
        job->state = JOB_WAIT_SLOT;
        return;
    case GUARD_GIVE_UP:
        finish_failed(w, job, reply->err, reply->detail, &out);
        job_finish(w, job, &out);
        return;
    }
}

void job_call_done(struct worker *w, CURL *easy, CURLcode rc)
{
    struct ks_model_call *call = NULL;
    struct ks_model_reply reply;
    struct job *job;
    const char *status;
    struct outcome out;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
    job = ks_model_call_opaque(call);
    ks_model_call_finish(call, rc, &reply);
    guard_call_end(w, job, &reply);
    curl_multi_remove_handle(w->multi, easy);
    job->call = NULL;
    w->n_calls--;
    /* Charged >= billed: usage, 0 when nothing was sent or the provider
     * answered with an error, else the worst case (spend.c). */
    spend_settle(w, job, spend_call_charge(w, job, easy, rc, &reply));
    status = reply.err == KS_OK ? "ok" : ks_err_str(reply.err);
    ks_log_debug("worker", "%s: call ended: %s", job->task->id, status);
    ks_metrics_add(w->m_requests, 1, w->tier->name,
                   w->tier->providers[job->provider].model, status);
    ks_metrics_add(w->m_duration,
                   (double)(ks_mono_ms() - job->call_start_ms) / 1e3,
                   w->tier->name);
    if (reply.err == KS_OK && agree_more(w, job, &reply)) {
        job->state = JOB_WAIT_SLOT; /* agree.c: another sample */
    } else if (reply.err == KS_OK) {
        finish_ok(w, job, &reply, &out);
        job_finish(w, job, &out);
    } else {
        call_failed(w, job, &reply);
    }
    /* The reply's strings belong to the call: free it last. */
    ks_model_call_destroy(call);
}
