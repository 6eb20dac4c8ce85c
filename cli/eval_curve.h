/*
 * eval_curve.h - the figures of `kascade eval` and `kascade tune`, pure
 * functions over labelled outcomes: quality and cost curves as more tasks
 * go to the top tier (routing: the top tier instead of the cheap one;
 * cascade: the cheap call, then the top one), CPT and APGR, what a
 * threshold policy yields, and reliability with the expected calibration
 * error.
 *
 * Ties: tasks with the same key cannot be told apart by a threshold, so a
 * curve crosses a group of tied tasks on a straight line (the expected
 * value of any order within the group). A constant score therefore gives
 * exactly random's curve, whatever the order of the lines.
 * Single-threaded. Ownership: a struct ev_curve owns its arrays
 * (ev_curve_fini); tasks are borrowed.
 */
#ifndef KASCADE_CLI_EVAL_CURVE_H
#define KASCADE_CLI_EVAL_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "eval_outcomes.h"

#define EV_BINS 10

/* What an escalated call reads of the cheaper attempt, as the top tier's
 * escalate_context says (workers/escalate.c), priced at its own input
 * price when that is known: "final" (the worker's default) a note with
 * the answer's stated final answer, EV_ESC_FINAL_READ tokens (an answer
 * that states none makes the worker read the excerpt instead: price such
 * tasks with "answer"); "full" the whole answer plus about
 * EV_ESC_FULL_OVERHEAD tokens of escalation prompt and attempt header;
 * "answer" at most EV_ESC_EXCERPT_TOKENS of the answer's end plus
 * EV_ESC_ANSWER_OVERHEAD; "none" nothing. */
#define EV_ESC_FULL_OVERHEAD   80
#define EV_ESC_ANSWER_OVERHEAD 40 /* the note and the tier's name */
#define EV_ESC_EXCERPT_TOKENS  64 /* 256 bytes */
#define EV_ESC_FINAL_READ      12 /* the note, the tier, a short answer */

/* Sets what escalated calls read for every later ev_escalated_cost (the
 * CLI sets it once, from --escalate-context, before any pricing). */
void ev_escalation_read_set(enum ks_escalate_context r);
/* Parses "final", "answer", "full" or "none" (config.h). Returns 0, or -1
 * (reported). */
int ev_escalation_read_parse(const char *s, enum ks_escalate_context *r);

/* What an escalation from l to h costs on top of l's call: h's own call
 * and what it reads. */
double ev_escalated_cost(const struct ev_tier_out *l,
                         const struct ev_tier_out *h);

struct ev_curve {
    size_t n;
    double *acc;        /* [n+1]: accuracy with the first k on the top tier */
    double *cost_route; /* [n+1]: mean USD per task, routing */
    double *cost_casc;  /* [n+1]: mean USD per task, cascade */
};

/* Builds the curve between tiers lo and hi: key[i] orders the tasks, the
 * highest first; NAN means never sent up (such tasks come last, tied). */
void ev_curve_build(const struct ev_task *const *t,
                    size_t n,
                    size_t lo,
                    size_t hi,
                    const double *key,
                    struct ev_curve *c);
void ev_curve_fini(struct ev_curve *c);

/* The least share of tasks on the top tier whose accuracy recovers x of
 * the gap between all-cheap and all-top, or -1 when never. */
double ev_cpt(const struct ev_curve *c, double x);

/* Average performance gap recovered over shares 0..1 (trapezoids). */
double ev_apgr(const struct ev_curve *c);

/* The least mean cost (cascade or routing) at accuracy >= q, with the
 * share sent up in *share; -1 when the curve never reaches q. */
double ev_cost_at(const struct ev_curve *c,
                  double q,
                  bool cascade,
                  double *share);

/* A threshold policy, as the router and the worker apply it: a task whose
 * router score is >= route_at goes straight to hi (NAN: no router step);
 * else lo answers, and escalates to hi when the confidence of source src
 * is below below[type] (a missing confidence never escalates). */
struct ev_policy {
    double route_at;
    size_t src;
    double below[EV_MAX_TYPES];
};

struct ev_result {
    double quality;   /* share right */
    double cost;      /* mean USD per task */
    double escalated; /* share of tasks escalated lo -> hi */
    double routed;    /* share sent straight to hi */
};

void ev_policy_apply(const struct ev_policy *p,
                     const struct ev_task *const *t,
                     size_t n,
                     size_t lo,
                     size_t hi,
                     struct ev_result *r);

/* Reliability of probabilities p[i] against outcomes y[i] (NAN p skipped):
 * 10 equal bins and the expected calibration error. */
struct ev_rel {
    size_t n;
    size_t count[EV_BINS];
    double mean_p[EV_BINS], observed[EV_BINS];
    double ece;
    double min, max;
};

void ev_reliability(const double *p, const bool *y, size_t n, struct ev_rel *r);

/* Mean accuracy and cost of one tier answering everything. */
void ev_tier_mean(const struct ev_task *const *t,
                  size_t n,
                  size_t tier,
                  double *quality,
                  double *cost);

#endif
