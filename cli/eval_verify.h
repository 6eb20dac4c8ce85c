/*
 * eval_verify.h - the verifier as one of eval's and tune's confidence
 * sources: scores every answer of one tier in an outcomes file with a
 * model from `kascade train --kind verifier` (learn/verify.h), exactly as
 * the worker would, and records it as source "verifier".
 * Single-threaded. Ownership: arguments are borrowed.
 */
#ifndef KASCADE_CLI_EVAL_VERIFY_H
#define KASCADE_CLI_EVAL_VERIFY_H

#include <stdbool.h>

#include "eval_outcomes.h"
#include "train_verify.h"

/* Re-reads path (the file set was read from, line for line) and sets the
 * confidence "verifier" of tier's answers (with missing, only those the
 * file left out) to ks_verify_score under the model at model_path, with
 * pats as the answer patterns. Returns 0, or -1 with the reason on
 * stderr. */
int ev_verifier_fill(struct ev_set *set,
                     const char *path,
                     const char *model_path,
                     const char *tier,
                     const struct vpatterns *pats,
                     bool missing);

#endif
