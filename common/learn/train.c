/*
 * train.c - fitting the hashed n-gram models of lr.h.
 *
 * Split: the examples are shuffled with the seed (splitmix64 and
 * Fisher-Yates) and the first round(holdout * n) of them, at most n - 1,
 * are held out; the rest are the training part.
 *
 * Training: logistic (router) or softmax (triage) loss, AdaGrad on each
 * example in turn, a fresh seeded shuffle of the training part every epoch.
 * The L2 penalty is applied lazily: to the weights of the features present
 * in the example being learnt (the bias is not penalised). Weights are
 * float32 during training as in the model, so what is measured here is
 * what the router will see.
 *
 * Calibration on the held-out margins (identity when nothing is held out):
 * - router and verifier: Platt scaling, p = sigmoid(a z + c), fitted by
 *   Newton's method on Platt's smoothed targets ((N+ + 1) / (N+ + 2) and
 *   1 / (N- + 2)). Platt collapses when the held-out part does not rank
 *   the way the model does: its slope comes out <= 0 (or so small that
 *   the calibrated score is constant over the held-out margins), and a
 *   constant score is one no threshold can split (issue 11: 2 of 5 GSM8K
 *   fits). Then the fit falls back to temperature scaling, p = sigmoid(z /
 *   T) (a = 1/T, c = 0), with 1/T the least held-out log loss on [0.05,
 *   20], which keeps the model's ranking; the report says so. When even
 *   that is constant (every raw margin the same) the fit is refused.
 * - triage: temperature scaling, p = softmax(z / t), with 1/t chosen by
 *   golden-section search on [0.05, 20] for the least held-out log loss
 *   (the loss is convex in 1/t). One parameter cannot over-fit a small
 *   held-out part, and it never changes which label wins.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "learn/lr.h"
#include "learn/lr_internal.h"

#include "base/banned.h"

struct example {
    struct lr_feat *f;
    size_t n;
    size_t label; /* index into trainer labels (insertion order) */
};

struct ks_lr_trainer {
    struct ks_lr_train_opts o;
    enum lr_kind kind;
    struct example *ex;
    size_t n_ex, cap_ex;
    char **labels; /* insertion order */
    size_t n_labels;
};

void ks_lr_train_opts_init(struct ks_lr_train_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->kind = "router";
    o->bits = KS_LR_DEFAULT_BITS;
    o->epochs = 10;
    o->holdout = 0.2;
    o->seed = 1;
    o->lr = 0.5;
    o->l2 = 1e-5;
}

struct ks_lr_trainer *ks_lr_trainer_new(const struct ks_lr_train_opts *o,
                                        char *errstr,
                                        size_t errstr_size)
{
    struct ks_lr_trainer *t;
    enum lr_kind kind;

    if (o->kind && strcmp(o->kind, "router") == 0) {
        kind = LR_ROUTER;
    } else if (o->kind && strcmp(o->kind, "triage") == 0) {
        kind = LR_TRIAGE;
    } else if (o->kind && strcmp(o->kind, "verifier") == 0) {
        kind = LR_VERIFIER;
    } else {
        snprintf(errstr, errstr_size,
                 "kind must be router, triage or verifier");
        return NULL;
    }
    if (o->bits < KS_LR_MIN_BITS || o->bits > KS_LR_MAX_BITS) {
        snprintf(errstr, errstr_size, "bits must be in [%d, %d]",
                 KS_LR_MIN_BITS, KS_LR_MAX_BITS);
        return NULL;
    }
    if (o->epochs < 1 || o->epochs > 1000) {
        snprintf(errstr, errstr_size, "epochs must be in [1, 1000]");
        return NULL;
    }
    if (!(o->holdout >= 0 && o->holdout < 1)) {
        snprintf(errstr, errstr_size, "holdout must be in [0, 1)");
        return NULL;
    }
    if (!(o->lr > 0 && o->lr < 100) || !(o->l2 >= 0 && o->l2 < 1)) {
        snprintf(errstr, errstr_size, "lr must be in (0, 100), l2 in [0, 1)");
        return NULL;
    }
    t = ks_xcalloc(1, sizeof(*t));
    t->o = *o;
    t->o.kind = kind == LR_ROUTER     ? "router"
                : kind == LR_VERIFIER ? "verifier"
                                      : "triage";
    t->kind = kind;
    if (LR_BINARY(kind)) {
        t->labels = ks_xcalloc(2, sizeof(*t->labels));
        t->labels[0] = ks_xstrdup("0");
        t->labels[1] = ks_xstrdup("1");
        t->n_labels = 2;
    }
    return t;
}

