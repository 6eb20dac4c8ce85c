/*
 * eval_curve.c - curves, CPT, APGR, threshold policies and reliability
 * (see eval_curve.h). Costs are means per task in USD; accuracy is the
 * share of tasks answered right.
 */
#include "eval_curve.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

static enum ks_escalate_context esc_read = KS_ESC_CTX_FINAL;

void ev_escalation_read_set(enum ks_escalate_context r)
{
    esc_read = r;
}

int ev_escalation_read_parse(const char *s, enum ks_escalate_context *r)
{
    if (ks_escalate_context_parse(s, r)) {
        return 0;
    }
    fprintf(stderr,
            "kascade: --escalate-context must be " KS_ESCALATE_CONTEXT_VALUES
            "\n");
    return -1;
}

double ev_escalated_cost(const struct ev_tier_out *l,
                         const struct ev_tier_out *h)
{
    int64_t out = l->out_tokens > 0 ? l->out_tokens : 0, read = 0;

    if (esc_read == KS_ESC_CTX_FULL) {
        read = out + EV_ESC_FULL_OVERHEAD;
    } else if (esc_read == KS_ESC_CTX_ANSWER) {
        read = (out < EV_ESC_EXCERPT_TOKENS ? out : EV_ESC_EXCERPT_TOKENS) +
               EV_ESC_ANSWER_OVERHEAD;
    } else if (esc_read == KS_ESC_CTX_FINAL) {
        read = EV_ESC_FINAL_READ;
    }
    return h->cost_usd + h->in_usd_per_token * (double)read;
}

struct keyed {
    double key;
    size_t i;
};

