/*
 * finish.c - how a job ends: the Result of an answer (or the hand-on to a
 * stronger tier when it is not confident enough), the failed Result and
 * DLQ entry when no provider could answer, the budget_exceeded Result.
 * Final answers are stored in the hop's done record before they are
 * produced, so a redelivery is answered without a second call.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "worker_internal.h"

#include "base/banned.h"


static void publish_result(struct worker *w,
                           struct job *job,
                           const struct ks_result *res)
{
    const char *topic =
        job->task->reply_to ? job->task->reply_to : w->results_topic;
    char *buf = NULL;
    size_t len = 0;

    ks_metrics_add(w->m_results, 1, w->tier->name, ks_status_str(res->status));
    if (ks_result_encode(job->fmt, res, &buf, &len) != KS_OK) {
        ks_log_error("worker", "%s: cannot encode the result", res->id);
        job->abandoned = true;
        return;
    }
    /* Final answers are stored; a provider failure is not, so that a
     * replay from the DLQ tries the model again. */
    job_store_and_produce(w, job,
                          res->status != KS_STATUS_FAILED ? DONE_RESULT : 0,
                          topic, buf, len);
    free(buf);
}

/* An outcome is produced only once its done record is stored: a record
 * out without one would be answered by a second (paid) call when a
 * rebalance or a crash redelivers the task. The record waits in the job
 * (JOB_STORING) for the next turn of the loop, which writes every waiting
 * record in one round trip (batch.c), and again each second while Redis
 * cannot take it; a drain waits for it like for a call. */
