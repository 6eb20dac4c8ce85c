/*
 * agree.h - the "agreement" confidence source of a tier (self-consistency,
 * docs/design.md section 6): with tiers[].samples k > 1, a task's call is
 * made k times, the k calls in flight together (fanout.c; as many as the
 * tier's free call slots take, the rest in the next turn), or once asking
 * for the k answers when the provider has supports_n (openai "n"; a
 * provider that sends fewer is asked again for the rest); a turn is
 * reserved and settled once for all its calls; the final answers are compared
 * (learn/verify.h ks_verify_agreement) and the majority answer is the output,
 * its share of the k the confidence. The samples live in the job (job->agree,
 * owned; agree_free). Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_AGREE_H
#define KASCADE_WORKERS_AGREE_H

#include <stdbool.h>
#include <stdint.h>

#include "llm/answer.h"
#include "llm/model.h"
#include "worker_internal.h"

/* The shape of the job's next turn, given the tier's free call slots
 * (at least one): *calls calls asking for *ask answers in all. One call
 * asking for every answer missing when the tier takes one sample or the
 * provider has supports_n; else one call (n = 1) per answer missing, at
 * most slots of them. Computes only: the caller keeps it in job->fan. */
void agree_plan(const struct worker *w,
                const struct job *job,
                size_t slots,
                unsigned *calls,
                unsigned *ask);

/* The answers the job's turn asks for in all (job->fan's plan; before
 * one, agree_plan's with every slot free). Reservations and rate
 * estimates count that many outputs. */
unsigned agree_ask(const struct worker *w, const struct job *job);

/* The calls of the job's turn (likewise): reservations and rate estimates
 * count that many prompts. */
unsigned agree_calls(const struct worker *w, const struct job *job);

/* The output tokens the job's turn may produce beyond one answer per
 * call: those of the other answers a supports_n call asks for (0 when
 * each call asks for one). */
int64_t agree_extra_output(const struct worker *w, const struct job *job);

/* Keeps a copy of a successful reply as one sample, and each of its
 * other choices (reply->more) as one more (up to samples), and adds its
 * usage to the samples' sums. Nothing when the tier takes one sample. */
void agree_more(struct worker *w,
                struct job *job,
                const struct ks_model_reply *reply);

/* Does the job need more answers (samples > 1, fewer so far)? When its
 * turn is over the caller puts it back to JOB_WAIT_SLOT for them. */
bool agree_wanting(const struct worker *w, const struct job *job);

/* With the job's samples (more than one): judges the majority answer into
 * ans (the caller finishes it with ks_answer_fini) as finish_ok would,
 * then sets its confidence to the agreement share (source "agreement"),
 * unless the escalate flag or a failed schema decided it. *in_tokens and
 * *out_tokens are the sums over the samples. Returns false (ans untouched)
 * when the job has no samples. */
bool agree_judge(struct worker *w,
                 struct job *job,
                 const struct ks_model_reply *last,
                 struct ks_answer *ans,
                 int64_t *in_tokens,
                 int64_t *out_tokens);

void agree_free(struct job *job); /* accepts a job without samples */

#endif
