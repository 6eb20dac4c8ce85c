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
#include "spend.h"

#include "base/banned.h"


/* ---- the job list ------------------------------------------------------- */

static struct job *job_new(struct worker *w, rd_kafka_message_t *rkm)
{
    struct job *job = ks_xcalloc(1, sizeof(*job));

    job->w = w;
    job->rkm = rkm;
    job->prev = w->tail;
    if (w->tail) {
        w->tail->next = job;
    } else {
        w->head = job;
    }
    w->tail = job;
    w->n_jobs++;
    ks_offsets_track(w->offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                     rkm->offset, &job->ticket);
    return job;
}

static void job_free(struct worker *w, struct job *job)
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
    w->n_jobs--;
    if (job->call) {
        curl_multi_remove_handle(w->multi, ks_model_call_easy(job->call));
        ks_model_call_destroy(job->call);
        w->n_calls--;
    }
    ks_ctx_destroy(job->ctx);
    agree_free(job);
    free(job->system);
    free(job->stash);
    free(job->pre_value);
    ks_task_destroy(job->task);
    rd_kafka_message_destroy(job->rkm);
    free(job);
}

/* ---- producing ---------------------------------------------------------- */

/* Produces value keyed by the task id, counted in job->unacked. */
static void job_produce(struct worker *w,
                        struct job *job,
                        const char *topic,
                        const char *value,
                        size_t len)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (job->fmt == KS_FORMAT_PROTOBUF) {
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, KS_HDR_CONTENT_TYPE, -1, KS_CONTENT_PROTOBUF,
                            -1);
    }
    job->unacked++;
    if (ks_kafka_produce(w->rk_prod, topic, job->task->id,
                         strlen(job->task->id), value, len, hdrs,
                         job) != KS_OK) {
        /* Never acknowledged, so never committed: the task comes back. */
        job->unacked--;
        job->abandoned = true;
    }
}

/* Sends the job's original message to the DLQ with code and detail. */
static void job_dead_letter(struct worker *w,
                            struct job *job,
                            const char *code,
                            const char *detail)
{
    ks_log_warn("worker", "%s/%" PRId32 "@%" PRId64 " to DLQ: %s: %s",
                rd_kafka_topic_name(job->rkm->rkt), job->rkm->partition,
                job->rkm->offset, code, detail);
    ks_metrics_add(w->m_dlq, 1, code);
    job->unacked++;
    if (ks_kafka_dlq(w->rk_prod, w->dlq_topic, job->rkm, code, detail, job) !=
        KS_OK) {
        job->unacked--;
        job->abandoned = true;
    }
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
    job_dead_letter(w, job, code, detail);
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
        job_produce(w, job, topic, value, len);
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
        job_dead_letter(w, job, out->dlq_code, out->dlq_detail);
    }
    free(out->value);
    out->value = NULL;
    job_produced(job);
}

/* JOB_ESCALATING: the context is saved and the Escalation goes out, or,
 * Redis down, the job tries again at due_ms. */
static void job_hand_on(struct worker *w, struct job *job)
{
    struct outcome out;

    switch (escalate_hand_on(w, job, &out)) {
    case KS_OK:
        job_apply(w, job, &out);
        return;
    case KS_ERR_RETRY: /* Redis down: the context waits for it */
        job->due_ms = ks_mono_ms() + REDIS_RETRY_MS;
        return;
    case KS_ERR_UPSTREAM:
        job_redis_error(w, job, "escalation context");
        return;
    default: /* the context cannot be encoded: it never will be */
        job_refuse(w, job, "invalid",
                   "the escalation context could not be encoded");
        return;
    }
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
    job_dead_letter(w, job, "invalid", detail);
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
        job_dead_letter(w, job, "too_large", detail);
        job_produced(job);
        return;
    }
    if (ks_codec_detect(
            ks_kafka_header(rkm, KS_HDR_CONTENT_TYPE, ctype, sizeof(ctype)),
            rkm->payload, rkm->len, &job->fmt, &cerr) != KS_OK ||
        ks_task_decode(job->fmt, rkm->payload, rkm->len, &w->cfg->limits,
                       &job->task, &cerr) != KS_OK) {
        job_dead_letter(w, job, cerr.code, cerr.detail);
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
        job_produce(w, job, topic, stored + 1, len - 1);
    } else {
        job_produce(w, job, topic, stored, len);
    }
    job_produced(job);
}

/* Looks up the hop's done record (or takes lookup_all's): with one, the
 * task is answered from it; without, the job waits for a call slot. */
