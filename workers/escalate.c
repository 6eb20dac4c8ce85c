/*
 * escalate.c - the worker's side of the escalation loop (docs/design.md
 * sections 5 and 6): the prompts a call is made with, the context of an
 * escalated task, and handing a task on to a stronger tier.
 *
 * The system prompt is the tier's executor prompt (its lane, and when to
 * answer {"escalate": true}), then the task's own instructions, then the
 * output_schema when there is one; an escalated call (hop > 0) also
 * reads, from the context kascade:ctx:<tenant>:<id> (redis/ctx.h: the key
 * is derived from the task, on this side and the router's), what the
 * tier's escalate_context says: "final" (default) a short note with the
 * final answer the last answer states (the type's answer_pattern, the
 * output_schema's field or an answer marker: learn/verify.h), or, when it
 * states none, what "answer" reads; "answer" a short note and the last
 * 256 bytes of the last answer; "full" the escalation prompt and every
 * earlier attempt (4 KiB each); "none" nothing. The stronger tier pays for
 * what it reads at its input price: on GSM8K an escalated GPT-4 call cost
 * about 1.34 times a direct one with "full", 1.2 times with "answer" and
 * about 1.03 times with "final" (bench/README.md, cascade).
 *
 * Handing on: the attempt joins the context, the context is saved (by the
 * turn's pipelined round trip, batch.c, like the context's load), and the
 * Escalation is returned for job.c to store as the hop's done record (tag
 * 'E') and produce to kascade.escalations. The context is saved before anything
 * is produced, so the router never reads an escalation whose context is
 * missing; a redelivery after a crash republishes the stored Escalation and a
 * redone call replaces its own attempt instead of adding one.
 */
#include "escalate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "learn/verify.h"
#include "redis/ctx.h"

#include "base/banned.h"

#define ATTEMPT_TEXT_MAX 4096 /* of each earlier answer, in the prompt */
/* escalate_context "answer": the last bytes of the last answer (where a
 * final answer usually is), about 64 tokens. */
#define ANSWER_EXCERPT_MAX 256

static const char default_lane[] =
    "You are the %s tier of a model cascade: cheaper models answer first "
    "and hard tasks move up to stronger ones. Answer the task directly and "
    "concisely. If you cannot answer it reliably, reply with exactly "
    "{\"escalate\": true} and nothing else.";

static const char default_escalation[] =
    "Cheaper models already tried this task and their answers were not "
    "trusted. Their attempts follow, each with the reason it was passed "
    "on; use what is right in them and give your own complete answer.";

static const char default_excerpt[] =
    "A cheaper model's answer to this task was not trusted. Its ending "
    "follows; give your own complete answer.";

/* escalate_context "final": one short line (it is paid on every
 * escalation at the stronger tier's input price). */
static const char default_final[] = "An earlier answer, not trusted:";

/* The last attempt with an answer, or NULL. */
static const struct ks_ctx_attempt *last_answer(const struct ks_ctx *ctx)
{
    for (size_t i = ctx->n_attempts; i > 0; i--) {
        if (ctx->attempts[i - 1].output) {
            return &ctx->attempts[i - 1];
        }
    }
    return NULL;
}

/* escalate_context "answer": the last attempt with an answer, its last
 * ANSWER_EXCERPT_MAX bytes (cut at a UTF-8 character start). */
static void append_excerpt(struct ks_buf *b,
                           const struct worker *w,
                           const struct ks_ctx *ctx)
{
    const struct ks_ctx_attempt *a = last_answer(ctx);
    const char *text;
    size_t len;

    if (!a) {
        return; /* no answer to show: the task alone */
    }
    text = a->output;
    len = strlen(text);
    if (len > ANSWER_EXCERPT_MAX) {
        text += len - ANSWER_EXCERPT_MAX;
        while (((unsigned char)*text & 0xC0) == 0x80) {
            text++;
        }
        len = strlen(text);
    }
    ks_buf_printf(b, "\n\n%s\n\n[tier %s%s]\n",
                  w->tier->escalation_prompt ? w->tier->escalation_prompt
                                             : default_excerpt,
                  a->tier, text != a->output ? ", the end of its answer" : "");
    ks_buf_append(b, text, len);
}

/* escalate_context "final": the final answer the last attempt states, in
 * one line; the excerpt when it states none. */
static void append_final(struct ks_buf *b,
                         const struct worker *w,
                         const struct job *job)
{
    const struct ks_ctx_attempt *a = last_answer(job->ctx);
    char final[64];

    if (!a) {
        return;
    }
    if (!ks_verify_stated_answer(
            a->output, ks_config_answer_pattern(w->cfg, job->task->type),
            job->task->output_schema, final, sizeof(final))) {
        append_excerpt(b, w, job->ctx);
        return;
    }
    ks_buf_printf(b, "\n\n%s [%s] %s\n",
                  w->tier->escalation_prompt ? w->tier->escalation_prompt
                                             : default_final,
                  a->tier, final);
}

