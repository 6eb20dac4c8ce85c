/*
 * lr.c - hashed n-gram logistic regression: features and scoring (the
 * feature set is described in lr.h). The model file is file.c; fitting
 * is train.c. Nothing here writes to a model after it is built, which is
 * what makes a loaded model safe from any thread.
 */
#include "learn/lr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "learn/lr_internal.h"

#include "base/banned.h"


/* ---- features ---- */

uint64_t lr_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= LR_FNV_PRIME;
    }
    return h;
}

static uint32_t bucket(
    uint64_t h0, char ns, const char *s, size_t len, uint32_t mask)
{
    uint64_t h = lr_fnv1a(h0, &ns, 1);

    h = lr_fnv1a(h, s, len);
    return (uint32_t)(h ^ (h >> 32)) & mask;
}

/* Sorts a[0..n-1] (values below 2^bits) with an LSD radix sort, 8 bits a
 * pass, through tmp (n entries): several times faster than qsort here. */
static void radix_sort(uint32_t *a, uint32_t *tmp, size_t n, unsigned bits)
{
    uint32_t *src = a, *dst = tmp, *swap;

    for (unsigned shift = 0; shift < bits; shift += 8) {
        size_t count[257] = {0};

        for (size_t i = 0; i < n; i++) {
            count[((src[i] >> shift) & 0xff) + 1]++;
        }
        for (size_t b = 1; b < 257; b++) {
            count[b] += count[b - 1];
        }
        for (size_t i = 0; i < n; i++) {
            dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        }
        swap = src;
        src = dst;
        dst = swap;
    }
    if (src != a) {
        memcpy(a, src, n * sizeof(*a));
    }
}

/* Lower-cases ASCII, keeps bytes >= 0x80, folds every run of other bytes
 * to one space, and puts a space at each end. Returns the length. */
static size_t normalise(const char *text, size_t len, char *out)
{
    size_t n = 0;

    out[n++] = ' ';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c >= 'A' && c <= 'Z') {
            out[n++] = (char)(c - 'A' + 'a');
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c >= 0x80) {
            out[n++] = (char)c;
        } else if (out[n - 1] != ' ') {
            out[n++] = ' ';
        }
    }
    if (out[n - 1] != ' ') {
        out[n++] = ' ';
    }
    return n;
}

size_t lr_features(const char *text,
                   size_t len,
                   unsigned bits,
                   struct lr_feat **out)
{
    return lr_features_from(text, len, bits, LR_FNV_OFFSET, out);
}