/* Highest key first, NAN last; the index keeps the sort stable. */
static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    bool xn = isnan(x->key), yn = isnan(y->key);

    if (xn != yn) {
        return xn ? 1 : -1;
    }
    if (!xn && x->key != y->key) {
        return x->key > y->key ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

static bool same_key(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

void ev_curve_build(const struct ev_task *const *t,
                    size_t n,
                    size_t lo,
                    size_t hi,
                    const double *key,
                    struct ev_curve *c)
{
    struct keyed *k = ks_xmalloc((n ? n : 1) * sizeof(*k));
    double a = 0, cr = 0, cc = 0;

    c->n = n;
    c->acc = ks_xcalloc(n + 1, sizeof(double));
    c->cost_route = ks_xcalloc(n + 1, sizeof(double));
    c->cost_casc = ks_xcalloc(n + 1, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        k[i].key = key[i];
        k[i].i = i;
        a += t[i]->t[lo].correct;
        cr += t[i]->t[lo].cost_usd;
    }
    cc = cr;
    qsort(k, n, sizeof(*k), cmp_keyed);
    c->acc[0] = a;
    c->cost_route[0] = cr;
    c->cost_casc[0] = cc;
    for (size_t s = 0, e; s < n; s = e) {
        double da = 0, dr = 0, dc = 0;

        for (e = s; e < n && same_key(k[e].key, k[s].key); e++) {
            const struct ev_tier_out *l = &t[k[e].i]->t[lo];
            const struct ev_tier_out *h = &t[k[e].i]->t[hi];

            da += (double)h->correct - (double)l->correct;
            dr += h->cost_usd - l->cost_usd;
            dc += ev_escalated_cost(l, h);
        }
        /* A tied group is crossed on a straight line. */
        for (size_t j = s + 1; j <= e; j++) {
            double f = (double)(j - s) / (double)(e - s);

            c->acc[j] = c->acc[s] + f * da;
            c->cost_route[j] = c->cost_route[s] + f * dr;
            c->cost_casc[j] = c->cost_casc[s] + f * dc;
        }
    }
    for (size_t j = 0; j <= n && n; j++) {
        c->acc[j] /= (double)n;
        c->cost_route[j] /= (double)n;
        c->cost_casc[j] /= (double)n;
    }
    free(k);
}

void ev_curve_fini(struct ev_curve *c)
{
    free(c->acc);
    free(c->cost_route);
    free(c->cost_casc);
    memset(c, 0, sizeof(*c));
}

double ev_cpt(const struct ev_curve *c, double x)
{
    double target = c->acc[0] + x * (c->acc[c->n] - c->acc[0]);

    for (size_t k = 0; k <= c->n; k++) {
        if (c->acc[k] >= target - 1e-12) {
            return (double)k / (double)c->n;
        }
    }
    return -1;
}

double ev_apgr(const struct ev_curve *c)
{
    double gap = c->acc[c->n] - c->acc[0], s = 0;

    if (!(gap > 0) || c->n == 0) {
        return NAN;
    }
    for (size_t k = 0; k < c->n; k++) {
        s += ((c->acc[k] - c->acc[0]) + (c->acc[k + 1] - c->acc[0])) / 2 / gap;
    }
    return s / (double)c->n;
}

double ev_cost_at(const struct ev_curve *c,
                  double q,
                  bool cascade,
                  double *share)
{
    const double *cost = cascade ? c->cost_casc : c->cost_route;
    double best = -1;

    for (size_t k = 0; k <= c->n; k++) {
        if (c->acc[k] >= q - 1e-12 && (best < 0 || cost[k] < best)) {
            best = cost[k];
            *share = c->n ? (double)k / (double)c->n : 0;
        }
    }
    return best;
}

void ev_policy_apply(const struct ev_policy *p,
                     const struct ev_task *const *t,
                     size_t n,
                     size_t lo,
                     size_t hi,
                     struct ev_result *r)
{
    size_t right = 0, esc = 0, routed = 0;
    double cost = 0;

    for (size_t i = 0; i < n; i++) {
        const struct ev_tier_out *l = &t[i]->t[lo], *h = &t[i]->t[hi];
        double conf = l->conf[p->src];

        if (!isnan(p->route_at) && !isnan(t[i]->router_score) &&
            t[i]->router_score >= p->route_at) {
            routed++;
            right += h->correct;
            cost += h->cost_usd;
        } else if (!isnan(conf) && conf < p->below[t[i]->type]) {
            esc++;
            right += h->correct;
            cost += l->cost_usd + ev_escalated_cost(l, h);
        } else {
            right += l->correct;
            cost += l->cost_usd;
        }
    }
    memset(r, 0, sizeof(*r));
    if (n) {
        r->quality = (double)right / (double)n;
        r->cost = cost / (double)n;
        r->escalated = (double)esc / (double)n;
        r->routed = (double)routed / (double)n;
    }
}

void ev_reliability(const double *p, const bool *y, size_t n, struct ev_rel *r)
{
    memset(r, 0, sizeof(*r));
    r->min = INFINITY;
    r->max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        size_t b;

        if (isnan(p[i])) {
            continue;
        }
        b = (size_t)(p[i] * EV_BINS);
        b = b >= EV_BINS ? EV_BINS - 1 : b;
        r->count[b]++;
        r->mean_p[b] += p[i];
        r->observed[b] += y[i];
        r->min = p[i] < r->min ? p[i] : r->min;
        r->max = p[i] > r->max ? p[i] : r->max;
        r->n++;
    }
    for (size_t b = 0; b < EV_BINS; b++) {
        if (r->count[b]) {
            r->mean_p[b] /= (double)r->count[b];
            r->observed[b] /= (double)r->count[b];
            r->ece += (double)r->count[b] / (double)r->n *
                      fabs(r->mean_p[b] - r->observed[b]);
        }
    }
}

void ev_tier_mean(const struct ev_task *const *t,
                  size_t n,
                  size_t tier,
                  double *quality,
                  double *cost)
{
    double q = 0, c = 0;

    for (size_t i = 0; i < n; i++) {
        q += t[i]->t[tier].correct;
        c += t[i]->t[tier].cost_usd;
    }
    *quality = n ? q / (double)n : 0;
    *cost = n ? c / (double)n : 0;
}
