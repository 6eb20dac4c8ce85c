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
 * Calibration on the held-out margins (identity when nothing is held out)
 * is calibrate.c.
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
    size_t label;      /* index into trainer labels (insertion order) */
    bool has_type;     /* router with task features: type_idx is set */
    uint32_t type_idx; /* the type's indicator bucket */
};

struct ks_lr_trainer {
    struct ks_lr_train_opts o;
    enum lr_kind kind;
    struct example *ex;
    size_t n_ex, cap_ex;
    char **labels; /* insertion order */
    size_t n_labels;
    bool task_features; /* an example came with a type or metadata */
    char **meta_keys;   /* owned copies of o.meta_keys */
    size_t n_meta_keys;
    uint32_t signals; /* verifier: union of the examples' signals */
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
    if (o->n_meta_keys > KS_LR_MAX_META_KEYS) {
        snprintf(errstr, errstr_size, "at most %d metadata keys",
                 KS_LR_MAX_META_KEYS);
        return NULL;
    }
    for (size_t i = 0; i < o->n_meta_keys; i++) {
        size_t kl = strlen(o->meta_keys[i]);

        if (kl == 0 || kl > KS_LR_MAX_LABEL_LEN) {
            snprintf(errstr, errstr_size, "a metadata key must be 1..%d bytes",
                     KS_LR_MAX_LABEL_LEN);
            return NULL;
        }
    }
    t = ks_xcalloc(1, sizeof(*t));
    t->o = *o;
    t->meta_keys = ks_xcalloc(o->n_meta_keys + 1, sizeof(*t->meta_keys));
    for (size_t i = 0; i < o->n_meta_keys; i++) {
        t->meta_keys[t->n_meta_keys++] = ks_xstrdup(o->meta_keys[i]);
    }
    t->o.meta_keys = NULL;
    t->o.n_meta_keys = 0;
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
    for (size_t i = 0; i < t->n_meta_keys; i++) {
        free(t->meta_keys[i]);
    }
    free(t->meta_keys);
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

int ks_lr_trainer_add_task(struct ks_lr_trainer *t,
                           const struct ks_lr_task *task,
                           const char *label,
                           char *errstr,
                           size_t errstr_size)
{
    struct lr_feat *f;
    size_t n;
    bool typed = task->type && task->type[0];

    if (t->kind != LR_ROUTER) {
        snprintf(errstr, errstr_size, "tasks are a router's examples");
        return -1;
    }
    n = lr_task_features(task, t->o.bits, (const char *const *)t->meta_keys,
                         t->n_meta_keys, &f);
    if (lr_trainer_add_feats(t, f, n, label, errstr, errstr_size) != 0) {
        return -1;
    }
    t->task_features = true;
    t->ex[t->n_ex - 1].has_type = typed;
    t->ex[t->n_ex - 1].type_idx =
        typed ? lr_type_bucket(task->type, t->o.bits) : 0;
    return 0;
}

void lr_trainer_note_signals(struct ks_lr_trainer *t, uint32_t sig)
{
    t->signals |= sig;
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
    e->has_type = false;
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

static double logit(double p)
{
    return log(p / (1 - p));
}

/* A typed training example: its type bucket and whether it failed. */
struct typed {
    uint32_t bucket;
    bool fail;
};

static int cmp_typed(const void *a, const void *b)
{
    uint32_t x = ((const struct typed *)a)->bucket;
    uint32_t y = ((const struct typed *)b)->bucket;

    return x < y ? -1 : x > y;
}

/* The per-type error-rate prior of a router with task features (lr.h):
 * the starting bias and type weights, from the training part idx[0..n).
 * Router labels in trainer order: index 1 is "1" (the cheaper tier
 * fails). */
static void type_prior(const struct ks_lr_trainer *t,
                       struct ks_lr_model *m,
                       const size_t *idx,
                       size_t n)
{
    struct typed *ty = ks_xmalloc((n ? n : 1) * sizeof(*ty));
    size_t fails = 0, nt = 0;
    double p;

    m->task_features = true;
    m->meta_keys = ks_xcalloc(t->n_meta_keys + 1, sizeof(*m->meta_keys));
    for (size_t k = 0; k < t->n_meta_keys; k++) {
        m->meta_keys[m->n_meta_keys++] = ks_xstrdup(t->meta_keys[k]);
    }
    for (size_t i = 0; i < n; i++) {
        const struct example *e = &t->ex[idx[i]];

        fails += e->label == 1;
        if (e->has_type) {
            ty[nt].bucket = e->type_idx;
            ty[nt++].fail = e->label == 1;
        }
    }
    p = ((double)fails + 1) / ((double)n + 2);
    m->bias[0] = logit(p);
    qsort(ty, nt, sizeof(*ty), cmp_typed);
    for (size_t i = 0; i < nt;) {
        size_t j = i;
        double k = 0;

        while (j < nt && ty[j].bucket == ty[i].bucket) {
            k += ty[j++].fail;
        }
        m->w[ty[i].bucket] =
            (float)(logit((k + 2 * p) / ((double)(j - i) + 2)) - logit(p));
        i = j;
    }
    free(ty);
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
    m->signals = t->signals;
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

    if (t->task_features) {
        type_prior(t, m, order + n_hold, n - n_hold);
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
        bad = lr_calibrate_binary(m, zh, yh, n_hold, zall, n, &rep, errstr,
                                  errstr_size);
        free(zall);
        if (bad) {
            ks_lr_destroy(m);
            m = NULL;
            goto out;
        }
    } else if (n_hold > 0) {
        m->temperature = lr_fit_temperature(zh, yh, n_hold, K);
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