static int cmp_feat(const void *a, const void *b)
{
    const struct lr_feat *x = a, *y = b;

    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

size_t lr_feats_merge(struct lr_feat *f, size_t n)
{
    size_t k = 0;

    if (n == 0) {
        return 0;
    }
    qsort(f, n, sizeof(*f), cmp_feat);
    for (size_t i = 1; i < n; i++) {
        if (f[i].idx == f[k].idx) {
            f[k].val += f[i].val;
        } else {
            f[++k] = f[i];
        }
    }
    return k + 1;
}

size_t lr_features_from(const char *text,
                        size_t len,
                        unsigned bits,
                        uint64_t h0,
                        struct lr_feat **out)
{
    uint32_t mask = (uint32_t)((1ULL << bits) - 1);
    size_t blen, nh = 0, nf = 0, prev_start = 0, prev_len = 0;
    char *buf;
    uint32_t *h;
    struct lr_feat *f;
    double norm = 0;

    if (len > KS_LR_MAX_TEXT) {
        len = KS_LR_MAX_TEXT;
    }
    buf = ks_xmalloc(len + 2);
    blen = normalise(text ? text : "", text ? len : 0, buf);
    /* At most 3 char n-grams per byte, and a word and a bigram per two. */
    /* the second half is the radix sort's scratch */
    h = ks_xmalloc(2 * (4 * blen + 4) * sizeof(*h));
    for (size_t n = 3; n <= 5; n++) {
        for (size_t i = 0; i + n <= blen; i++) {
            h[nh++] = bucket(h0, 'c', buf + i, n, mask);
        }
    }
    for (size_t i = 1; i < blen;) {
        size_t j = i;

        while (j < blen && buf[j] != ' ') {
            j++;
        }
        h[nh++] = bucket(h0, 'w', buf + i, j - i, mask);
        if (prev_len > 0) {
            h[nh++] = bucket(h0, 'b', buf + prev_start, j - prev_start, mask);
        }
        prev_start = i;
        prev_len = j - i;
        i = j + 1;
    }
    radix_sort(h, h + 4 * blen + 4, nh, bits);
    f = ks_xmalloc((nh ? nh : 1) * sizeof(*f));
    for (size_t i = 0; i < nh;) {
        size_t j = i;

        while (j < nh && h[j] == h[i]) {
            j++;
        }
        f[nf].idx = h[i];
        f[nf].val = (float)(1.0 + log((double)(j - i)));
        norm += (double)f[nf].val * f[nf].val;
        nf++;
        i = j;
    }
    norm = sqrt(norm);
    for (size_t i = 0; i < nf; i++) {
        f[i].val = (float)(f[i].val / norm);
    }
    free(h);
    free(buf);
    *out = f;
    return nf;
}

uint32_t lr_type_bucket(const char *type, unsigned bits)
{
    return bucket(LR_FNV_OFFSET, 'y', type, strlen(type),
                  (uint32_t)((1ULL << bits) - 1));
}

size_t lr_task_features(const struct ks_lr_task *task,
                        unsigned bits,
                        const char *const *meta_keys,
                        size_t n_meta_keys,
                        struct lr_feat **out)
{
    uint32_t mask = (uint32_t)((1ULL << bits) - 1);
    struct lr_feat *f;
    size_t n = lr_features(task->text, task->len, bits, &f);

    f = ks_xrealloc(f, (n + 1 + n_meta_keys) * sizeof(*f));
    if (task->type && task->type[0]) {
        f[n].idx = lr_type_bucket(task->type, bits);
        f[n++].val = 1;
    }
    for (size_t k = 0; k < n_meta_keys; k++) {
        for (size_t i = 0; i < task->n_meta; i++) {
            uint64_t h;

            if (strcmp(task->meta[i].key, meta_keys[k]) != 0) {
                continue;
            }
            h = lr_fnv1a(LR_FNV_OFFSET, "m", 1);
            h = lr_fnv1a(h, meta_keys[k], strlen(meta_keys[k]) + 1);
            h = lr_fnv1a(h, task->meta[i].value, strlen(task->meta[i].value));
            f[n].idx = (uint32_t)(h ^ (h >> 32)) & mask;
            f[n++].val = 1;
            break;
        }
    }
    *out = f;
    return lr_feats_merge(f, n);
}

/* ---- scoring ---- */

struct ks_lr_model *lr_model_new(enum lr_kind kind,
                                 unsigned bits,
                                 size_t n_labels,
                                 char **labels)
{
    struct ks_lr_model *m = ks_xcalloc(1, sizeof(*m));

    m->kind = kind;
    m->bits = bits;
    m->n_labels = n_labels;
    m->labels = labels;
    m->n_vec = LR_BINARY(kind) ? 1 : n_labels;
    m->w = ks_xcalloc(m->n_vec << bits, sizeof(*m->w));
    m->bias = ks_xcalloc(m->n_vec, sizeof(*m->bias));
    m->platt_a = 1;
    m->platt_c = 0;
    m->temperature = 1;
    return m;
}

void ks_lr_destroy(struct ks_lr_model *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; m->labels && i < m->n_labels; i++) {
        free(m->labels[i]);
    }
    for (size_t i = 0; i < m->n_meta_keys; i++) {
        free(m->meta_keys[i]);
    }
    free(m->meta_keys);
    free(m->labels);
    free(m->w);
    free(m->bias);
    free(m);
}

double lr_sigmoid(double x)
{
    if (x >= 0) {
        return 1.0 / (1.0 + exp(-x));
    }
    double e = exp(x);

    return e / (1.0 + e);
}

