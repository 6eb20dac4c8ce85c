/*
 * lr.h - hashed n-gram logistic regression: the router's learned
 * difficulty score (kind "router") and the workers' triage classifier
 * (kind "triage"), both trained by `kascade train`.
 *
 * Features of a text (the first KS_LR_MAX_TEXT bytes; the rest is ignored):
 * ASCII is lower-cased; words are maximal runs of ASCII letters and digits
 * and bytes >= 0x80 (UTF-8 is kept whole); the features are every word, every
 * pair of adjacent words, and every byte 3-, 4- and 5-gram of the text with
 * runs of other bytes folded to one space and a space added at each end.
 * Each feature is hashed with FNV-1a 64 (offset basis 0xcbf29ce484222325,
 * prime 0x100000001b3) over a one-byte namespace ('w' word, 'b' bigram, 'c'
 * character n-gram) followed by its bytes (a bigram is "w1 w2"); its bucket
 * is (h ^ (h >> 32)) & (2^bits - 1). A bucket's value is 1 + ln(count) and
 * the vector is L2-normalised; a bias term is added to it.
 *
 * Router: one weight vector; margin z = w.x + b; the calibrated probability
 * that the cheaper tier fails is sigmoid(A z + C) (Platt scaling, A > 0;
 * when Platt collapses to a slope <= 0 or a constant score, temperature
 * scaling, C = 0, and the report says so; a model whose score would be
 * constant anyway is refused). Verifier (verify.h): the same, over the
 * verifier's features, label 1 meaning the answer is right.
 * Triage: one weight vector per label; probabilities are softmax(z / T)
 * (temperature scaling, T > 0), which keeps the arg-max of the raw model.
 * Both calibrations are fitted on a held-out part of the training data; see
 * common/learn/train.c.
 *
 * Ownership: ks_lr_load and ks_lr_trainer_fit return a model the caller
 * owns (ks_lr_destroy); a trainer is the caller's (ks_lr_trainer_destroy)
 * and keeps what it needs of each example (features, label), so the
 * caller's buffers are borrowed only for the call.
 *
 * A loaded model is read-only: every query function is safe from any number
 * of threads at once. Queries allocate a scratch buffer sized by the
 * (capped) text and abort with a log line when memory is gone.
 */
#ifndef KASCADE_COMMON_LEARN_LR_H
#define KASCADE_COMMON_LEARN_LR_H

#include <stddef.h>
#include <stdint.h>

#include "wire/codec.h"

/* Bytes of a text that are looked at; the rest does not change a score. */
#define KS_LR_MAX_TEXT 32768
/* Hash bits: 2^bits buckets per label. */
#define KS_LR_MIN_BITS     8
#define KS_LR_MAX_BITS     24
#define KS_LR_DEFAULT_BITS 18
/* Triage labels: at most this many, each 1..KS_LR_MAX_LABEL_LEN bytes. */
#define KS_LR_MAX_LABELS    256
#define KS_LR_MAX_LABEL_LEN 255
/* labels * 2^bits may not exceed this (a 128 MiB weight table). */
#define KS_LR_MAX_WEIGHTS (1u << 25)

struct ks_lr_model;

/* Returns a new model the caller owns, or NULL with errstr (bad magic,
 * unsupported version, truncated, sizes over the caps above, bad checksum,
 * non-finite numbers). Read-only after load: safe from any thread. */
struct ks_lr_model *ks_lr_load(const char *path,
                               char *errstr,
                               size_t errstr_size);
void ks_lr_destroy(struct ks_lr_model *m);           /* accepts NULL */
const char *ks_lr_kind(const struct ks_lr_model *m); /* "router"/"triage" */
/* Router kind: calibrated probability in [0,1] that the cheaper tier
 * fails. On a triage model: the probability of its most likely label. */
double ks_lr_score(const struct ks_lr_model *m, const char *text, size_t len);
/* Triage kind: index of the most likely label, its calibrated probability
 * in *prob (prob may be NULL). On a router model: 1 when the score is at
 * least 0.5 (label "1", the cheaper tier fails), else 0 (label "0"). */
int ks_lr_classify(const struct ks_lr_model *m,
                   const char *text,
                   size_t len,
                   double *prob);
/* Router: 2 ("0", "1"). Triage: the labels in byte order. */
size_t ks_lr_n_labels(const struct ks_lr_model *m);
/* Borrowed, valid until ks_lr_destroy; NULL when i is out of range. */
const char *ks_lr_label(const struct ks_lr_model *m, size_t i);
/* Hash bits of the model. */
unsigned ks_lr_bits(const struct ks_lr_model *m);

/* Router kind: the raw margin z before calibration (ks_lr_score is a
 * non-decreasing function of it); for ranking ties and for tests. On a
 * triage model: the largest raw class margin. */
double ks_lr_margin(const struct ks_lr_model *m, const char *text, size_t len);

/* A router model's view of a task: its text, type and metadata. A model
 * trained with task features (ks_lr_trainer_add_task with a type or
 * metadata) adds to the text's features, unnormalised, the indicator
 * "type=<type>" (FNV-1a over 'y' + type) and, for each metadata key the
 * model was trained with (ks_lr_train_opts.meta_keys, kept in the model
 * file) that the task has, "<key>=<value>" ('m' + key + NUL + value). A
 * model without task features scores the text alone. All borrowed. */
