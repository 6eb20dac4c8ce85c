/*
 * job.c - one task's way through the worker: decode, answer from the done
 * record or call the model (with retries and provider fallback), publish,
 * and release the offset once everything it produced is acknowledged.
 *
 * Retry policy (LESSONS.md): only timeouts, connection failures, 429 and
 * 5xx are retried, with exponential backoff and full jitter from 200 ms,
 * at least the provider's Retry-After, up to the provider's max_retries;
 * then the next provider; when none is left the task gets a `failed`
 * Result and a DLQ entry with error `provider` (or `timeout`).
 * A successful outcome is stored in kascade:done:<tenant>:<id>:<hop> with
 * the task's digest before it is published, so a redelivery never pays
 * for the same call twice; a different task under the same tenant and id
 * within the TTL is dead-lettered (`conflict`), never answered from the
 * other task's record.
 */
#include "job.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "base/log.h"
#include "base/util.h"
#include "batch.h"
#include "classify.h"
#include "escalate.h"
#include "finish.h"
#include "guard.h"
#include "order.h"
#include "process/daemon.h"
#include "send.h"
#include "spend.h"

#include "base/banned.h"


/* ---- the job list ------------------------------------------------------- */

/* Appends job to the worker's list (the backlog). */
static void job_link(struct worker *w, struct job *job)
{
    job->prev = w->tail;
    job->next = NULL;
    if (w->tail) {
        w->tail->next = job;
    } else {
        w->head = job;
    }
    w->tail = job;
    w->n_jobs++;
}

static void job_unlink(struct worker *w, struct job *job)
{
    if (job->prev) {
        job->prev->next = job->next;
    } else {
        w->head = job->next;
    }
    if (job->next) {
        job->next->prev = job->prev;
    } else {
        w->tail = job->prev;
    }
    job->prev = job->next = NULL;
    w->n_jobs--;
}

static struct job *job_new(struct worker *w, rd_kafka_message_t *rkm)
{
    struct job *job = ks_xcalloc(1, sizeof(*job));

    job->w = w;
    job->rkm = rkm;
    job_link(w, job);
    ks_offsets_track(w->offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                     rkm->offset, &job->ticket);
    return job;
}

/* Frees a job that is in no list. */
static void job_destroy(struct worker *w, struct job *job)
{
    if (job->call) {
        curl_multi_remove_handle(w->multi, ks_model_call_easy(job->call));
        ks_model_call_destroy(job->call);
        w->n_calls--;
    }
    send_redo_drop(job);
    ks_ctx_destroy(job->ctx);
    agree_free(job);
    free(job->system);
    free(job->stash);
    free(job->pre_value);
    ks_task_destroy(job->task);
    rd_kafka_message_destroy(job->rkm);
    free(job);
}

/* ordering "key": the job leaves its key to the next job waiting for it,
 * which joins the list; behind a revoked job they are dropped instead
 * (not started, uncommitted: the next owner is given them again). */
static void job_pass_key(struct worker *w, struct job *job)
{
    struct job *next = job->key_held ? order_leave(w, job) : NULL;

    while (next && job->revoked) {
        struct job *after = order_leave(w, next);

        job_destroy(w, next);
        next = after;
    }
    if (next) {
        next->key_held = true;
        job_link(w, next);
    }
}

static void job_free(struct worker *w, struct job *job)
{
    job_unlink(w, job);
    job_pass_key(w, job);
    job_destroy(w, job);
}

/* Called once a job has produced everything it will produce. */
static void job_produced(struct job *job)
{
    if (job->state == JOB_STORING) {
        return; /* produced later, once its done record is stored */
    }
    job->state = JOB_PRODUCING;
    if (job->unacked == 0) {
        /* Nothing went out (produce refused): dropped without commit.
         * Freed by the next job_advance_all, not here: callers up the
         * stack (that loop among them) still read the job. */
        job->abandoned = true;
    }
}

/* Ends the job with a DLQ entry only: no call, no Result. */
static void job_refuse(struct worker *w,
                       struct job *job,
                       const char *code,
                       const char *detail)
{
    send_dead_letter(w, job, code, detail);
    job_produced(job);
}

/* Redis answered one of the task's commands with an error (WRONGTYPE, a
 * script error): it would answer the same again, so this is not "Redis
 * down" and never a reason to fail open; the task goes to the DLQ with
 * code `redis` and the error (docs/design.md section 7). what names the
 * step. */