void ks_lr_trainer_destroy(struct ks_lr_trainer *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->n_ex; i++) {
        free(t->ex[i].f);
    }
    for (size_t i = 0; i < t->n_labels; i++) {
        free(t->labels[i]);
    }
    free(t->labels);
    free(t->ex);
    free(t);
}

size_t ks_lr_trainer_count(const struct ks_lr_trainer *t)
{
    return t->n_ex;
}

enum lr_kind lr_trainer_kind(const struct ks_lr_trainer *t)
{
    return t->kind;
}

unsigned lr_trainer_bits(const struct ks_lr_trainer *t)
{
    return t->o.bits;
}

int ks_lr_trainer_add(struct ks_lr_trainer *t,
                      const char *text,
                      size_t len,
                      const char *label,
                      char *errstr,
                      size_t errstr_size)
{
    struct lr_feat *f;
    size_t n;

    if (t->kind == LR_VERIFIER) {
        snprintf(errstr, errstr_size,
                 "a verifier learns from answers (verify.h), not texts");
        return -1;
    }
    n = lr_features(text, len, t->o.bits, &f);
    return lr_trainer_add_feats(t, f, n, label, errstr, errstr_size);
}

int lr_trainer_add_feats(struct ks_lr_trainer *t,
                         struct lr_feat *f,
                         size_t n,
                         const char *label,
                         char *errstr,
                         size_t errstr_size)
{
    size_t li, ll = label ? strlen(label) : 0;
    struct example *e;

    for (li = 0; li < t->n_labels; li++) {
        if (strcmp(t->labels[li], label ? label : "") == 0) {
            break;
        }
    }
    if (li == t->n_labels) {
        if (LR_BINARY(t->kind)) {
            snprintf(errstr, errstr_size, "a %s label must be 0 or 1",
                     t->o.kind);
            goto out_free;
        }
        if (ll == 0 || ll > KS_LR_MAX_LABEL_LEN ||
            t->n_labels >= KS_LR_MAX_LABELS) {
            snprintf(errstr, errstr_size,
                     "labels must be 1..%d bytes, at most %d of them",
                     KS_LR_MAX_LABEL_LEN, KS_LR_MAX_LABELS);
            goto out_free;
        }
        if (((uint64_t)t->n_labels + 1) << t->o.bits > KS_LR_MAX_WEIGHTS) {
            snprintf(errstr, errstr_size,
                     "%zu labels x 2^%u buckets is over the weight cap; "
                     "use fewer bits",
                     t->n_labels + 1, t->o.bits);
            goto out_free;
        }
        t->labels =
            ks_xrealloc(t->labels, (t->n_labels + 1) * sizeof(*t->labels));
        t->labels[t->n_labels++] = ks_xstrdup(label);
    }
    if (t->n_ex == t->cap_ex) {
        t->cap_ex = t->cap_ex ? 2 * t->cap_ex : 64;
        t->ex = ks_xrealloc(t->ex, t->cap_ex * sizeof(*t->ex));
    }
    e = &t->ex[t->n_ex++];
    e->f = f;
    e->n = n;
    e->label = li;
    return 0;

out_free:
    free(f);
    return -1;
}

