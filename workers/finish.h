/*
 * finish.h - how a job ends (finish.c): the Result of an answer, the
 * hand-on to a stronger tier, the failed Result and DLQ entry, the
 * budget_exceeded Result. Each function fills a caller-provided struct
 * outcome (worker_internal.h) that job.c owns and applies; nothing here
 * produces or changes job->state. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_FINISH_H
#define KASCADE_WORKERS_FINISH_H

#include "worker_internal.h"

/* An answer (ans borrowed): a Result, or a hand-on to a stronger tier
 * when it is not confident enough (the attempt is then in job->ctx).
 * Fills out. */
void finish_answer(struct worker *w,
                   struct job *job,
                   const struct ks_answer *ans,
                   int64_t input_tokens,
                   int64_t output_tokens,
                   struct outcome *out);

/* The call answered: judged, then finish_answer. */
void finish_ok(struct worker *w,
               struct job *job,
               const struct ks_model_reply *reply,
               struct outcome *out);

/* No provider could answer: a hand-on below the top tier; on it a failed
 * Result for whoever waits and the original in the DLQ for replay (detail
 * borrowed into out->dlq_detail). Fills out. */
void finish_failed(struct worker *w,
                   struct job *job,
                   enum ks_err err,
                   const char *detail,
                   struct outcome *out);

/* The job's Result (or Escalation) was too large for the broker: a small
 * failed Result with error "too_large: <detail>" for the task's results
 * or reply_to topic, and the original task for the DLQ with code
 * `too_large` (detail borrowed into out->dlq_detail). Fills out. */
void finish_too_large(struct worker *w,
                      struct job *job,
                      const char *detail,
                      struct outcome *out);

/* The budget refused the call under the reject policy. Fills out. */
void finish_budget(struct worker *w,
                   const struct job *job,
                   struct outcome *out);

#endif
