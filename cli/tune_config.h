/*
 * tune_config.h - the config side of `kascade tune`: writing the chosen
 * thresholds as a fragment or into a copy of a config, reading a config's
 * thresholds back as a policy (--check), and carrying a choice from the
 * training outcomes over to a test file whose types are numbered in
 * another order. Single-threaded; arguments are borrowed.
 */
#ifndef KASCADE_CLI_TUNE_CONFIG_H
#define KASCADE_CLI_TUNE_CONFIG_H

#include "eval_curve.h"
#include "eval_outcomes.h"
#include "tune_search.h"

struct tune_out_args {
    const struct tune_choice *c;
    const struct ev_set *set; /* whose type indexes c uses */
    const char *tier;         /* the cheap tier's name */
    const char *score_model;  /* the router model searched with, or NULL */
};

/* Writes the fragment to out (NULL: none) and, with base, base's config
 * with the thresholds set to write_config. Returns 0, or -1 (reported).
 * Fragment: {"tiers": [{"name", "escalate_below",
 * "escalate_below_types"}], "routing": {"score_model",
 * "score_threshold"}} (routing only when a router model was searched). */
int tune_write(const struct tune_out_args *w,
               const char *out,
               const char *base,
               const char *write_config);

/* Moves c's per-type thresholds from from's type numbering to to's (a
 * type to lacks gets the shared threshold) and its source to to_src. */
void tune_remap(struct tune_choice *c,
                const struct ev_set *from,
                const struct ev_set *to,
                size_t to_src);

/* routing.score_model of the config at path into *model (heap, caller
 * frees; NULL when none). Returns 0, or -1 (reported). */
int tune_read_config(const char *path, char **model);

/* The policy of the config at path for tier lo of set and source src:
 * the tier's escalate_below (0 when unset, the config's default) and
 * escalate_below_types, and routing.score_threshold (0.5 when unset)
 * when routing.score_model is set. Returns 0, or -1 (reported). */
int tune_policy_of_config(const char *path,
                          const struct ev_set *set,
                          size_t lo,
                          size_t src,
                          struct ev_policy *p);

#endif
