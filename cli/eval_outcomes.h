/*
 * eval_outcomes.h - labelled outcomes for `kascade eval` and
 * `kascade tune`: one task a line, what every tier answered, whether it
 * was right, what it cost and how confident each signal was.
 *
 *   {"id": "t1", "type": "math", "prompt": "...",
 *    "router_score": 0.31,                       (optional)
 *    "tiers": {"cheap": {"answer": "...", "correct": true,
 *                        "input_tokens": 120, "output_tokens": 80,
 *                        "cost_usd": 0.0001, "latency_ms": 900,
 *                        "finish_reason": "stop",
 *                        "logprobs": {"mean": -0.2, "min": -3.1,
 *                                     "share_low": 0.05},
 *                        "confidence": {"logprob": 0.91}},
 *              "top": {...}}}
 *
 * The same lines as `kascade train --kind verifier` reads (learn/verify.h
 * is the contract of the shared fields); eval adds "confidence" (each
 * signal's recorded value) and "router_score", and also reads the token
 * counts from a Result-style "usage" object.
 * Tiers are listed cheapest first (the order of the first line's "tiers"
 * object); every line names the same tiers. "input" is read when there is
 * no "prompt"; "type" defaults to "default". cost_usd may be left out
 * when a price for the tier is given (USD per million tokens of input and
 * output). A confidence that is absent is "no signal": like the worker,
 * eval never escalates on it.
 * Single-threaded. Ownership: a struct ev_set and everything in it belong
 * to the caller from ev_set_read until ev_set_free.
 */
#ifndef KASCADE_CLI_EVAL_OUTCOMES_H
#define KASCADE_CLI_EVAL_OUTCOMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_MAX_TIERS   8
#define EV_MAX_SOURCES 8
#define EV_MAX_TYPES   64
#define EV_NAME_MAX    64

struct ev_tier_out {
    bool correct;
    double cost_usd;
    double latency_ms; /* NAN when not recorded */
    int64_t in_tokens, out_tokens;
    bool truncated;              /* finish_reason "length" */
    double in_usd_per_token;     /* the tier's input price (--price), or 0 */
    double conf[EV_MAX_SOURCES]; /* NAN: no signal from that source */
};

struct ev_task {
    char *id;
    size_t type;   /* index into ev_set.types */
    bool has_type; /* the line named it (else "default") */
    char *prompt;
    double router_score; /* NAN when not given */
    struct ev_tier_out t[EV_MAX_TIERS];
};

struct ev_price {
    char tier[EV_NAME_MAX];
    double in_per_mtok, out_per_mtok;
};

struct ev_set {
    struct ev_task *tasks;
    size_t n, cap;
    size_t n_tiers;
    char tiers[EV_MAX_TIERS][EV_NAME_MAX];
    size_t n_src;
    char src[EV_MAX_SOURCES][EV_NAME_MAX];
    size_t n_types;
    char types[EV_MAX_TYPES][EV_NAME_MAX];
    /* Set before ev_set_read for a file read for its scores only (tune's
     * --deploy-scores): a tier may lack "correct" and cost_usd (read as
     * false and 0). */
    bool unlabelled;
};

/* Reads path into set (zeroed by the caller). prices (n_prices) fill in a
 * missing cost_usd, and give the input price an escalated call pays for
 * the cheaper answers it is shown (eval_curve.h). Returns 0, or -1 with the
 * line and reason on stderr (a bad line stops the read: a skipped line would
 * change every figure).
 */
int ev_set_read(struct ev_set *set,
                const char *path,
                const struct ev_price *prices,
                size_t n_prices);

/* Frees what set holds (not set itself). */
void ev_set_free(struct ev_set *set);

/* Index of a tier, source or type by name, or -1. */
int ev_tier_index(const struct ev_set *set, const char *name);
int ev_src_index(const struct ev_set *set, const char *name);
int ev_type_index(const struct ev_set *set, const char *name);

/* Parses "TIER=IN:OUT" (USD per million tokens). Returns 0 or -1. */
int ev_price_parse(const char *s, struct ev_price *p);

/* Splits set into train and test by a seeded shuffle: the first
 * round(share * n) shuffled tasks are train. Both borrow set's tasks
 * (arrays of pointers, caller frees the arrays). */
void ev_set_split(const struct ev_set *set,
                  double share,
                  uint64_t seed,
                  const struct ev_task ***train,
                  size_t *n_train,
                  const struct ev_task ***test,
                  size_t *n_test);

/* Writes in_path (the file set was read from) to out_path with every
 * confidence set holds (computed ones too, such as the verifier's) under
 * each tier's "confidence" and the router score as "router_score". For
 * cross-fitting: score a fold with models trained on the other folds.
 * Returns 0, or -1 (reported). */
int ev_set_write_scored(const struct ev_set *set,
                        const char *in_path,
                        const char *out_path);

/* A seeded 64-bit generator (splitmix64) for shuffles and bootstraps. */
uint64_t ev_rand(uint64_t *state);

#endif