static void append_attempts(struct ks_buf *b,
                            const struct worker *w,
                            const struct ks_ctx *ctx)
{
    ks_buf_printf(b, "\n\n%s",
                  w->tier->escalation_prompt ? w->tier->escalation_prompt
                                             : default_escalation);
    for (size_t i = 0; i < ctx->n_attempts; i++) {
        const struct ks_ctx_attempt *a = &ctx->attempts[i];
        size_t len = a->output ? strlen(a->output) : 0;

        ks_buf_printf(b, "\n\n[attempt %zu: tier %s, model %s, %s", i + 1,
                      a->tier, a->model ? a->model : "?",
                      a->reason ? a->reason : "escalated");
        if (a->confidence >= 0) {
            ks_buf_printf(b, ", confidence %.2f", a->confidence);
        }
        ks_buf_printf(b, "]\n");
        if (a->output) {
            ks_buf_append(b, a->output,
                          len > ATTEMPT_TEXT_MAX ? ATTEMPT_TEXT_MAX : len);
        } else {
            ks_buf_printf(b, "(no answer: the provider failed)");
        }
    }
}

/* (Re)builds job->system from the tier, the task and job->ctx. */
static void build_system(struct worker *w, struct job *job)
{
    const struct ks_task *t = job->task;
    struct ks_buf b;

    ks_buf_init(&b);
    if (w->tier->prompt) {
        ks_buf_printf(&b, "%s", w->tier->prompt);
    } else {
        ks_buf_printf(&b, default_lane, w->tier->name);
    }
    if (t->instructions) {
        ks_buf_printf(&b, "\n\n%s", t->instructions);
    }
    if (t->output_schema) {
        ks_buf_printf(&b,
                      "\n\nAnswer with JSON only, matching this JSON "
                      "Schema: %s",
                      t->output_schema);
    }
    if (job->ctx && job->ctx->n_attempts > 0) {
        if (w->tier->escalate_context == KS_ESC_CTX_FULL) {
            append_attempts(&b, w, job->ctx);
        } else if (w->tier->escalate_context == KS_ESC_CTX_ANSWER) {
            append_excerpt(&b, w, job->ctx);
        } else if (w->tier->escalate_context == KS_ESC_CTX_FINAL) {
            append_final(&b, w, job);
        }
    }
    if (b.len > w->cfg->limits.max_text_bytes) {
        b.len = w->cfg->limits.max_text_bytes;
        b.data[b.len] = '\0';
    }
    free(job->system);
    job->system = ks_buf_take(&b);
}

void escalate_prepare(struct worker *w, struct job *job)
{
    build_system(w, job);
}

bool escalate_record(struct worker *w,
                     struct job *job,
                     const struct ks_ctx_attempt *a)
{
    if (!job->ctx) { /* the first hand-on makes it */
        job->ctx = ks_ctx_new(job->task, job->fmt, &w->cfg->limits);
    }
    if (!job->ctx) {
        ks_log_error("worker", "%s: cannot copy the task into a context",
                     job->task->id);
        return false;
    }
    ks_ctx_add(job->ctx, a);
    return true;
}

void escalate_hand_on(struct worker *w,
                      const struct job *job,
                      struct outcome *out)
{
    const struct ks_ctx_attempt *a =
        &job->ctx->attempts[job->ctx->n_attempts - 1];
    struct ks_escalation esc = {0};
    char *key, *buf = NULL;
    size_t len = 0;
    enum ks_err err;

    *out = (struct outcome){0};
    key = ks_ctx_key(w->rs, job->task->tenant, job->task->id);
    esc.id = job->task->id;
    esc.tenant = job->task->tenant;
    esc.from_tier = w->tier->name;
    esc.hop = job->hop;
    esc.reason = a->reason;
    esc.confidence = a->confidence < 0 ? 0 : a->confidence;
    esc.context_key = key;
    esc.cost_so_far_micro = job->ctx->cost_micro;
    err = ks_escalation_encode(job->fmt, &esc, &buf, &len);
    free(key);
    if (err != KS_OK) {
        ks_log_error("worker", "%s: cannot encode the escalation",
                     job->task->id);
        out->abandon = true;
        return;
    }
    ks_log_info("worker", "%s hop %" PRIu32 ": escalating (%s)", job->task->id,
                job->hop, a->reason);
    ks_metrics_add(w->m_results, 1, w->tier->name, "escalated");
    out->tag = DONE_ESCALATION;
    out->topic = w->esc_topic;
    out->value = buf;
    out->len = len;
}
