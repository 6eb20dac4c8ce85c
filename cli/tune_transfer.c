/*
 * tune_transfer.c - thresholds as shares, moved onto the deployed
 * model's scores (tune_transfer.h).
 */
#include "tune_transfer.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double tune_threshold_at_share(const double *v, size_t n, double share)
{
    size_t want = (size_t)floor(share * (double)n + 0.5), best = 0;
    double best_d = INFINITY;

    /* Candidates: below everything, between two distinct values, above
     * everything; "below d" counts the values < d. */
    for (size_t k = 0; k <= n; k++) {
        double d;

        if (k > 0 && k < n && v[k] == v[k - 1]) {
            continue; /* ties go together */
        }
        d = fabs((double)k - (double)want);
        if (d < best_d) {
            best_d = d;
            best = k;
        }
    }
    if (best == 0) {
        return v[0];
    }
    if (best == n) {
        return nextafter(v[n - 1], INFINITY);
    }
    return v[best - 1] + (v[best] - v[best - 1]) / 2;
}

/* In the group of from's type ty (own) or of every type without its own
 * threshold (ty SIZE_MAX)? */
static bool in_group(const struct tune_choice *c, size_t type, size_t ty)
{
    return ty == SIZE_MAX ? !c->own[type] : type == ty;
}

/* The share of from's group tasks below th; *m the tasks with a value. */
static double share_below(const struct tune_choice *c,
                          const struct ev_task *const *t,
                          size_t n,
                          size_t lo,
                          size_t src,
                          size_t ty,
                          double th,
                          size_t *m)
{
    size_t below = 0;

    *m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = t[i]->t[lo].conf[src];

        if (in_group(c, t[i]->type, ty) && !isnan(v)) {
            (*m)++;
            below += v < th;
        }
    }
    return *m ? (double)below / (double)*m : 0;
}

/* dep's scores of the group, sorted; *m their count. Type names of from
 * decide the group (dep may order its types differently). */
static double *dep_scores(const struct tune_choice *c,
                          const struct ev_set *from,
                          const struct ev_set *dep,
                          size_t dep_lo,
                          size_t dep_src,
                          size_t ty,
                          size_t *m)
{
    double *v = ks_xmalloc((dep->n ? dep->n : 1) * sizeof(*v));

    *m = 0;
    for (size_t i = 0; i < dep->n; i++) {
        const struct ev_task *d = &dep->tasks[i];
        int f = ev_type_index(from, dep->types[d->type]);
        double s = d->t[dep_lo].conf[dep_src];
        bool in = f >= 0 ? in_group(c, (size_t)f, ty) : ty == SIZE_MAX;

        if (in && !isnan(s)) {
            v[(*m)++] = s;
        }
    }
    qsort(v, *m, sizeof(*v), cmp_dbl);
    return v;
}

/* Maps one group's threshold *th; name for the report. */
static int map_one(const struct tune_choice *c,
                   const struct ev_set *from,
                   const struct ev_task *const *t,
                   size_t n,
                   size_t lo,
                   size_t src,
                   const struct ev_set *dep,
                   size_t dep_lo,
                   size_t dep_src,
                   size_t ty,
                   double *th)
{
    const char *name = ty == SIZE_MAX ? "(every type)" : from->types[ty];
    size_t m, dm, below = 0;
    double share = share_below(c, t, n, lo, src, ty, *th, &m);
    double *v = dep_scores(c, from, dep, dep_lo, dep_src, ty, &dm), to;

    if (m == 0) {
        free(v);
        return 0; /* no score in the group: the threshold is moot */
    }
    if (dm == 0) {
        fprintf(stderr,
                "kascade tune: --deploy-scores has no scored task of type "
                "%s: cannot carry its threshold over\n",
                name);
        free(v);
        return -1;
    }
    to = tune_threshold_at_share(v, dm, share);
    for (size_t i = 0; i < dm; i++) {
        below += v[i] < to;
    }
    printf("  %s: escalate_below %.6g sends up %.1f%% of %zu tuned "
           "scores -> %.6g sends up %.1f%% of %zu deployed scores\n",
           name, *th, 100 * share, m, to, 100 * (double)below / (double)dm, dm);
    *th = to;
    free(v);
    return 0;
}

/* The sorted router scores of t[0..n-1] (non-NAN); *m their count. */
static double *router_scores(const struct ev_task *const *t,
                             size_t n,
                             size_t *m)
{
    double *v = ks_xmalloc((n ? n : 1) * sizeof(*v));

    *m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(t[i]->router_score)) {
            v[(*m)++] = t[i]->router_score;
        }
    }
    qsort(v, *m, sizeof(*v), cmp_dbl);
    return v;
}

/* The same share at or above the router's threshold (score >= route_at
 * goes up, so the share below it is mapped). */
static int map_router(struct tune_choice *c,
                      const struct ev_task *const *t,
                      size_t n,
                      const struct ev_set *dep)
{
    const struct ev_task **d = ks_xmalloc((dep->n ? dep->n : 1) * sizeof(*d));
    size_t m, dm, below = 0, dbelow = 0;
    double *v, *dv, to;

    for (size_t i = 0; i < dep->n; i++) {
        d[i] = &dep->tasks[i];
    }
    v = router_scores(t, n, &m);
    dv = router_scores(d, dep->n, &dm);
    free(d);
    if (m == 0 || dm == 0) {
        fprintf(stderr,
                "kascade tune: %s has no router scores: cannot carry "
                "routing.score_threshold over\n",
                m == 0 ? "the tuning file" : "--deploy-scores");
        free(v);
        free(dv);
        return -1;
    }
    for (size_t i = 0; i < m; i++) {
        below += v[i] < c->policy.route_at;
    }
    to = tune_threshold_at_share(dv, dm, (double)below / (double)m);
    for (size_t i = 0; i < dm; i++) {
        dbelow += dv[i] < to;
    }
    printf("  routing.score_threshold %.6g sends up %.1f%% of %zu tuned "
           "scores -> %.6g sends up %.1f%% of %zu deployed scores\n",
           c->policy.route_at, 100 * (1 - (double)below / (double)m), m, to,
           100 * (1 - (double)dbelow / (double)dm), dm);
    c->policy.route_at = to;
    free(v);
    free(dv);
    return 0;
}

int tune_transfer(struct tune_choice *c,
                  const struct ev_set *from,
                  const struct ev_task *const *t,
                  size_t n,
                  size_t lo,
                  size_t src,
                  const struct ev_set *dep,
                  size_t dep_lo,
                  size_t dep_src)
{
    printf("carried over to the deployed scores (the same share sent up):\n");
    if (!isnan(c->policy.route_at) && map_router(c, t, n, dep) != 0) {
        return -1;
    }
    if (src >= from->n_src) {
        return 0; /* --source none: no escalate_below */
    }
    for (size_t ty = 0; ty < from->n_types; ty++) {
        if (c->own[ty]) {
            if (map_one(c, from, t, n, lo, src, dep, dep_lo, dep_src, ty,
                        &c->policy.below[ty]) != 0) {
                return -1;
            }
        }
    }
    if (map_one(c, from, t, n, lo, src, dep, dep_lo, dep_src, SIZE_MAX,
                &c->below_rest) != 0) {
        return -1;
    }
    for (size_t ty = 0; ty < EV_MAX_TYPES; ty++) {
        if (!c->own[ty]) {
            c->policy.below[ty] = c->below_rest;
        }
    }
    return 0;
}
