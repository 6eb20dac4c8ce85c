/*
 * eval_results.h - a real run's Results joined with labelled outcomes by
 * id (`kascade eval --results`). Single-threaded; arguments borrowed.
 */
#ifndef KASCADE_CLI_EVAL_RESULTS_H
#define KASCADE_CLI_EVAL_RESULTS_H

#include "eval_outcomes.h"

/* Reads the Results at path (one JSON a line: id, tier, cost_usd,
 * latency_ms, path) and prints the run's quality (each Result graded by
 * the label of the tier that answered it), cost, escalations and latency,
 * next to each tier alone. Returns 0, or -1 (a bad line, reported). */
int ev_results_report(const struct ev_set *set, const char *path);

#endif