static void job_redis_error(struct worker *w, struct job *job, const char *what)
{
    char detail[384];

    snprintf(detail, sizeof(detail), "%s: redis answered with an error: %s",
             what, ks_store_last_error(w->rs));
    job_refuse(w, job, "redis", detail);
}

/* An outcome is produced only once its done record is stored: a record
 * out without one would be answered by a second (paid) call when a
 * rebalance or a crash redelivers the task. The record waits in the job
 * (JOB_STORING) for the next turn of the loop, which writes every waiting
 * record in one round trip (store_all), and again each second while Redis
 * cannot take it; a drain waits for it like for a call. Tag 0: produced
 * at once, not stored. topic is borrowed: it outlives the job. */
static void job_store_and_produce(struct worker *w,
                                  struct job *job,
                                  char tag,
                                  const char *topic,
                                  const char *value,
                                  size_t len)
{
    if (!tag) {
        send_produce(w, job, topic, value, len);
        return;
    }
    free(job->stash);
    job->stash = ks_xmalloc(len + 2);
    job->stash[0] = tag;
    memcpy(job->stash + 1, value, len);
    job->stash[len + 1] = '\0';
    job->stash_len = len + 1;
    job->stash_topic = topic;
    job->state = JOB_STORING;
    job->due_ms = 0;
}

/* Stores and produces the outcome (finish.c, escalate.c), then its DLQ
 * entry. Frees out->value. */
static void job_apply(struct worker *w, struct job *job, struct outcome *out)
{
    if (out->abandon) {
        job->abandoned = true; /* nothing to commit: redelivered */
    }
    if (out->value) {
        job_store_and_produce(w, job, out->tag, out->topic, out->value,
                              out->len);
    }
    if (out->dlq_code) {
        send_dead_letter(w, job, out->dlq_code, out->dlq_detail);
    }
    free(out->value);
    out->value = NULL;
    job_produced(job);
}

/* JOB_ESCALATING: the context is saved by the next turn's round trip
 * (lookup_all, with every other job's), then the Escalation goes out
 * (hand_on_saved); Redis down, the save is tried again at due_ms. */
static void job_hand_on(struct worker *w, struct job *job)
{
    (void)w;
    job->due_ms = 0; /* due now (the loop calls it only once due) */
}

/* Applies how the job ends (finish.c): a hand-on, or an outcome. */
static void job_finish(struct worker *w, struct job *job, struct outcome *out)
{
    if (out->hand_on) {
        job->state = JOB_ESCALATING;
        job_hand_on(w, job);
        return;
    }
    job_apply(w, job, out);
}

/* ---- accepting ---------------------------------------------------------- */

static uint32_t hop_of(const rd_kafka_message_t *rkm)
{
    char buf[16];
    int64_t hop;

    if (ks_kafka_header(rkm, KS_HDR_HOP, buf, sizeof(buf)) &&
        ks_parse_int64(buf, 0, 1000, &hop) == 0) {
        return (uint32_t)hop;
    }
    return 0;
}

/* topics.reply_to_allow again (the router checked it at decode; a record
 * written straight to a tier or escalation topic did not pass there):
 * a refused reply_to is dead-lettered before any call or produce. */
static bool reply_to_refused(struct worker *w, struct job *job)
{
    const char *topic = job->task->reply_to;
    const char *why = ks_config_reply_to_refusal(w->cfg, topic);
    char detail[400];

    if (!why) {
        return false;
    }
    if (ks_topic_name_valid(topic, strlen(topic))) {
        snprintf(detail, sizeof(detail), "field 'reply_to': topic '%s': %s",
                 topic, why);
    } else {
        snprintf(detail, sizeof(detail), "field 'reply_to': %s", why);
    }
    send_dead_letter(w, job, "invalid", detail);
    job_produced(job);
    return true;
}

