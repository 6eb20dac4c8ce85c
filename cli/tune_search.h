/*
 * tune_search.h - the least-cost thresholds of `kascade tune`: given
 * labelled outcomes between a cheap tier and a top one, a confidence
 * source and a quality target, choose the cheap tier's escalate_below
 * (one per task type that has enough examples, one shared by the rest)
 * and, when tasks carry a router score, the router's score_threshold,
 * so that quality on the tasks is at least the target at the least
 * mean cost.
 *
 * Method: for each router threshold candidate (quantiles of the score,
 * and "off"), a Lagrangian sweep: for a price lambda of one right answer,
 * every type group independently takes the threshold minimising
 * cost - lambda * right; of all lambdas the cheapest choice meeting the
 * target wins; then each group tries every one of its thresholds with the
 * others as chosen: the sweep alone reaches only the concave envelope of
 * a group's (cost, right) curve and misses the cheapest point meeting a
 * target on a flat stretch (with one group the scan is exhaustive). Only
 * thresholds a worker can realise are candidates (escalate when confidence <
 * threshold: ties go together; a missing confidence never escalates).
 * Single-threaded. Ownership: tasks are borrowed.
 */
#ifndef KASCADE_CLI_TUNE_SEARCH_H
#define KASCADE_CLI_TUNE_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "eval_curve.h"
#include "eval_outcomes.h"

struct tune_choice {
    bool found;              /* some policy met the target */
    struct ev_policy policy; /* route_at NAN: no router step */
    bool own[EV_MAX_TYPES];  /* the type has its own threshold */
    double below_rest;       /* escalate_below for every other type */
    struct ev_result r;      /* on the tasks searched */
};

/* Searches tasks t[0..n-1] (tiers lo, hi; confidence source src) for the
 * cheapest policy with quality >= target. Types with at least min_type
 * tasks get their own threshold. use_router: also search a router
 * threshold (tasks need router scores). n_types: the set's type count. */
void tune_search(const struct ev_task *const *t,
                 size_t n,
                 size_t n_types,
                 size_t lo,
                 size_t hi,
                 size_t src,
                 double target,
                 size_t min_type,
                 bool use_router,
                 struct tune_choice *out);

#endif
