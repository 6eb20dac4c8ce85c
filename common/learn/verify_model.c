/*
 * verify_model.c - the verifier's feature vector, scoring and training
 * (verify.h). The vector joins, in one hashed space of 2^bits buckets:
 * each non-zero check as feature 'k' + name, and again crossed with the
 * task type ('t' + type + '\0' + name) so a type can weigh a check its own
 * way; each pair of non-zero checks ('x' + name + '\0' + name, the
 * product of their values); the type itself ('y' + type); and the n-grams of
 * the prompt and of the answer (lr.h's feature set, hashes started from "P" and
 * "A"), each block L2-normalised and scaled by KS_VERIFY_TEXT_WEIGHT (0.2: on
 * the GSM8K outcomes 0.15-0.25 ranked best, 0.5 and 1 over-fitted the n-grams).
 * The checks are not normalised: an indicator keeps its weight whatever the
 * text length.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "learn/lr_internal.h"
#include "learn/verify.h"

#include "base/banned.h"

static uint32_t feat_bucket(char ns,
                            const char *a,
                            const char *b,
                            uint32_t mask)
{
    uint64_t h = lr_fnv1a(LR_FNV_OFFSET, &ns, 1);

    h = lr_fnv1a(h, a, strlen(a));
    if (b) {
        h = lr_fnv1a(h, "", 1);
        h = lr_fnv1a(h, b, strlen(b));
    }
    return (uint32_t)(h ^ (h >> 32)) & mask;
}

/* Appends the n-grams of text, hashed from ns, scaled. */
static size_t add_text(
    struct lr_feat **f, size_t n, const char *text, char ns, unsigned bits)
{
    struct lr_feat *t;
    size_t len = text ? strlen(text) : 0;
    size_t nt = lr_features_from(text ? text : "", len, bits,
                                 lr_fnv1a(LR_FNV_OFFSET, &ns, 1), &t);

    *f = ks_xrealloc(*f, (n + nt + 1) * sizeof(**f));
    for (size_t i = 0; i < nt; i++) {
        (*f)[n + i].idx = t[i].idx;
        (*f)[n + i].val = (float)(t[i].val * KS_VERIFY_TEXT_WEIGHT);
    }
    free(t);
    return n + nt;
}

/* Every pair of non-zero checks as one more feature ('x' + both names)
 * with the product of their values: a linear model cannot see "the
 * format is right but the arithmetic is not" otherwise. Appends to f
 * (room for KS_VC_COUNT^2 / 2 more); returns the new count. */
static size_t add_crosses(struct lr_feat *f,
                          size_t n,
                          const double *v,
                          uint32_t mask)
{
    for (int a = 0; a < KS_VC_COUNT; a++) {
        for (int b = a + 1; b < KS_VC_COUNT && v[a] != 0; b++) {
            if (v[b] == 0) {
                continue;
            }
            f[n].idx = feat_bucket(
                'x', ks_verify_check_name((enum ks_verify_check)a),
                ks_verify_check_name((enum ks_verify_check)b), mask);
            f[n++].val = (float)(v[a] * v[b]);
        }
    }
    return n;
}

/* The feature vector of in (a heap array the caller frees); returns its
 * length. */
static size_t verify_features(const struct ks_verify_input *in,
                              unsigned bits,
                              struct lr_feat **out)
{
    uint32_t mask = (uint32_t)((1ULL << bits) - 1);
    const char *type = in->type && in->type[0] ? in->type : NULL;
    struct lr_feat *f = ks_xmalloc(
        (2 * KS_VC_COUNT + KS_VC_COUNT * KS_VC_COUNT / 2 + 1) * sizeof(*f));
    double v[KS_VC_COUNT];
    size_t n = 0;

    ks_verify_checks(in, v);
    for (int c = 0; c < KS_VC_COUNT; c++) {
        const char *name = ks_verify_check_name((enum ks_verify_check)c);

        if (v[c] == 0) {
            continue;
        }
        f[n].idx = feat_bucket('k', name, NULL, mask);
        f[n++].val = (float)v[c];
        if (type) {
            f[n].idx = feat_bucket('t', type, name, mask);
            f[n++].val = (float)v[c];
        }
    }
    n = add_crosses(f, n, v, mask);
    if (type) {
        f[n].idx = feat_bucket('y', type, NULL, mask);
        f[n++].val = 1;
    }
    n = add_text(&f, n, in->prompt, 'P', bits);
    n = add_text(&f, n, in->answer, 'A', bits);
    *out = f;
    return lr_feats_merge(f, n);
}

uint32_t ks_verify_input_signals(const struct ks_verify_input *in)
{
    return (in->logprobs.present ? KS_VSIG_LOGPROBS : 0) |
           (in->finish_reason && in->finish_reason[0] ? KS_VSIG_FINISH : 0) |
           (in->max_output_tokens > 0 ? KS_VSIG_LIMIT : 0) |
           (in->has_self_report ? KS_VSIG_SELF_REPORT : 0) |
           (in->has_agreement ? KS_VSIG_AGREEMENT : 0);
}

uint32_t ks_verify_model_signals(const struct ks_lr_model *m)
{
    return m->signals;
}

/* in without the signals outside sig (a copy; pointers still borrowed). */
static struct ks_verify_input only_signals(const struct ks_verify_input *in,
                                           uint32_t sig)
{
    struct ks_verify_input r = *in;

    if (!(sig & KS_VSIG_LOGPROBS)) {
        r.logprobs.present = false;
    }
    if (!(sig & KS_VSIG_FINISH)) {
        r.finish_reason = NULL;
    }
    if (!(sig & KS_VSIG_LIMIT)) {
        r.max_output_tokens = 0;
    }
    if (!(sig & KS_VSIG_SELF_REPORT)) {
        r.has_self_report = false;
    }
    if (!(sig & KS_VSIG_AGREEMENT)) {
        r.has_agreement = false;
    }
    return r;
}

double ks_verify_margin(const struct ks_lr_model *m,
                        const struct ks_verify_input *in)
{
    struct ks_verify_input used = only_signals(in, m->signals);
    struct lr_feat *f;
    size_t n = verify_features(&used, m->bits, &f);
    double z;

    lr_margins(m, f, n, &z);
    free(f);
    return z;
}

double ks_verify_score(const struct ks_lr_model *m,
                       const struct ks_verify_input *in)
{
    return lr_router_prob(m, ks_verify_margin(m, in));
}

struct ks_lr_trainer *ks_verify_trainer_new(const struct ks_lr_train_opts *o,
                                            char *errstr,
                                            size_t errstr_size)
{
    struct ks_lr_train_opts vo = *o;

    vo.kind = "verifier";
    return ks_lr_trainer_new(&vo, errstr, errstr_size);
}

int ks_verify_trainer_add(struct ks_lr_trainer *t,
                          const struct ks_verify_input *in,
                          bool correct,
                          char *errstr,
                          size_t errstr_size)
{
    struct lr_feat *f;
    size_t n;

    if (lr_trainer_kind(t) != LR_VERIFIER) {
        snprintf(errstr, errstr_size, "not a verifier trainer");
        return -1;
    }
    lr_trainer_note_signals(t, ks_verify_input_signals(in));
    n = verify_features(in, lr_trainer_bits(t), &f);
    return lr_trainer_add_feats(t, f, n, correct ? "1" : "0", errstr,
                                errstr_size);
}