void job_accept(struct worker *w, rd_kafka_message_t *rkm)
{
    struct job *job = job_new(w, rkm);
    struct ks_codec_error cerr = {0};
    char ctype[64], detail[128];

    job->hop = hop_of(rkm);
    job->due_ms = 0;
    if (rkm->len > w->cfg->limits.max_message_bytes) {
        snprintf(detail, sizeof(detail),
                 "message of %zu bytes is over "
                 "limits.max_message_bytes (%zu)",
                 rkm->len, w->cfg->limits.max_message_bytes);
        send_dead_letter(w, job, "too_large", detail);
        job_produced(job);
        return;
    }
    if (ks_codec_detect(
            ks_kafka_header(rkm, KS_HDR_CONTENT_TYPE, ctype, sizeof(ctype)),
            rkm->payload, rkm->len, &job->fmt, &cerr) != KS_OK ||
        ks_task_decode(job->fmt, rkm->payload, rkm->len, &w->cfg->limits,
                       &job->task, &cerr) != KS_OK) {
        send_dead_letter(w, job, cerr.code, cerr.detail);
        job_produced(job);
        return;
    }
    if (reply_to_refused(w, job)) {
        return;
    }
    ks_log_debug("worker", "%s: accepted from %s [%" PRId32 "] at %" PRId64,
                 job->task->id, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                 rkm->offset);
    job->state = JOB_CHECK_DONE;
    /* ordering "key": behind an older job of its key the job waits in
     * the key's queue, outside the backlog (order.h). */
    switch (order_enter(w, job)) {
    case ORDER_HOLD:
        job->key_held = true;
        break;
    case ORDER_WAIT:
        job_unlink(w, job);
        order_park(w, job);
        break;
    case ORDER_FREE:
        break;
    }
}

/* A redelivered task that was already answered: the stored outcome (tag
 * byte first; an untagged record is produced whole) goes out again,
 * without calling or paying. */
static void replay_stored(struct worker *w,
                          struct job *job,
                          const char *stored,
                          size_t len)
{
    const char *topic;

    ks_log_info("worker", "%s hop %" PRIu32 ": answered from the done record",
                job->task->id, job->hop);
    topic = job->task->reply_to ? job->task->reply_to : w->results_topic;
    if (len > 0 && stored[0] == DONE_ESCALATION) {
        topic = w->esc_topic;
    }
    ks_metrics_add(w->m_results, 1, w->tier->name, "stored");
    if (len > 0 && (stored[0] == DONE_RESULT || stored[0] == DONE_ESCALATION)) {
        send_produce(w, job, topic, stored + 1, len - 1);
    } else {
        send_produce(w, job, topic, stored, len);
    }
    job_produced(job);
}

/* Takes the done record lookup_all found: with one, the task is answered
 * from it; without, the job waits for a call slot. A job lookup_all has
 * not looked up yet waits for the next turn's round trip (there is no
 * look-up of one job alone). */
static void check_done(struct worker *w, struct job *job)
{
    char *stored = job->pre_value;

    if (!job->pre_done) {
        return;
    }
    job->pre_value = NULL;
    job->pre_done = false;
    if (!stored) {
        escalate_prepare(w, job);
        job->state = JOB_WAIT_SLOT;
        return;
    }
    replay_stored(w, job, stored, job->pre_len);
    free(stored);
}

/* ---- calling ------------------------------------------------------------ */

static void start_call(struct worker *w, struct job *job)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];
    struct ks_task task = *job->task; /* borrows; system prompt swapped */
    char errstr[256];
    struct outcome out;

    task.instructions = job->system;
    job->call = ks_model_call_new(
        prov, &task, NULL, (uint32_t)ks_price_max_output(w->tier, job->task),
        w->cfg->limits.max_text_bytes * 2, job, errstr, sizeof(errstr));
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
static bool reserve_and_call(struct worker *w, struct job *job)
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
static void reserve_all(struct worker *w)
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

/* ---- done records, many at once (batch.c) ------------------------------- */

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
static void store_all(struct worker *w)
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

/* One pipelined round trip for the turn (batch.c): the contexts of every
 * due hand-on are saved and the done records (and contexts, hop > 0) of
 * every due JOB_CHECK_DONE job looked up, one job as many. Escalations
 * whose context was saved are stored and produced in this turn (one more
 * round trip, store_all, only when there are some). */
static void lookup_all(struct worker *w)
{
    struct batch_turn bt;
    bool storing = false;

    batch_turn_run(w, &bt);
    for (size_t i = 0; i < bt.n_save; i++) {
        storing |= hand_on_saved(w, bt.save[i], bt.save_errs[i]);
    }
    for (size_t i = 0; i < bt.n_check; i++) {
        looked_up(w, bt.check[i], &bt.found[i]);
    }
    batch_turn_fini(&bt);
    if (storing) {
        store_all(w);
    }
}

/* ---- the loop's side ---------------------------------------------------- */