/* ---- the fit ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void shuffle(size_t *v, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix(s) % i), x = v[i - 1];

        v[i - 1] = v[j];
        v[j] = x;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One AdaGrad step on example e with target class y (router: y is 0/1). */
static void sgd_step(struct ks_lr_model *m,
                     float *g2,
                     double *g2b,
                     const struct example *e,
                     size_t y,
                     const struct ks_lr_train_opts *o,
                     double *z,
                     double *p)
{
    size_t K = m->n_vec;

    lr_margins(m, e->f, e->n, z);
    if (LR_BINARY(m->kind)) {
        p[0] = lr_sigmoid(z[0]) - (double)y;
    } else {
        lr_softmax(z, K, 1, p);
        p[y] -= 1;
    }
    /* p now holds dloss/dz for each vector */
    for (size_t k = 0; k < K; k++) {
        g2b[k] += p[k] * p[k];
        m->bias[k] -= o->lr * p[k] / (sqrt(g2b[k]) + 1e-8);
    }
    for (size_t i = 0; i < e->n; i++) {
        size_t base = (size_t)e->f[i].idx * K;

        for (size_t k = 0; k < K; k++) {
            float *w = &m->w[base + k];
            double g = p[k] * e->f[i].val + o->l2 * *w;

            g2[base + k] += (float)(g * g);
            *w -= (float)(o->lr * g / (sqrt((double)g2[base + k]) + 1e-8));
        }
    }
}

/* Platt scaling on margins z[] with 0/1 labels y[]; a >= 0. */
static void fit_platt(
    const double *z, const size_t *y, size_t n, double *a_out, double *c_out)
{
    double npos = 0, a = 0, c, tp, tn, prev = INFINITY;

    for (size_t i = 0; i < n; i++) {
        npos += (double)y[i];
    }
    tp = (npos + 1) / (npos + 2);
    tn = 1 / (n - npos + 2);
    c = log((npos + 1) / (n - npos + 1));
    for (int it = 0; it < 100; it++) {
        double ga = 0, gc = 0, haa = 1e-9, hac = 0, hcc = 1e-9, det, da, dc;
        double step = 1, loss = 0;

        for (size_t i = 0; i < n; i++) {
            double p = lr_sigmoid(a * z[i] + c), t = y[i] ? tp : tn;
            double d = p - t, w = p * (1 - p);

            ga += d * z[i];
            gc += d;
            haa += w * z[i] * z[i];
            hac += w * z[i];
            hcc += w;
        }
        det = haa * hcc - hac * hac;
        if (!(fabs(det) > 1e-300)) {
            break;
        }
        da = (hcc * ga - hac * gc) / det;
        dc = (haa * gc - hac * ga) / det;
        /* Backtrack until the loss goes down. */
        for (; step > 1e-10; step /= 2) {
            double na = a - step * da, nc = c - step * dc;

            loss = 0;
            for (size_t i = 0; i < n; i++) {
                double q = na * z[i] + nc, t = y[i] ? tp : tn;

                /* -t log s(q) - (1-t) log(1-s(q)), stably */
                loss += (q > 0 ? q : 0) + log1p(exp(-fabs(q))) - t * q;
            }
            if (loss <= prev) {
                a = na;
                c = nc;
                break;
            }
        }
        if (step <= 1e-10 || prev - loss < 1e-12 * (1 + fabs(loss))) {
            break;
        }
        prev = loss;
    }
    if (!(a >= 0) || !isfinite(a) || !isfinite(c)) {
        a = 0;
        c = log(tp * npos + tn * (n - npos)) -
            log(n - (tp * npos + tn * (n - npos)));
    }
    *a_out = a;
    *c_out = c;
}