void job_store_and_produce(struct worker *w,
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

static struct ks_result *result_for(const struct job *job,
                                    enum ks_status status)
{
    struct ks_result *res = ks_result_new();
    const struct ks_task *task = job->task;

    res->id = ks_xstrdup(task->id);
    res->type = ks_xstrdup(task->type);
    res->tenant = task->tenant ? ks_xstrdup(task->tenant) : NULL;
    res->status = status;
    res->tier = ks_xstrdup(job->w->tier->name);
    res->model = ks_xstrdup(job->w->tier->providers[job->provider].model);
    if (task->n_metadata > 0) {
        res->metadata = ks_xcalloc(task->n_metadata, sizeof(*res->metadata));
        for (size_t i = 0; i < task->n_metadata; i++) {
            res->metadata[i].key = ks_xstrdup(task->metadata[i].key);
            res->metadata[i].value = ks_xstrdup(task->metadata[i].value);
        }
        res->n_metadata = task->n_metadata;
    }
    res->latency_ms = job->start_ms ? ks_mono_ms() - job->start_ms : 0;
    return res;
}

static void add_attempt(struct ks_result *res,
                        const char *decision,
                        const char *reason)
{
    struct ks_attempt *a;

    res->path = ks_xcalloc(1, sizeof(*res->path));
    res->n_path = 1;
    a = &res->path[0];
    a->tier = ks_xstrdup(res->tier);
    a->model = ks_xstrdup(res->model);
    a->confidence = res->confidence;
    a->decision = ks_xstrdup(decision);
    a->reason = ks_xstrdup(reason);
    a->cost_micro = res->cost_micro;
    a->latency_ms = res->latency_ms;
}

static bool is_top_tier(const struct worker *w)
{
    return w->tier == &w->cfg->tiers[w->cfg->n_tiers - 1];
}

/* The final answer of a task that came up from cheaper tiers: its Result
 * carries every attempt and the total cost. */
static void finish_from_ctx(struct worker *w,
                            struct job *job,
                            const struct ks_ctx_attempt *a,
                            enum ks_status status)
{
    struct ks_result *res;

    ks_ctx_add(job->ctx, a);
    res = ks_ctx_result(job->ctx, (int)job->ctx->n_attempts - 1, status, NULL);
    res->latency_ms = a->latency_ms;
    publish_result(w, job, res);
    ks_result_destroy(res);
    job_produced(w, job);
}

void finish_answer(struct worker *w,
                   struct job *job,
                   const struct ks_answer *ans,
                   int64_t input_tokens,
                   int64_t output_tokens)
{
    const struct ks_provider_cfg *prov = &w->tier->providers[job->provider];
    double below = ks_config_escalate_below(w->tier, job->task->type);
    bool low = ans->confidence >= 0 && ans->confidence < below;
    bool escalate = low && !is_top_tier(w);
    enum ks_status status = low ? KS_STATUS_LOW_CONFIDENCE : KS_STATUS_OK;
    struct ks_ctx_attempt a = {
        .tier = w->tier->name,
        .model = prov->model,
        .hop = job->hop,
        .output = ans->output,
        .confidence = ans->confidence,
        .confidence_source = (char *)ans->source,
        .decision = escalate ? "escalate" : "answer",
        .reason = (char *)(!low                        ? "ok"
                           : strcmp(ans->reason, "ok") ? ans->reason
                                                       : "low_confidence"),
        .cost_micro = ks_price_cost_micro(prov, input_tokens, output_tokens),
        .latency_ms = ks_mono_ms() - job->start_ms,
        .input_tokens = input_tokens,
        .output_tokens = output_tokens};
    struct ks_result *res;

    if (escalate) {
        escalate_start(w, job, &a);
        return;
    }
    if (job->ctx) {
        finish_from_ctx(w, job, &a, status);
        return;
    }
    res = result_for(job, status);
    res->output = ks_xstrdup(ans->output);
    res->input_tokens = input_tokens;
    res->output_tokens = output_tokens;
    res->cost_micro = a.cost_micro;
    res->confidence = ans->confidence;
    res->confidence_source = ans->source ? ks_xstrdup(ans->source) : NULL;
    add_attempt(res, a.decision, a.reason);
    publish_result(w, job, res);
    ks_result_destroy(res);
    job_produced(w, job);
}

void finish_ok(struct worker *w,
               struct job *job,
               const struct ks_model_reply *reply)
{
    struct ks_answer ans;

    ks_answer_judge(job->task, reply, &ans);
    finish_answer(w, job, &ans, reply->input_tokens, reply->output_tokens);
    ks_answer_fini(&ans);
}

/* No provider could answer: a failed Result for whoever waits on it, and
 * the original in the DLQ for replay. */
void finish_failed(struct worker *w,
                   struct job *job,
                   enum ks_err err,
                   const char *detail)
{
    const char *code = err == KS_ERR_TIMEOUT ? "timeout" : "provider";
    struct ks_result *res;
    char msg[320];

    if (!is_top_tier(w)) {
        /* Repeated failure is a reason to try a stronger tier. */
        struct ks_ctx_attempt a = {
            .tier = w->tier->name,
            .model = w->tier->providers[job->provider].model,
            .hop = job->hop,
            .confidence = -1,
            .decision = "escalate",
            .reason = "provider_failure",
            .latency_ms = job->start_ms ? ks_mono_ms() - job->start_ms : 0};

        ks_log_warn("worker", "%s: every provider of tier %s failed (%s)",
                    job->task->id, w->tier->name, detail);
        escalate_start(w, job, &a);
        return;
    }
    res = result_for(job, KS_STATUS_FAILED);
    snprintf(msg, sizeof(msg), "%s: %s", code, detail);
    res->error = ks_xstrdup(msg);
    add_attempt(res, "fail", code);
    publish_result(w, job, res);
    ks_result_destroy(res);
    job_dead_letter(w, job, code, detail);
    job_produced(w, job);
}

/* The tier's budget is spent and its policy is reject. */
void finish_budget(struct worker *w, struct job *job)
{
    struct ks_result *res = result_for(job, KS_STATUS_BUDGET_EXCEEDED);
    char msg[160];

    if (job->refused_by && strcmp(job->refused_by, "max_cost_usd") == 0) {
        snprintf(msg, sizeof(msg),
                 "budget: the call's worst case is over "
                 "the task's max_cost_usd");
    } else if (job->refused_by && strcmp(job->refused_by, "tenant") == 0) {
        snprintf(msg, sizeof(msg),
                 "budget: today's budget of tenant '%s' is "
                 "spent",
                 job->task->tenant);
    } else {
        snprintf(msg, sizeof(msg),
                 "budget: today's budget of tier '%s' is "
                 "spent",
                 w->tier->name);
    }
    res->error = ks_xstrdup(msg);
    add_attempt(res, "reject", "budget");
    publish_result(w, job, res);
    ks_result_destroy(res);
    job_produced(w, job);
}
