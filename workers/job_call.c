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
#include "fanout.h"
#include "finish.h"
#include "guard.h"
#include "job.h"
#include "job_life.h"
#include "order.h"
#include "spend.h"

#include "base/banned.h"

/* Starts the job's turn: its planned calls, in flight together. */
static void start_call(struct worker *w, struct job *job)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];
    char errstr[256];
    struct outcome out;

    if (!fanout_start(w, job, errstr, sizeof(errstr))) {
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
                 "%s: call %s (hop %" PRIu32 ") %s[%" PRId32 "] at %" PRId64
                 ", %u call(s)",
                 job->task->id, prov->model, job->hop, job->ticket.topic,
                 job->ticket.partition, job->call_start_ms, job->fan.n_calls);
    job->state = JOB_CALLING;
    guard_call_begin(w, job); /* one admission and circuit epoch a turn */
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

/* Gives back what reserve_all took for the job (its reservation, its
 * rate-limit admission): the job does not call the provider they were
 * taken for now. */
static void drop_pre(struct worker *w, struct job *job)
{
    if (job->pre_spend == (int)SPEND_GO + 1) {
        spend_settle(w, job, 0);
        guard_release(w, job);
    }
    job->pre_spend = 0;
    job->pre_admit = 0;
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
        drop_pre(w, job);
        finish_failed(w, job, KS_ERR_UPSTREAM,
                      "the circuit of every provider left is open", &out);
        job_finish(w, job, &out);
        return true;
    default: /* GUARD_WAIT: nothing is held while it waits */
        drop_pre(w, job);
        job->state = JOB_BACKOFF;
        return true;
    }
    if (!job->pre_spend) {
        return false;
    }
    if (job->provider != job->pre_provider) {
        /* Another job took the half-open circuit's one probe since the
         * reservation: this one goes on to the next provider, whose
         * prices and rate window are not those reserved and admitted. */
        ks_log_info("worker",
                    "%s: reserved for %s, going to %s: reserving again",
                    job->task->id, w->tier->providers[job->pre_provider].model,
                    w->tier->providers[job->provider].model);
        drop_pre(w, job);
        return false;
    }
    v = (enum spend_verdict)(job->pre_spend - 1);
    job->pre_spend = 0;
    apply_spend(w, job, v);
    return true;
}

/* Reserves, in one round trip, the budget of every job that may start a
 * call in this pass (due, its key free, its provider's circuit closed, up
 * to the free call slots, a turn of several calls taking as many), then admits
 * the reserved ones under their rate limits in a second; reserve_and_call
 * applies each verdict. */
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
    for (struct job *job = w->head; job && n < BATCH_MAX && slots > 0;
         job = job->next) {
        if (job->state == JOB_PRODUCING || !order_claim(w, job) ||
            job->pre_spend || classify_is(w, job->provider)) {
            continue;
        }
        if ((job->state == JOB_WAIT_SLOT ||
             (job->state == JOB_BACKOFF && job->due_ms <= now)) &&
            guard_pick(w, job) == GUARD_GO) {
            /* the turn's calls count against max_inflight: it is
             * planned (and reserved, admitted) for the slots left */
            agree_plan(w, job, slots, &job->fan.n_calls, &job->fan.n_ask);
            slots -= job->fan.n_calls;
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
        jobs[i]->pre_provider = jobs[i]->provider;
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

/* Every call of the job's turn has ended: one settle with their summed
 * charge, then the job's next step: a failure among them decides it as a
 * lone call's would (retry, fallback, give up; what comes next asks only
 * for the answers missing), else a turn for the samples still missing,
 * else the answer, judged with last, the reply of the call that ended
 * last. */
static void turn_over(struct worker *w,
                      struct job *job,
                      const struct ks_model_reply *last)
{
    struct ks_model_reply freply;
    struct ks_model_call *failed;
    struct outcome out;

    spend_settle(w, job, fanout_take_charge(job));
    failed = fanout_take_failure(job, &freply);
    if (failed) {
        call_failed(w, job, &freply);
        /* The reply's strings belong to the call: free it last. */
        ks_model_call_destroy(failed);
    } else if (agree_wanting(w, job)) {
        job->state = JOB_WAIT_SLOT; /* agree.c: more samples */
    } else {
        finish_ok(w, job, last, &out);
        job_finish(w, job, &out);
    }
}

/* Per call: its log line and metrics. */
static void count_call(struct worker *w,
                       const struct job *job,
                       const struct ks_model_reply *reply)
{
    const char *status = reply->err == KS_OK ? "ok" : ks_err_str(reply->err);

    ks_log_debug("worker", "%s: call ended: %s", job->task->id, status);
    ks_metrics_add(w->m_requests, 1, w->tier->name,
                   w->tier->providers[job->provider].model, status);
    ks_metrics_add(w->m_duration,
                   (double)(ks_mono_ms() - job->call_start_ms) / 1e3,
                   w->tier->name);
}

void job_call_done(struct worker *w, CURL *easy, CURLcode rc)
{
    struct ks_model_call *call = NULL;
    struct ks_model_reply reply;
    struct job *job;
    int64_t charge;
    bool kept;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
    job = ks_model_call_opaque(call);
    ks_model_call_finish(call, rc, &reply);
    guard_call_end(w, job, &reply);
    /* Charged >= billed: usage, 0 when nothing was sent or the provider
     * answered with an error, else the call's worst case (spend.c). */
    charge = spend_call_charge(w, job, easy, rc, &reply);
    kept = fanout_end(w, job, call, &reply, charge);
    count_call(w, job, &reply);
    if (reply.err == KS_OK) {
        agree_more(w, job, &reply);
    }
    if (job->fan.n_fly == 0) {
        turn_over(w, job, &reply);
    }
    /* The reply's strings belong to the call: free it last. */
    if (!kept) {
        ks_model_call_destroy(call);
    }
}
