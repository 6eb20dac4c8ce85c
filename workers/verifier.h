/*
 * verifier.h - the "verifier" confidence source of a tier (docs/design.md
 * section 6; learn/verify.h): the tier's verifier models, loaded at start
 * and owned by the worker, and the judgement of one answer with them.
 * Event-loop thread only (the models themselves are read-only).
 */
#ifndef KASCADE_WORKERS_VERIFIER_H
#define KASCADE_WORKERS_VERIFIER_H

#include <stdbool.h>

#include "llm/answer.h"
#include "llm/model.h"
#include "worker_internal.h"

/* Loads the tier's verifier_model and verifier_models (a model file named
 * twice is loaded once). Returns 0, or -1 with errstr (tier, file,
 * reason): a verifier that cannot be loaded stops the worker at start. */
int verifier_open(struct worker *w, char *errstr, size_t errstr_size);
void verifier_close(struct worker *w); /* accepts a worker without them */

/* When the tier has a verifier for the job's task type and the answer's
 * confidence is not already decided (the escalate flag, a failed
 * output_schema): sets ans->confidence to the verifier's calibrated
 * P(right). Its source is "verifier" when the answer carried no other
 * signal, else "combined", with ans->parts holding each signal on its
 * own (logprob, self_report, schema, agreement: the share of the tier's
 * samples agreeing, or < 0 without samples; and "verifier": the model's
 * score with the other signals left out). Returns true when it judged;
 * false (ans untouched) without a verifier for the type or when the
 * answer's confidence was decided. */
bool verifier_judge(const struct worker *w,
                    const struct job *job,
                    const struct ks_model_reply *reply,
                    double agreement,
                    struct ks_answer *ans);

#endif