static void check_done(struct worker *w, struct job *job)
{
    char *stored = NULL;
    size_t len = 0;
    bool conflict = false;
    enum ks_err err = KS_OK;

    if (job->pre_done) { /* looked up by lookup_all this pass */
        stored = job->pre_value;
        len = job->pre_len;
        job->pre_value = NULL;
        job->pre_done = false;
    } else {
        err = ks_store_done_get(w->rs, job->task, job->hop, &stored, &len,
                                &conflict);
    }
    if (err == KS_OK && conflict) {
        /* The id was used by a different task within redis.done_ttl_s:
         * its record is not this task's answer, and a second record
         * under the key would answer the first task's redeliveries. */
        job_refuse(w, job, "conflict",
                   "the id was used for a different task within "
                   "redis.done_ttl_s");
        return;
    }
    if (err == KS_ERR_INVALID) {
        job_refuse(w, job, "invalid",
                   "the tenant and id are too long for a key");
        return;
    }
    if (err == KS_ERR_UPSTREAM) {
        job_redis_error(w, job, "done record");
        return;
    }

    if (err != KS_OK && !w->cfg->budget_fail_open) {
        /* Fail closed: no call that could be a second payment. */
        ks_metrics_set_health(w->metrics, false,
                              "redis unreachable: model calls held");
        job->due_ms = ks_mono_ms() + REDIS_RETRY_MS;
        return;
    }
    if (err == KS_OK) {
        ks_metrics_set_health(w->metrics, true, NULL);
    }
    if (!stored) {
        if (escalate_prepare(w, job) != KS_OK) {
            job->due_ms = ks_mono_ms() + REDIS_RETRY_MS;
            return;
        }
        job->state = JOB_WAIT_SLOT;
        return;
    }
    replay_stored(w, job, stored, len);
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
        spend_settle(w, job, 0);
        finish_failed(w, job, KS_ERR_UPSTREAM, errstr, &out);
        job_finish(w, job, &out);
        return;
    }
    job->call_start_ms = ks_mono_ms();
    if (!job->start_ms) {
        job->start_ms = job->call_start_ms;
    }
    ks_log_debug("worker", "%s: call %s (hop %" PRIu32 ")", job->task->id,
                 prov->model, job->hop);
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

static void reserve_and_call(struct worker *w, struct job *job)
{
    struct outcome out;

    if (classify_is(w, job->provider)) {
        answer_by_classifier(w, job);
        return;
    }
    /* Circuits and rate limits first (guard.c): they may move the job to
     * the next provider or hold it, before any budget is reserved. */
    switch (guard_before_call(w, job)) {
    case GUARD_GO:
        break;
    case GUARD_WAIT:
        job->state = JOB_BACKOFF;
        return;
    case GUARD_EXHAUSTED:
        finish_failed(w, job, KS_ERR_UPSTREAM,
                      "the circuit of every provider left is open", &out);
        job_finish(w, job, &out);
        return;
    case GUARD_ERROR:
        job_redis_error(w, job, "rate limit");
        return;
    }
    switch (spend_reserve(w, job)) {
    case SPEND_GO:
        start_call(w, job);
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
    spend_settle(w, job,
                 reply.err == KS_OK
                     ? ks_price_cost_micro(&w->tier->providers[job->provider],
                                           reply.input_tokens,
                                           reply.output_tokens)
                     : 0);
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
    job_produce(w, job, job->stash_topic, job->stash + 1, job->stash_len - 1);
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

/* Looks up the done records of every due JOB_CHECK_DONE job in one round
 * trip; check_done then uses job->pre_*. */
static void lookup_all(struct worker *w)
{
    struct job *jobs[BATCH_MAX];
    char *values[BATCH_MAX];
    bool conflicts[BATCH_MAX];
    size_t lens[BATCH_MAX], n = batch_collect_due(w, JOB_CHECK_DONE, jobs);

    if (n < 2) {
        return; /* one job: check_done's own look-up is as cheap */
    }
    if (batch_lookup(w, n, jobs, values, lens, conflicts) != KS_OK) {
        return; /* check_done looks up each (Redis down: holds them) */
    }
    for (size_t i = 0; i < n; i++) {
        if (conflicts[i]) {
            continue; /* check_done's own look-up finds it again */
        }
        jobs[i]->pre_done = true;
        jobs[i]->pre_value = values[i];
        jobs[i]->pre_len = lens[i];
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
    order_begin(w);
    for (; job; job = next) {
        next = job->next;
        if (job->state == JOB_PRODUCING && job->unacked == 0) {
            job_free(w, job); /* produced nothing (job_produced) */
            continue;
        }
        if (job->state != JOB_PRODUCING && !order_claim(w, job)) {
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
            continue; /* store_all, at the top of the next pass */
        }
        if (job->state == JOB_BACKOFF) {
            job->state = JOB_WAIT_SLOT;
        }
        if (job->state == JOB_WAIT_SLOT &&
            w->n_calls < (size_t)w->tier->max_inflight) {
            reserve_and_call(w, job);
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
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    rd_kafka_headers_t *hdrs = NULL;
    char detail[320];

    if ((rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
         rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) &&
        strcmp(topic, w->dlq_topic) != 0) {
        /* A reply_to naming no topic is the producer's mistake. */
        snprintf(detail, sizeof(detail),
                 "field 'reply_to': topic '%s' does "
                 "not exist",
                 topic);
        job_dead_letter(w, job, "invalid", detail);
        job_delivered(w, job, true);
        return;
    }
    /* Transient (librdkafka gave up after its retries): produce again, so
     * the offset is neither lost nor committed past. */
    ks_log_warn("worker", "delivery to %s failed (%s): producing again", topic,
                rd_kafka_err2str(rkm->err));
    if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
        hdrs = rd_kafka_headers_copy(hdrs);
    }
    if (ks_kafka_produce(w->rk_prod, topic, rkm->key, rkm->key_len,
                         rkm->payload, rkm->len, hdrs, job) != KS_OK) {
        job_delivered(w, job, false);
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

void job_abandon(struct worker *w, struct job *job)
{
    if (job->unacked > 0) {
        /* Delivery reports still point at it: free on the last one. */
        job->abandoned = true;
        return;
    }
    job_free(w, job);
}