struct ks_lr_task {
    const char *type; /* NULL: none */
    const struct ks_kv *meta;
    size_t n_meta;
    const char *text;
    size_t len;
};

/* Router kind: the calibrated P(cheaper tier fails) of a task. */
double ks_lr_score_task(const struct ks_lr_model *m,
                        const struct ks_lr_task *task);
/* Its raw margin. */
double ks_lr_margin_task(const struct ks_lr_model *m,
                         const struct ks_lr_task *task);
/* Does the model use the task's type and metadata? */
int ks_lr_has_task_features(const struct ks_lr_model *m);

/* Writes m to path (through path.tmp and a rename). Returns 0, or -1 with
 * errstr. */
int ks_lr_save(const struct ks_lr_model *m,
               const char *path,
               char *errstr,
               size_t errstr_size);

/*
 * Training. A trainer collects labelled texts, then fits a model:
 *   ks_lr_train_opts_init(&o); o.kind = "triage";
 *   t = ks_lr_trainer_new(&o, err, sizeof(err));
 *   ks_lr_trainer_add(t, text, len, "billing", err, sizeof(err)); ...
 *   m = ks_lr_trainer_fit(t, &report, err, sizeof(err));
 *   ks_lr_trainer_destroy(t);
 * Not thread-safe; deterministic: the same examples in the same order with
 * the same options give the same model, byte for byte.
 */
struct ks_lr_train_opts {
    const char *kind; /* "router" (labels "0"/"1") or "triage" */
    unsigned bits;    /* KS_LR_DEFAULT_BITS */
    unsigned epochs;  /* 10 */
    double holdout;   /* 0.2: share held out for calibration and report */
    uint64_t seed;    /* 1: split and per-epoch shuffles */
    double lr;        /* 0.5: AdaGrad base learning rate */
    double l2;        /* 1e-5: L2 penalty per example on present features */
    /* Router: the metadata keys that are features (at most
     * KS_LR_MAX_META_KEYS, each 1..KS_LR_MAX_LABEL_LEN bytes); borrowed
     * until the trainer is destroyed. */
    const char *const *meta_keys;
    size_t n_meta_keys;
};

#define KS_LR_MAX_META_KEYS 16

/* Fills o with the defaults above. */
void ks_lr_train_opts_init(struct ks_lr_train_opts *o);

struct ks_lr_trainer;

/* Returns a trainer the caller owns, or NULL with errstr on bad options. */
struct ks_lr_trainer *ks_lr_trainer_new(const struct ks_lr_train_opts *o,
                                        char *errstr,
                                        size_t errstr_size);
void ks_lr_trainer_destroy(struct ks_lr_trainer *t); /* accepts NULL */

/* Adds one example (text is copied as features). Router labels are "0"
 * (cheaper tier succeeds) and "1" (it fails). Returns 0, or -1 with errstr
 * (bad label, too many labels). */
int ks_lr_trainer_add(struct ks_lr_trainer *t,
                      const char *text,
                      size_t len,
                      const char *label,
                      char *errstr,
                      size_t errstr_size);

/* Router kind: adds a task (text, type, metadata: see struct
 * ks_lr_task). A model fitted on examples with a type starts from the
 * per-type error-rate prior: the bias at the training part's logit of
 * failure, each type's weight at its own smoothed rate's logit minus
 * that ((failures + 2 p) / (n + 2), p the overall rate). Returns 0, or -1
 * with errstr. */
int ks_lr_trainer_add_task(struct ks_lr_trainer *t,
                           const struct ks_lr_task *task,
                           const char *label,
                           char *errstr,
                           size_t errstr_size);

/* Examples added so far. */
size_t ks_lr_trainer_count(const struct ks_lr_trainer *t);

#define KS_LR_CAL_BINS 10

/* What the fit measured on the held-out part (n_holdout may be 0, then
 * the figures are 0 and calibration is the identity). Router bins hold
 * P(label 1) against the observed share of 1s; triage bins hold the top
 * label's probability against the share of correct answers. */
struct ks_lr_report {
    size_t n_train, n_holdout;
    double train_accuracy;   /* on the training part, calibrated model */
    double holdout_accuracy; /* share of correct arg-max answers */
    double holdout_base;     /* accuracy of always answering the majority */
    double logloss_raw;      /* held-out mean log loss before calibration */
    double logloss_cal;      /* and after */
    double platt_a, platt_c; /* router, verifier: as kept in the model */
    double temperature;      /* triage */
    /* "platt"; "temperature" (triage, or a binary model whose Platt fit
     * collapsed: then platt_a = 1/T, platt_c = 0); "none" (nothing held
     * out). Static. */
    const char *calibration;
    double platt_fitted_a; /* binary: the slope Platt found (<= 0 or a
                              constant score: it collapsed) */
    struct {
        size_t count;
        double mean_pred, observed;
    } bins[KS_LR_CAL_BINS]; /* bin i holds predictions in [i/10, (i+1)/10) */
};

/* Fits a model on the examples. Returns a model the caller owns (free with
 * ks_lr_destroy) and fills *report (may be NULL), or NULL with errstr
 * (no examples, only one triage label, a binary model whose calibrated
 * score would be constant). The trainer may be fitted again. */
struct ks_lr_model *ks_lr_trainer_fit(struct ks_lr_trainer *t,
                                      struct ks_lr_report *report,
                                      char *errstr,
                                      size_t errstr_size);

#endif
