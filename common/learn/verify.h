/*
 * verify.h - the answer verifier: how likely is a tier's answer to be
 * correct, judged from the task and the answer alone (issue 11, confidence
 * source "verifier"; docs/design.md section 6).
 *
 * Features (all hashed into one lr.h-style vector of 2^bits buckets):
 * - generic checks of the answer (enum ks_verify_check): it follows the
 *   format the task asked for (the task's output_schema, or the type's
 *   configured answer_pattern), a final answer can be extracted and is
 *   unique, arithmetic statements "a op b = c" recompute, it is not
 *   truncated (finish_reason), no repetition loop, no refusal, its length
 *   against the limit, numbers absent from the question, hedging words,
 *   logprob statistics when the provider gave them, the answer's own
 *   reported confidence when it gave one, and the agreement of k samples
 *   when the tier took them. Each check is a
 *   named feature in namespace 'k' with its value (indicators are 0/1,
 *   shares in [0,1], counts squashed to [0,1)). A signal the answer lacks
 *   (logprobs, a finish reason, a self-report, agreement) adds no feature
 *   at all, so training where a signal was missing and serving where it
 *   is present (or the other way round) do not shift the score; only the
 *   format check says "nothing to check against" (format_none), which
 *   depends on the config, the same in training and in serving.
 * - the task type as an indicator ("type=<type>"),
 * - hashed n-grams of the prompt and of the answer (lr.h's feature set,
 *   each in its own hash namespace, each L2-normalised and scaled by
 *   KS_VERIFY_TEXT_WEIGHT).
 * Nothing in here knows a dataset: GSM8K's "#### <number>" is an
 * answer_pattern of the bench config, not code.
 *
 * The model is an lr.h model of kind "verifier": labels "0" (the answer is
 * wrong) and "1" (it is correct); ks_verify_score returns the calibrated
 * P(correct), the confidence a worker compares with escalate_below.
 * Calibration is Platt's, or temperature scaling when Platt collapses
 * (lr.h, common/learn/train.c).
 *
 * Ownership: inputs are borrowed for the call. A loaded model is read-only:
 * scoring is safe from any number of threads at once. A verify trainer is
 * the caller's and not thread-safe.
 */
#ifndef KASCADE_COMMON_LEARN_VERIFY_H
#define KASCADE_COMMON_LEARN_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/rule.h"
#include "learn/lr.h"

/* Tokens with a log-probability under this count as "low". */
#define KS_VERIFY_LOGPROB_FLOOR (-2.3) /* probability 0.1 */
/* Weight of each text's L2-normalised n-gram block against the checks. */
#define KS_VERIFY_TEXT_WEIGHT 0.2

/* What the provider said of the answer's tokens, when it said anything. */
struct ks_logprob_stats {
    bool present;
    double mean;      /* mean token log-probability (<= 0) */
    double min;       /* the lowest token log-probability; NAN: unknown */
    double share_low; /* share of tokens under KS_VERIFY_LOGPROB_FLOOR;
                         NAN: unknown */
};

/* One answer to judge. Every pointer is borrowed for the call; strings are
 * NUL-terminated. */
struct ks_verify_input {
    const char *type;          /* task type; NULL: none */
    const char *prompt;        /* the task's text (input or messages) */
    const char *answer;        /* the answer text as the model gave it */
    const char *finish_reason; /* "stop", "length", "max_tokens", ...;
                                  NULL or "": unknown */
    int64_t max_output_tokens; /* the call's limit; 0: unknown */
    int64_t output_tokens;     /* the answer's tokens; < 0: unknown
                                  (estimated as bytes / 4) */
    /* The type's answer_pattern (PCRE2, config answer_patterns); its first
     * capture group, or the whole match without one, is the final
     * answer. NULL: none configured. */
    const struct ks_rule_re *answer_pattern;
    const char *output_schema; /* the task's JSON Schema text, or NULL */
    struct ks_logprob_stats logprobs;
    bool has_self_report; /* the answer reported its own confidence */
    double self_report;   /* that confidence, in [0,1] */
    bool has_agreement;   /* the tier took k samples (agreement) */
    double agreement;     /* share agreeing with the majority, in [0,1] */
};

