/*
 * eval_report.h - `kascade eval -i OUTCOMES.jsonl` (eval_report.c) and
 * the pieces `kascade tune` shares with it. Single-threaded; arguments
 * are borrowed.
 */
#ifndef KASCADE_CLI_EVAL_REPORT_H
#define KASCADE_CLI_EVAL_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "eval_curve.h"
#include "eval_outcomes.h"

/* The outcomes report; argv[0] is "eval". Returns the exit status. */
int eval_outcomes(int argc, char **argv);

/* A quality target: "top-K" (the top tier's quality minus K points) or
 * an absolute share in [0,1]. Returns 0, or -1 when malformed. */
int ev_target_parse(const char *s, double top_quality, double *q);

/* The cheap and top tier indexes (default: first and last). Returns 0,
 * or -1 with the reason on stderr. */
int ev_pick_pair(const struct ev_set *set,
                 const char *cheap,
                 const char *top,
                 size_t *lo,
                 size_t *hi);

/* Sets every task's router_score (with missing, only those the file left
 * out) to the calibrated score of the router model at model_path.
 * Returns 0, or -1 with the reason on stderr. */
int ev_score_tasks(struct ev_set *set, const char *model_path, bool missing);

/* The signals eval compares, each with its curve. */
/* The key that orders tasks for a signal: sig < 0 is the router score
 * (higher goes up first), else confidence source sig (lower first);
 * EV_SIG_TYPE_PRIOR the task type's failure rate of the cheap tier in
 * these outcomes (higher first: the router's per-type prior alone; shown
 * with two types or more); EV_SIG_RANDOM a constant; EV_SIG_ORACLE the
 * tasks only the top tier gets right first. The baselines (type prior,
 * random, oracle) come after the real signals. */
#define EV_SIG_ROUTER     (-1)
#define EV_SIG_RANDOM     (-2)
#define EV_SIG_ORACLE     (-3)
#define EV_SIG_TYPE_PRIOR (-4)
#define EV_SIGNALS_MAX    (EV_MAX_SOURCES + 4)

struct ev_signals {
    int sig[EV_SIGNALS_MAX];
    struct ev_curve c[EV_SIGNALS_MAX];
    size_t n;
    size_t n_real; /* the first n_real are real signals, then baselines */
};

/* eval_signals.c: the curves of every signal between tiers lo and hi:
 * the router score when the tasks have one, each confidence source, then
 * the baselines (the type prior with two types or more, random, the
 * oracle). */
void ev_signals_build(const struct ev_set *set,
                      const struct ev_task **t,
                      size_t lo,
                      size_t hi,
                      struct ev_signals *s);

/* A signal's name: the source's, "router score", "type prior", "random",
 * "oracle". */
const char *ev_signal_name(const struct ev_set *set, int sig);

/* Reliability of a signal on the cheap tier lo: the router score as the
 * probability that lo is wrong, a confidence as the probability that lo's
 * answer is right. */
void ev_reliability_of(
    const struct ev_task **t, size_t n, size_t lo, int sig, struct ev_rel *rel);

/* eval_plot.c: DIR/quality_cost.svg (each signal's curve, random, the
 * oracle, each tier alone) and DIR/reliability.svg (the signals sig[0..
 * n_sig-1]). Return 0, or -1 with the reason on stderr. */
int ev_plot_curves(const char *dir,
                   const struct ev_set *set,
                   const struct ev_signals *s,
                   size_t lo,
                   size_t hi);
int ev_plot_reliability(const char *dir,
                        const struct ev_set *set,
                        const struct ev_task **t,
                        const int *sig,
                        size_t n_sig,
                        size_t lo);

#endif
