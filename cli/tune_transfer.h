/*
 * tune_transfer.h - carries the thresholds `kascade tune` chose into the
 * scale of the model the config deploys. Tune chooses on cross-fitted
 * out-of-fold scores (each fold model with its own Platt scale); the
 * deployed model, trained on all of the data, has another scale, so the
 * same number sends up another share of tasks. Here each chosen
 * escalate_below is expressed as the share of its type group's tasks it
 * sends up (confidence below it, among tasks with a confidence) and
 * turned into the threshold that sends up the same share of the tasks of
 * a second file scored by the deployed model (--deploy-scores; its
 * labels are not read). The router's score_threshold (score >= it goes
 * up) is carried over the same way, on the router scores of both files.
 * Single-threaded. Ownership: everything is borrowed; c is updated.
 */
#ifndef KASCADE_CLI_TUNE_TRANSFER_H
#define KASCADE_CLI_TUNE_TRANSFER_H

#include <stddef.h>

#include "eval_outcomes.h"
#include "tune_search.h"

/* The threshold d such that the share of v[0..n-1] (sorted ascending,
 * no NAN) strictly below d is as close as the ties allow to share.
 * n must be > 0. */
double tune_threshold_at_share(const double *v, size_t n, double share);

/* Maps c's escalate_below thresholds (indexed by from's types, chosen on
 * from's tasks t[0..n-1], cheap tier lo, source src) to dep's scores
 * (tier dep_lo, source dep_src), type group by type group, and prints
 * each mapping; with a router threshold, that too (router_score). src
 * >= from->n_src (--source none): only the router's. Returns 0, or -1
 * (reported) when a group, or the router, has no score in dep. */
int tune_transfer(struct tune_choice *c,
                  const struct ev_set *from,
                  const struct ev_task *const *t,
                  size_t n,
                  size_t lo,
                  size_t src,
                  const struct ev_set *dep,
                  size_t dep_lo,
                  size_t dep_src);

#endif