/* The checks, in a fixed order (their names are the feature names). */
enum ks_verify_check {
    KS_VC_FORMAT_OK = 0,   /* matches the pattern / passes the schema */
    KS_VC_FORMAT_FAIL,     /* a pattern or schema is set and fails */
    KS_VC_FORMAT_NONE,     /* nothing to check the format against */
    KS_VC_FINAL_FOUND,     /* a final answer could be extracted */
    KS_VC_FINAL_UNIQUE,    /* every extracted final answer agrees */
    KS_VC_FINAL_MULTI,     /* several different final answers */
    KS_VC_FINAL_NUMERIC,   /* the final answer is a number */
    KS_VC_FINAL_NONINT,    /* ... and not an integer */
    KS_VC_FINAL_IS_LAST,   /* it equals the last computed value */
    KS_VC_FINAL_IN_PROMPT, /* it appears among the prompt's numbers */
    KS_VC_ARITH_NONE,      /* no "a op b = c" statement */
    KS_VC_ARITH_ALL_OK,    /* there are some and all recompute */
    KS_VC_ARITH_WRONG,     /* share of them that do not recompute */
    KS_VC_ARITH_COUNT,     /* how many, squashed n / (n + 4) */
    KS_VC_TRUNCATED,       /* finish_reason says the limit cut it */
    KS_VC_REPEAT,          /* share of repeated 8-word shingles */
    KS_VC_REPEAT_LOOP,     /* that share is over 0.3: a loop */
    KS_VC_REFUSAL,         /* refuses or says it cannot */
    KS_VC_HEDGE,           /* hedging words, squashed n / (n + 2) */
    KS_VC_LEN_SHARE,       /* output tokens / limit, capped at 1 */
    KS_VC_LEN_NEAR_LIMIT,  /* within 5% of the limit */
    KS_VC_LEN_LOG,         /* log(1 + bytes) / 10, capped at 1 */
    KS_VC_EMPTY,           /* no answer text */
    KS_VC_NEW_NUMBERS,     /* share of the answer's numbers absent
                              from the prompt */
    KS_VC_NUM_COUNT,       /* the answer's numbers, n / (n + 10) */
    KS_VC_LP_MEAN,         /* exp(mean logprob) */
    KS_VC_LP_MIN,          /* exp(min logprob) */
    KS_VC_LP_LOW_SHARE,    /* share of tokens under the floor */
    KS_VC_SELF_REPORT,     /* the answer's reported confidence */
    KS_VC_PROMPT_UNUSED,   /* share of the prompt's numbers (digits or
                              words) the answer never mentions */
    KS_VC_UNEXPLAINED,     /* share of the answer's numbers over 10 that
                              are neither the prompt's nor a computed
                              result */
    KS_VC_LEN_RATIO,       /* answer bytes / prompt bytes, r / (r + 1) */
    KS_VC_FINAL_FAR,       /* |log10(final / largest prompt number)|,
                              / 4, capped at 1 */
    KS_VC_AGREEMENT,       /* the samples' agreement share */
    KS_VC_COUNT
};

/* The check's feature name ("format_ok", ...); static. */
const char *ks_verify_check_name(enum ks_verify_check c);

/* Computes every check of in into v[KS_VC_COUNT]. Pure; any thread. */
void ks_verify_checks(const struct ks_verify_input *in, double v[KS_VC_COUNT]);

/* The final answer of text as the checks see it (pattern capture, schema
 * JSON "answer" field, an "answer:" / "answer is" / \boxed{} marker, else
 * the last number), copied into out (truncated to out_size - 1). Returns
 * the number of extracted candidates (0: none; > 1 may still agree). */
size_t ks_verify_final_answer(const char *text,
                              const struct ks_rule_re *answer_pattern,
                              char *out,
                              size_t out_size);

/* The final answer text states in the form the task asked for: the
 * capture of the type's answer_pattern, the JSON "answer" field (or sole
 * field) under output_schema, else an answer marker ("the answer is",
 * "answer:", \boxed{}), the last one when there are several; never a
 * guessed last number. Canonical form as ks_verify_final_answer's, into
 * out (truncated to out_size - 1). Returns false (out "") when the text
 * states none. Pure; any thread. */
bool ks_verify_stated_answer(const char *text,
                             const struct ks_rule_re *answer_pattern,
                             const char *output_schema,
                             char *out,
                             size_t out_size);

/* Agreement of k answers to one task (self-consistency): each answer's
 * final answer as ks_verify_final_answer extracts it (with the schema's
 * JSON field when output_schema is set), or its whole trimmed,
 * lower-cased text when none can be extracted. *majority is the index of
 * the last answer of the largest group (ties: the group whose last answer
 * comes last), so a caller that kept only the last reply's details
 * (logprobs) has them whenever the last answer is in the majority.
 * Returns the share of the k answers in that group, in (0, 1]; 0 when k
 * is 0. Pure; any thread. */
double ks_verify_agreement(const char *const *answers,
                           size_t k,
                           const struct ks_rule_re *answer_pattern,
                           const char *output_schema,
                           size_t *majority);

/* The signals a worker may know of an answer that labelled outcomes may
 * lack. A model is trained with the union of its examples' signals and
 * scoring leaves out every signal it was not trained with: an unseen
 * feature has no weight of its own but its hashed bucket (and its
 * crosses with every check) can land on an n-gram's, so a finish reason,
 * an output limit or logprobs the training outcomes did not have would
 * move the score of the same answer between `kascade eval` and a worker
 * (test_verifier_parity). */