void lr_softmax(const double *z, size_t n, double t, double *p)
{
    double max = z[0], sum = 0;

    for (size_t k = 1; k < n; k++) {
        max = z[k] > max ? z[k] : max;
    }
    for (size_t k = 0; k < n; k++) {
        p[k] = exp((z[k] - max) / t);
        sum += p[k];
    }
    for (size_t k = 0; k < n; k++) {
        p[k] /= sum;
    }
}

void lr_margins(const struct ks_lr_model *m,
                const struct lr_feat *f,
                size_t n,
                double *z)
{
    for (size_t k = 0; k < m->n_vec; k++) {
        z[k] = m->bias[k];
    }
    for (size_t i = 0; i < n; i++) {
        const float *w = m->w + (size_t)f[i].idx * m->n_vec;

        for (size_t k = 0; k < m->n_vec; k++) {
            z[k] += (double)w[k] * f[i].val;
        }
    }
}

double lr_router_prob(const struct ks_lr_model *m, double z)
{
    return lr_sigmoid(m->platt_a * z + m->platt_c);
}

/* Margins of text into z (n_vec of them); returns the arg-max. */
static size_t text_margins(const struct ks_lr_model *m,
                           const char *text,
                           size_t len,
                           double *z)
{
    struct lr_feat *f;
    size_t n = lr_features(text, len, m->bits, &f), best = 0;

    lr_margins(m, f, n, z);
    free(f);
    for (size_t k = 1; k < m->n_vec; k++) {
        best = z[k] > z[best] ? k : best;
    }
    return best;
}

const char *ks_lr_kind(const struct ks_lr_model *m)
{
    return m->kind == LR_ROUTER     ? "router"
           : m->kind == LR_VERIFIER ? "verifier"
                                    : "triage";
}

size_t ks_lr_n_labels(const struct ks_lr_model *m)
{
    return m->n_labels;
}

const char *ks_lr_label(const struct ks_lr_model *m, size_t i)
{
    return i < m->n_labels ? m->labels[i] : NULL;
}

unsigned ks_lr_bits(const struct ks_lr_model *m)
{
    return m->bits;
}

double ks_lr_margin(const struct ks_lr_model *m, const char *text, size_t len)
{
    double *z = ks_xmalloc(m->n_vec * sizeof(*z));
    double r = z[text_margins(m, text, len, z)];

    free(z);
    return r;
}

int ks_lr_classify(const struct ks_lr_model *m,
                   const char *text,
                   size_t len,
                   double *prob)
{
    double *z = ks_xmalloc(m->n_vec * sizeof(*z)), *p, pr;
    size_t best = text_margins(m, text, len, z);

    if (LR_BINARY(m->kind)) {
        pr = lr_router_prob(m, z[0]);
        best = pr >= 0.5;
        pr = best ? pr : 1 - pr;
    } else {
        p = ks_xmalloc(m->n_vec * sizeof(*p));
        lr_softmax(z, m->n_vec, m->temperature, p);
        pr = p[best];
        free(p);
    }
    free(z);
    if (prob) {
        *prob = pr;
    }
    return (int)best;
}

double ks_lr_score(const struct ks_lr_model *m, const char *text, size_t len)
{
    double pr, z;

    if (LR_BINARY(m->kind)) {
        text_margins(m, text, len, &z);
        return lr_router_prob(m, z);
    }
    ks_lr_classify(m, text, len, &pr);
    return pr;
}

int ks_lr_has_task_features(const struct ks_lr_model *m)
{
    return m->task_features;
}

double ks_lr_margin_task(const struct ks_lr_model *m,
                         const struct ks_lr_task *task)
{
    struct lr_feat *f;
    size_t n;
    double z;

    if (!m->task_features || m->kind != LR_ROUTER) {
        return ks_lr_margin(m, task->text, task->len);
    }
    n = lr_task_features(task, m->bits, (const char *const *)m->meta_keys,
                         m->n_meta_keys, &f);
    lr_margins(m, f, n, &z);
    free(f);
    return z;
}

double ks_lr_score_task(const struct ks_lr_model *m,
                        const struct ks_lr_task *task)
{
    if (m->kind != LR_ROUTER) {
        return ks_lr_score(m, task->text, task->len);
    }
    return lr_router_prob(m, ks_lr_margin_task(m, task));
}
