/*
 * agree.h - the "agreement" confidence source of a tier (self-consistency,
 * docs/design.md section 6): with tiers[].samples k > 1, a task's call is
 * made k times (one after another, each reserved and charged like any
 * call), or once asking for the k answers when the provider has
 * supports_n (openai "n"; a provider that sends fewer is asked again for
 * the rest), the final answers are compared (learn/verify.h
 * ks_verify_agreement) and the majority answer is the output, its share
 * of the k the confidence. The samples live in the job (job->agree,
 * owned; agree_free). Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_AGREE_H
#define KASCADE_WORKERS_AGREE_H

#include <stdbool.h>
#include <stdint.h>

#include "llm/answer.h"
#include "llm/model.h"
#include "worker_internal.h"

/* How many answers the job's next call asks for: 1, or with a
 * supports_n provider the samples still missing. Reservations and rate
 * estimates count that many outputs. */
unsigned agree_ask(const struct worker *w, const struct job *job);

/* The output tokens the job's next call may produce beyond one answer's
 * max_output_tokens: those of the other answers it asks for (0 for a
 * call asking for one). */
int64_t agree_extra_output(const struct worker *w, const struct job *job);

/* Keeps a copy of a successful reply as one sample, and each of its
 * other choices (reply->more) as one more. Returns true when the
 * job needs another (fewer than samples so far): the caller puts it back
 * to JOB_WAIT_SLOT; false when the tier takes one sample, or this was the
 * last. */
bool agree_more(struct worker *w,
                struct job *job,
                const struct ks_model_reply *reply);

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