int64_t job_advance_all(struct worker *w)
{
    int64_t now = ks_mono_ms(), wait = 100;
    struct job *job = w->head, *next;

    spend_flush(w);
    store_all(w);
    lookup_all(w);
    reserve_all(w);
    order_begin(w);
    for (; job; job = next) {
        next = job->next;
        if (job->state == JOB_PRODUCING && job->unacked == 0) {
            job_free(w, job); /* produced nothing (job_produced) */
            continue;
        }
        if (job->state == JOB_PRODUCING) {
            send_redo_due(w, job, now, &wait); /* failed records again */
            continue;
        }
        if (!order_claim(w, job)) {
            continue; /* an older task of its key is not finished */
        }
        if ((job->state == JOB_CHECK_DONE || job->state == JOB_BACKOFF ||
             job->state == JOB_ESCALATING || job->state == JOB_STORING) &&
            job->due_ms > now) {
            if (job->due_ms - now < wait) {
                wait = job->due_ms - now;
            }
            continue;
        }
        if (job->state == JOB_CHECK_DONE) {
            check_done(w, job);
        }
        if (job->state == JOB_ESCALATING) {
            job_hand_on(w, job);
            continue;
        }
        if (job->state == JOB_STORING) {
            wait = 0; /* store_all, at the top of the next pass: now */
            continue;
        }
        if (job->state == JOB_BACKOFF) {
            job->state = JOB_WAIT_SLOT;
        }
        if (job->state == JOB_WAIT_SLOT &&
            w->n_calls < (size_t)w->tier->max_inflight &&
            !reserve_and_call(w, job) && spend_gate_ms(w) == 0) {
            wait = 0; /* reserved by the next turn's reserve_all */
        }
        if (job->state == JOB_WAIT_SLOT && spend_gate_ms(w) > 0 &&
            spend_gate_ms(w) < wait) {
            wait = spend_gate_ms(w);
        }
    }
    return wait;
}

void job_delivery_failed(struct worker *w,
                         struct job *job,
                         const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        hdrs = rd_kafka_headers_copy(hdrs);
    } else {
        hdrs = NULL;
    }
    if (send_failed(w, job, rd_kafka_topic_name(rkm->rkt), rkm->key,
                    rkm->key_len, rkm->payload, rkm->len, hdrs, rkm->err)) {
        job_delivered(w, job, true); /* replaced: its own ack counts */
    }
}

void job_delivered(struct worker *w, struct job *job, bool ok)
{
    int64_t pos;

    if (!ok) {
        /* Could not even be produced again: keep the offset uncommitted
         * so the task is redelivered after a restart or rebalance. */
        job->abandoned = true;
    }
    if (--job->unacked > 0 || job->state != JOB_PRODUCING) {
        return;
    }
    if (!job->abandoned) {
        pos = ks_offsets_done(w->offsets, &job->ticket);
        if (pos >= 0) {
            ks_kafka_store_offset(w->rk_cons, job->ticket.topic,
                                  job->ticket.partition, pos);
        }
    }
    job_free(w, job);
}

static bool job_of(const struct job *job,
                   const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == job->ticket.partition &&
            strcmp(parts->elems[i].topic, job->ticket.topic) == 0) {
            return true;
        }
    }
    return false;
}

size_t job_drop_revoked(struct worker *w,
                        const rd_kafka_topic_partition_list_t *parts)
{
    size_t dropped = 0;

    for (struct job *job = w->head, *next; job; job = next) {
        next = job->next;
        if (parts && job_of(job, parts)) {
            job->revoked = true;
        }
        if (!job->revoked || job->abandoned ||
            (job->state != JOB_CHECK_DONE && job->state != JOB_WAIT_SLOT &&
             job->state != JOB_BACKOFF)) {
            continue;
        }
        /* Not started (or between two calls): nothing is paid for it and
         * nothing committed; the next owner calls, or answers from the
         * done record of an earlier hop. */
        dropped++;
        job_abandon(w, job);
    }
    return dropped;
}

void job_abandon(struct worker *w, struct job *job)
{
    /* A call in flight may have reached the provider: charged at its
     * worst case; a reservation with no call yet is released. */
    if (job->call || job->has_res || job->unreserved) {
        spend_settle(w, job, job->call ? spend_worst_case(w, job) : 0);
    }
    guard_release(w, job);
    send_redo_drop(job); /* not produced again: the task is redelivered */
    if (job->unacked > 0) {
        /* Delivery reports still point at it: free on the last one. */
        job->abandoned = true;
        return;
    }
    job_free(w, job);
}
