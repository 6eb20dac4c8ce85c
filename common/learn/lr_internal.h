/*
 * lr_internal.h - what lr.c (features, scoring), file.c (the model file)
 * and train.c (fitting, calibration) share. Not for callers outside
 * common/learn/. Ownership: a struct ks_lr_model owns its weight and
 * label arrays; ks_lr_destroy frees them.
 */
#ifndef KASCADE_COMMON_LEARN_LR_INTERNAL_H
#define KASCADE_COMMON_LEARN_LR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "learn/lr.h"

enum lr_kind {
    LR_ROUTER = 1,
    LR_TRIAGE = 2,
    LR_VERIFIER = 3, /* binary like a router; label 1: the answer is right */
};

/* Router and verifier models are binary: one vector, labels "0"/"1". */
#define LR_BINARY(kind) ((kind) != LR_TRIAGE)

/* Weights are feature-major: w[bucket * n_vec + k], so one feature's
 * weights for every label sit together. n_vec is 1 for a router. */
struct ks_lr_model {
    enum lr_kind kind;
    unsigned bits;
    size_t n_labels;
    char **labels;
    size_t n_vec;
    float *w;
    double *bias;
    double platt_a, platt_c; /* router: p = sigmoid(a z + c) */
    double temperature;      /* triage: p = softmax(z / t) */
    bool task_features;      /* router: type and metadata are features */
    char **meta_keys;        /* owned; the metadata keys that are */
    size_t n_meta_keys;
    /* verifier: the serve-time signals (verify.h enum ks_verify_signal)
     * some training example carried; scoring leaves the others out. */
    uint32_t signals;
};


/* One non-zero feature value. */
struct lr_feat {
    uint32_t idx;
    float val;
};

/* The type's indicator bucket. */
uint32_t lr_type_bucket(const char *type, unsigned bits);

/* The feature vector of a task (lr.h struct ks_lr_task) under a model
 * with task features: the text's, then the indicators. *out is a heap
 * array the caller frees; returns the count (sorted, merged). */
size_t lr_task_features(const struct ks_lr_task *task,
                        unsigned bits,
                        const char *const *meta_keys,
                        size_t n_meta_keys,
                        struct lr_feat **out);

/* Returns a model with zero weights and identity calibration; takes
 * ownership of labels (n_labels heap strings in a heap array). */
struct ks_lr_model *lr_model_new(enum lr_kind kind,
                                 unsigned bits,
                                 size_t n_labels,
                                 char **labels);

/* The feature vector of text (see lr.h), sorted by bucket, L2-normalised.
 * Returns the count; *out is a heap array the caller frees (also when the
 * count is 0). */
size_t lr_features(const char *text,
                   size_t len,
                   unsigned bits,
                   struct lr_feat **out);

/* lr_features with every hash started from h0 instead of LR_FNV_OFFSET:
 * a separate namespace for each text of one example (verify.c). */
size_t lr_features_from(const char *text,
                        size_t len,
                        unsigned bits,
                        uint64_t h0,
                        struct lr_feat **out);

/* Sorts f by bucket and sums the values of equal buckets. Returns the new
 * count. */
size_t lr_feats_merge(struct lr_feat *f, size_t n);

/* Adds an example given as a feature vector (takes ownership of f, a heap
 * array of n entries, also on failure). Returns 0, or -1 with errstr. */
int lr_trainer_add_feats(struct ks_lr_trainer *t,
                         struct lr_feat *f,
                         size_t n,
                         const char *label,
                         char *errstr,
                         size_t errstr_size);

/* Records that an example of t carried the signals sig (a verifier's
 * enum ks_verify_signal bits); the fitted model keeps their union. */
void lr_trainer_note_signals(struct ks_lr_trainer *t, uint32_t sig);
/* The kind and hash bits of a trainer. */
enum lr_kind lr_trainer_kind(const struct ks_lr_trainer *t);
unsigned lr_trainer_bits(const struct ks_lr_trainer *t);

/* Raw margins z[0..n_vec-1] of a feature vector. */
void lr_margins(const struct ks_lr_model *m,
                const struct lr_feat *f,
                size_t n,
                double *z);

/* FNV-1a 64 of data, continuing from h (LR_FNV_OFFSET to start). */
#define LR_FNV_OFFSET 0xcbf29ce484222325ULL
#define LR_FNV_PRIME  0x100000001b3ULL
uint64_t lr_fnv1a(uint64_t h, const void *data, size_t len);

double lr_sigmoid(double x);

/* p[k] = softmax(z / t)[k] for k < n. */
void lr_softmax(const double *z, size_t n, double t, double *p);

/* calibrate.c. Triage: 1/t of temperature scaling on the held-out
 * margins z (K per example) with labels y. */
double lr_fit_temperature(const double *z, const size_t *y, size_t n, size_t K);
/* Router and verifier: Platt, or the temperature fallback when Platt
 * collapses, into m->platt_a / platt_c, with rep->calibration and
 * rep->platt_fitted_a set. Returns 0, or -1 with errstr when the score
 * would be constant whatever the calibration (every margin of zall[0..
 * n_all) is the same). */
int lr_calibrate_binary(struct ks_lr_model *m,
                        const double *zh,
                        const size_t *yh,
                        size_t n_hold,
                        const double *zall,
                        size_t n_all,
                        struct ks_lr_report *rep,
                        char *errstr,
                        size_t errstr_size);

/* Calibrated P(label 1) of a router margin. */
double lr_router_prob(const struct ks_lr_model *m, double z);

#endif