enum ks_verify_signal {
    KS_VSIG_LOGPROBS = 1u << 0,    /* logprobs.present */
    KS_VSIG_FINISH = 1u << 1,      /* finish_reason known */
    KS_VSIG_LIMIT = 1u << 2,       /* max_output_tokens known */
    KS_VSIG_SELF_REPORT = 1u << 3, /* has_self_report */
    KS_VSIG_AGREEMENT = 1u << 4,   /* has_agreement */
    KS_VSIG_ALL = (1u << 5) - 1
};

/* The signals in carries. Pure. */
uint32_t ks_verify_input_signals(const struct ks_verify_input *in);
/* The signals m was trained with (KS_VSIG_ALL for a model file written
 * before they were recorded). */
uint32_t ks_verify_model_signals(const struct ks_lr_model *m);

/* Calibrated P(the answer is correct) in [0,1] under a model of kind
 * "verifier"; signals m was not trained with are left out. */
double ks_verify_score(const struct ks_lr_model *m,
                       const struct ks_verify_input *in);
/* Its raw margin (the score is a non-decreasing function of it); the
 * same signals are left out. */
double ks_verify_margin(const struct ks_lr_model *m,
                        const struct ks_verify_input *in);

/* Training: a trainer of kind "verifier" over ks_verify_input examples.
 * o->kind is ignored (set to "verifier"). Returns a trainer the caller
 * owns (ks_lr_trainer_destroy; fit with ks_lr_trainer_fit), or NULL with
 * errstr. */
struct ks_lr_trainer *ks_verify_trainer_new(const struct ks_lr_train_opts *o,
                                            char *errstr,
                                            size_t errstr_size);
/* Adds one labelled answer (correct: the answer was right). Returns 0, or
 * -1 with errstr when t is not a verifier trainer. */
int ks_verify_trainer_add(struct ks_lr_trainer *t,
                          const struct ks_verify_input *in,
                          bool correct,
                          char *errstr,
                          size_t errstr_size);

/*
 * Labelled outcomes (the JSONL of `kascade train --kind verifier` and of
 * `kascade eval`), one task a line:
 *   {"id": "t1",                      optional
 *    "type": "math",                  the task type
 *    "prompt": "...",                 the task's text
 *    "metadata": {"k": "v"},          optional
 *    "max_output_tokens": 1024,       optional, the calls' limit
 *    "output_schema": {...},          optional, the task's schema
 *    "tiers": {                       per tier name, cheapest first
 *      "cheap": {"answer": "...",     the tier's answer text
 *                "correct": true,     was it right (the label)
 *                "input_tokens": 120, "output_tokens": 80,   optional
 *                "cost_usd": 0.0001,  optional (else priced by config)
 *                "latency_ms": 900,   optional
 *                "finish_reason": "stop",                    optional
 *                "logprobs": {"mean": -0.2, "min": -3.1,
 *                             "share_low": 0.05},            optional
 *                "self_report": 0.8,   optional, the answer's own
 *                                      "confidence" in [0,1]
 *                "agreement": 0.67},   optional, the share of k samples
 *                                      agreeing with this answer
 *      "top": {...}}}
 * Field names are the contract; unknown fields are ignored.
 */
struct ks_outcome_tier {
    char *name;   /* owned */
    char *answer; /* owned; "" when absent */
    bool correct;
    bool has_correct;                    /* the line says */
    int64_t input_tokens, output_tokens; /* -1: unknown */
    double cost_usd;                     /* -1: unknown */
    int64_t latency_ms;                  /* -1: unknown */
    char *finish_reason;                 /* owned, or NULL */
    struct ks_logprob_stats logprobs;
    double self_report; /* -1: none */
    double agreement;   /* -1: none */
};

struct ks_outcome {
    char *id;                  /* owned, or NULL */
    char *type;                /* owned; "" when absent */
    char *prompt;              /* owned */
    char *output_schema;       /* owned JSON text, or NULL */
    int64_t max_output_tokens; /* 0: unknown */
    struct ks_outcome_meta {
        char *key, *value; /* owned */
    } * metadata;
    size_t n_metadata;
    struct ks_outcome_tier *tiers; /* in the line's order */
    size_t n_tiers;
};

/* Parses one line's JSON object (root: a cJSON *, passed as void * so
 * callers need not include cJSON here) into o. Returns 0, or -1 with
 * errstr naming the field (o is then empty). Caller finishes o with
 * ks_outcome_fini. */
int ks_outcome_parse(const void *root,
                     struct ks_outcome *o,
                     char *errstr,
                     size_t errstr_size);
void ks_outcome_fini(struct ks_outcome *o);

/* The tier of o named name, or NULL. Borrowed from o. */
const struct ks_outcome_tier *ks_outcome_tier(const struct ks_outcome *o,
                                              const char *name);

/* Fills in from o's tier t (pointers borrowed from o and t; the caller
 * sets answer_pattern for o->type). */
void ks_verify_input_from_outcome(const struct ks_outcome *o,
                                  const struct ks_outcome_tier *t,
                                  struct ks_verify_input *in);

#endif