/* Held-out softmax log loss at inverse temperature beta. */
static double nll_temp(
    const double *z, const size_t *y, size_t n, size_t K, double beta)
{
    double loss = 0;

    for (size_t i = 0; i < n; i++) {
        const double *zi = z + i * K;
        double max = zi[0], s = 0;

        for (size_t k = 1; k < K; k++) {
            max = zi[k] > max ? zi[k] : max;
        }
        for (size_t k = 0; k < K; k++) {
            s += exp(beta * (zi[k] - max));
        }
        loss += log(s) - beta * (zi[y[i]] - max);
    }
    return loss;
}

static double fit_temperature(const double *z,
                              const size_t *y,
                              size_t n,
                              size_t K)
{
    const double g = (sqrt(5.0) - 1) / 2;
    double lo = 0.05, hi = 20, x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    double f1 = nll_temp(z, y, n, K, x1), f2 = nll_temp(z, y, n, K, x2);

    for (int it = 0; it < 80; it++) {
        if (f1 <= f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = nll_temp(z, y, n, K, x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = nll_temp(z, y, n, K, x2);
        }
    }
    return 1 / ((lo + hi) / 2);
}

/* Held-out log loss of p = sigmoid(beta z) (targets 0/1). */
static double nll_binary(const double *z,
                         const size_t *y,
                         size_t n,
                         double beta)
{
    double loss = 0;

    for (size_t i = 0; i < n; i++) {
        double q = beta * z[i];

        loss += (q > 0 ? q : 0) + log1p(exp(-fabs(q))) - (double)y[i] * q;
    }
    return loss;
}

/* The 1/T of binary temperature scaling: golden-section search on
 * [0.05, 20] (the loss is convex in beta). */
static double fit_beta(const double *z, const size_t *y, size_t n)
{
    const double g = (sqrt(5.0) - 1) / 2;
    double lo = 0.05, hi = 20, x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    double f1 = nll_binary(z, y, n, x1), f2 = nll_binary(z, y, n, x2);

    for (int it = 0; it < 80; it++) {
        if (f1 <= f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = nll_binary(z, y, n, x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = nll_binary(z, y, n, x2);
        }
    }
    return (lo + hi) / 2;
}

/* Spread of sigmoid(a z + c) over the margins z[0..n). */
static double prob_spread(const double *z, size_t n, double a, double c)
{
    double lo = 1, hi = 0;

    for (size_t i = 0; i < n; i++) {
        double p = lr_sigmoid(a * z[i] + c);

        lo = p < lo ? p : lo;
        hi = p > hi ? p : hi;
    }
    return n ? hi - lo : 0;
}

/* A calibrated score that tells nothing apart. */
#define LR_MIN_SPREAD 1e-6

/* Calibrates a binary model on the held-out margins zh (Platt, or the
 * temperature fallback), recording what was done in rep. Returns 0, or -1
 * with errstr when the score would be constant whatever the calibration:
 * the raw margins of every example (zall, n_all) are the same. */
static int calibrate_binary(struct ks_lr_model *m,
                            const double *zh,
                            const size_t *yh,
                            size_t n_hold,
                            const double *zall,
                            size_t n_all,
                            struct ks_lr_report *rep,
                            char *errstr,
                            size_t errstr_size)
{
    double a, c;

    fit_platt(zh, yh, n_hold, &a, &c);
    rep->platt_fitted_a = a;
    if (a > 0 && prob_spread(zh, n_hold, a, c) > LR_MIN_SPREAD) {
        m->platt_a = a;
        m->platt_c = c;
        rep->calibration = "platt";
        return 0;
    }
    m->platt_a = fit_beta(zh, yh, n_hold);
    m->platt_c = 0;
    rep->calibration = "temperature";
    if (prob_spread(zall, n_all, m->platt_a, 0) > LR_MIN_SPREAD) {
        return 0;
    }
    snprintf(errstr, errstr_size,
             "the calibrated score is constant (every raw margin is the "
             "same, Platt slope %.4g): the model cannot tell the "
             "examples apart; no model written",
             a);
    return -1;
}

/* Calibrated class probabilities p[K] (router: p[0] = P(0), p[1] = P(1)). */
static void probs(const struct ks_lr_model *m,
                  const double *z,
                  double *p,
                  bool raw)
{
    if (LR_BINARY(m->kind)) {
        p[1] = raw ? lr_sigmoid(z[0]) : lr_router_prob(m, z[0]);
        p[0] = 1 - p[1];
    } else {
        lr_softmax(z, m->n_vec, raw ? 1 : m->temperature, p);
    }
}

static size_t argmax(const double *p, size_t n)
{
    size_t best = 0;

    for (size_t k = 1; k < n; k++) {
        best = p[k] > p[best] ? k : best;
    }
    return best;
}

/* Fills the held-out part of the report; z holds n_vec margins per
 * held-out example. */
static void report_holdout(const struct ks_lr_model *m,
                           const double *z,
                           const size_t *y,
                           size_t n,
                           size_t majority,
                           struct ks_lr_report *rep)
{
    size_t K = m->n_vec, L = m->n_labels, right = 0, base = 0;
    double *p = ks_xmalloc(L * sizeof(*p));
    double sum_pred[KS_LR_CAL_BINS] = {0}, sum_obs[KS_LR_CAL_BINS] = {0};

    for (size_t i = 0; i < n; i++) {
        size_t best, bin;
        double pb, obs;

        probs(m, z + i * K, p, true);
        rep->logloss_raw -= log(fmax(p[y[i]], 1e-15));
        probs(m, z + i * K, p, false);
        rep->logloss_cal -= log(fmax(p[y[i]], 1e-15));
        best = LR_BINARY(m->kind) ? (p[1] >= 0.5) : argmax(p, L);
        right += best == y[i];
        base += majority == y[i];
        /* router: P(1) against 1s; triage: top probability against hits */
        pb = LR_BINARY(m->kind) ? p[1] : p[best];
        obs = LR_BINARY(m->kind) ? (double)y[i] : (double)(best == y[i]);
        bin = (size_t)(pb * KS_LR_CAL_BINS);
        bin = bin >= KS_LR_CAL_BINS ? KS_LR_CAL_BINS - 1 : bin;
        rep->bins[bin].count++;
        sum_pred[bin] += pb;
        sum_obs[bin] += obs;
    }
    for (size_t b = 0; b < KS_LR_CAL_BINS; b++) {
        if (rep->bins[b].count) {
            rep->bins[b].mean_pred = sum_pred[b] / (double)rep->bins[b].count;
            rep->bins[b].observed = sum_obs[b] / (double)rep->bins[b].count;
        }
    }
    if (n) {
        rep->holdout_accuracy = (double)right / (double)n;
        rep->holdout_base = (double)base / (double)n;
        rep->logloss_raw /= (double)n;
        rep->logloss_cal /= (double)n;
    }
    free(p);
}

struct ks_lr_model *ks_lr_trainer_fit(struct ks_lr_trainer *t,
                                      struct ks_lr_report *report,
                                      char *errstr,
                                      size_t errstr_size)
{
    size_t n = t->n_ex, n_hold, L = t->n_labels, K, *order, *remap, *yh;
    size_t *count, majority = 0, right = 0;
    char **labels;
    struct ks_lr_model *m;
    struct ks_lr_report rep;
    uint64_t rng = t->o.seed;
    double *z, *p, *zh;
    float *g2;
    double *g2b;

    if (n == 0) {
        snprintf(errstr, errstr_size, "no examples to learn from");
        return NULL;
    }
    if (t->kind == LR_TRIAGE && L < 2) {
        snprintf(errstr, errstr_size,
                 "a triage model needs at least two labels (got %zu)", L);
        return NULL;
    }
    /* Labels in byte order, so the same label set gives the same model
     * whatever order the examples come in. */
    labels = ks_xcalloc(L, sizeof(*labels));
    for (size_t i = 0; i < L; i++) {
        labels[i] = ks_xstrdup(t->labels[i]);
    }
    qsort(labels, L, sizeof(*labels), cmp_str);
    remap = ks_xcalloc(L, sizeof(*remap));
    for (size_t i = 0; i < L; i++) {
        for (size_t j = 0; j < L; j++) {
            if (strcmp(t->labels[i], labels[j]) == 0) {
                remap[i] = j;
            }
        }
    }
    m = lr_model_new(t->kind, t->o.bits, L, labels);
    K = m->n_vec;

    order = ks_xmalloc(n * sizeof(*order));
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
    }
    shuffle(order, n, &rng);
    n_hold = (size_t)floor(t->o.holdout * (double)n + 0.5);
    n_hold = n_hold >= n ? n - 1 : n_hold;

    /* The majority label of the training part, for the baseline. */
    count = ks_xcalloc(L, sizeof(*count));
    for (size_t i = n_hold; i < n; i++) {
        count[remap[t->ex[order[i]].label]]++;
    }
    for (size_t k = 1; k < L; k++) {
        majority = count[k] > count[majority] ? k : majority;
    }

    g2 = ks_xcalloc(K << t->o.bits, sizeof(*g2));
    g2b = ks_xcalloc(K, sizeof(*g2b));
    z = ks_xmalloc(L * sizeof(*z));
    p = ks_xmalloc(L * sizeof(*p));
    for (unsigned ep = 0; ep < t->o.epochs; ep++) {
        shuffle(order + n_hold, n - n_hold, &rng);
        for (size_t i = n_hold; i < n; i++) {
            const struct example *e = &t->ex[order[i]];

            sgd_step(m, g2, g2b, e, remap[e->label], &t->o, z, p);
        }
    }

    /* Calibrate on the held-out margins. */
    zh = ks_xmalloc((n_hold ? n_hold : 1) * K * sizeof(*zh));
    yh = ks_xmalloc((n_hold ? n_hold : 1) * sizeof(*yh));
    for (size_t i = 0; i < n_hold; i++) {
        const struct example *e = &t->ex[order[i]];

        lr_margins(m, e->f, e->n, zh + i * K);
        yh[i] = remap[e->label];
    }
    memset(&rep, 0, sizeof(rep));
    rep.calibration = "none";
    if (n_hold > 0 && LR_BINARY(t->kind)) {
        double *zall = ks_xmalloc(n * sizeof(*zall));
        int bad;

        for (size_t i = 0; i < n; i++) {
            lr_margins(m, t->ex[i].f, t->ex[i].n, &zall[i]);
        }
        bad = calibrate_binary(m, zh, yh, n_hold, zall, n, &rep, errstr,
                               errstr_size);
        free(zall);
        if (bad) {
            ks_lr_destroy(m);
            m = NULL;
            goto out;
        }
    } else if (n_hold > 0) {
        m->temperature = fit_temperature(zh, yh, n_hold, K);
        rep.calibration = "temperature";
    }

    rep.n_train = n - n_hold;
    rep.n_holdout = n_hold;
    rep.platt_a = m->platt_a;
    rep.platt_c = m->platt_c;
    rep.temperature = m->temperature;
    report_holdout(m, zh, yh, n_hold, majority, &rep);
    for (size_t i = n_hold; i < n; i++) {
        const struct example *e = &t->ex[order[i]];
        size_t best;

        lr_margins(m, e->f, e->n, z);
        probs(m, z, p, false);
        best = LR_BINARY(t->kind) ? (p[1] >= 0.5) : argmax(p, L);
        right += best == remap[e->label];
    }
    rep.train_accuracy = (double)right / (double)(n - n_hold);
    if (report) {
        *report = rep;
    }

out:
    free(yh);
    free(zh);
    free(p);
    free(z);
    free(g2b);
    free(g2);
    free(count);
    free(order);
    free(remap);
    return m;
}
