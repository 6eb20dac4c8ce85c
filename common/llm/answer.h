/*
 * answer.h - how sure is a model's answer? (docs/design.md section 6) Judges
 * one reply against its task: the confidence in [0,1] and its source, or
 * no signal. Pure functions, any thread.
 */
#ifndef KASCADE_COMMON_LLM_ANSWER_H
#define KASCADE_COMMON_LLM_ANSWER_H

#include <stdbool.h>

#include "llm/model.h"
#include "wire/codec.h"

/* Signals a combined confidence was made of (Result.confidence_parts). */
#define KS_ANSWER_PARTS_MAX 8

struct ks_answer {
    char *output;       /* owned: what the Result carries */
    double confidence;  /* in [0,1], or -1: no signal */
    const char *source; /* static: logprob, self_report, schema, verifier,
                           combined; or NULL */
    const char *reason; /* static: ok, escalate_flag, schema, not_json */
    /* Each signal on its own, for a model that combines them (the worker's
     * verifier, workers/verifier.c): */
    double logprob;     /* exp(mean token logprob); -1: no logprobs */
    double self_report; /* the reported confidence the tier counts; -1 */
    bool decided;       /* the escalate flag or the schema set 0: final */
    struct {
        const char *source; /* static */
        double value;
    } parts[KS_ANSWER_PARTS_MAX]; /* source "combined": its signals */
    size_t n_parts;
};

/* Fills a (caller finishes it with ks_answer_fini). self_report is the
 * tier's setting: false ignores a "confidence" the answer reports. With
 * logprobs, a reported confidence can only lower theirs; "escalate":
 * true always gives 0. */
void ks_answer_judge(const struct ks_task *task,
                     const struct ks_model_reply *reply,
                     bool self_report,
                     struct ks_answer *a);

void ks_answer_fini(struct ks_answer *a);

#endif
