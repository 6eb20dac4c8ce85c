/*
 * finish.c - how a job ends: the Result of an answer (or the hand-on to a
 * stronger tier when it is not confident enough), the failed Result and
 * DLQ entry when no provider could answer, the budget_exceeded Result.
 * Each is returned as a struct outcome that job.c applies: final answers
 * are stored in the hop's done record before they are produced, so a
 * redelivery is answered without a second call.
 */
#include "finish.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "base/log.h"
#include "base/util.h"
#include "escalate.h"
#include "verifier.h"

#include "base/banned.h"

/* The encoded Result for whoever waits on the task. Final answers are
 * stored first; a provider failure is not, so that a replay from the DLQ
 * tries the model again. */
static void result_outcome(struct worker *w,
                           const struct job *job,
                           const struct ks_result *res,
                           struct outcome *out)
{
    char *buf = NULL;
    size_t len = 0;

    ks_metrics_add(w->m_results, 1, w->tier->name, ks_status_str(res->status));
    if (ks_result_encode(job->fmt, res, &buf, &len) != KS_OK) {
        ks_log_error("worker", "%s: cannot encode the result", res->id);
        out->abandon = true;
        return;
    }
    out->tag = res->status != KS_STATUS_FAILED ? DONE_RESULT : 0;
    out->topic = job->task->reply_to ? job->task->reply_to : w->results_topic;
    out->value = buf;
    out->len = len;
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

/* A combined confidence's parts (learn/verify.h via verifier.c). */
static void set_parts(struct ks_result *res, const struct ks_answer *ans)
{
    res->confidence_parts =
        ans->n_parts ? ks_xcalloc(ans->n_parts, sizeof(struct ks_conf_part))
                     : NULL;
    for (size_t i = 0; i < ans->n_parts; i++) {
        res->confidence_parts[i].source = ks_xstrdup(ans->parts[i].source);
        res->confidence_parts[i].value = ans->parts[i].value;
    }
    res->n_confidence_parts = ans->n_parts;
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
                            enum ks_status status,
                            struct outcome *out)
{
    struct ks_result *res;

    ks_ctx_add(job->ctx, a);
    res = ks_ctx_result(job->ctx, (int)job->ctx->n_attempts - 1, status, NULL);
    res->latency_ms = a->latency_ms;
    result_outcome(w, job, res, out);
    ks_result_destroy(res);
}

/* The attempt joins the job's context for the hand-on (escalate.c). */
static void hand_on(struct worker *w,
                    struct job *job,
                    const struct ks_ctx_attempt *a,
                    struct outcome *out)
{
    if (escalate_record(w, job, a)) {
        out->hand_on = true;
    } else {
        out->abandon = true;
    }
}

void finish_answer(struct worker *w,
                   struct job *job,
                   const struct ks_answer *ans,
                   int64_t input_tokens,
                   int64_t output_tokens,
                   struct outcome *out)
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

    *out = (struct outcome){0};
    if (escalate) {
        hand_on(w, job, &a, out);
        return;
    }
    if (job->ctx) {
        finish_from_ctx(w, job, &a, status, out);
        return;
    }
    res = result_for(job, status);
    res->output = ks_xstrdup(ans->output);
    res->input_tokens = input_tokens;
    res->output_tokens = output_tokens;
    res->cost_micro = a.cost_micro;
    res->confidence = ans->confidence;
    res->confidence_source = ans->source ? ks_xstrdup(ans->source) : NULL;
    set_parts(res, ans);
    add_attempt(res, a.decision, a.reason);
    result_outcome(w, job, res, out);
    ks_result_destroy(res);
}

void finish_ok(struct worker *w,
               struct job *job,
               const struct ks_model_reply *reply,
               struct outcome *out)
{
    struct ks_answer ans;
    int64_t in = reply->input_tokens, outt = reply->output_tokens;

    /* agree.c: with samples, the majority answer and the summed usage */
    if (!agree_judge(w, job, reply, &ans, &in, &outt)) {
        ks_answer_judge(job->task, reply, w->tier->self_report, &ans);
        (void)verifier_judge(w, job, reply, -1, &ans);
    }
    finish_answer(w, job, &ans, in, outt, out);
    ks_answer_fini(&ans);
}

/* No provider could answer: a failed Result for whoever waits on it, and
 * the original in the DLQ for replay. */
void finish_failed(struct worker *w,
                   struct job *job,
                   enum ks_err err,
                   const char *detail,
                   struct outcome *out)
{
    const char *code = err == KS_ERR_TIMEOUT ? "timeout" : "provider";
    struct ks_result *res;
    char msg[320];

    *out = (struct outcome){0};
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
        hand_on(w, job, &a, out);
        return;
    }
    res = result_for(job, KS_STATUS_FAILED);
    snprintf(msg, sizeof(msg), "%s: %s", code, detail);
    res->error = ks_xstrdup(msg);
    add_attempt(res, "fail", code);
    result_outcome(w, job, res, out);
    ks_result_destroy(res);
    out->dlq_code = code;
    out->dlq_detail = detail;
}

/* The tier's budget is spent and its policy is reject. */
void finish_budget(struct worker *w, const struct job *job, struct outcome *out)
{
    struct ks_result *res = result_for(job, KS_STATUS_BUDGET_EXCEEDED);
    char msg[160];

    *out = (struct outcome){0};
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
    result_outcome(w, job, res, out);
    ks_result_destroy(res);
}
