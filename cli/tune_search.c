/*
 * tune_search.c - the threshold search of `kascade tune` (see
 * tune_search.h).
 */
#include "tune_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

#define N_LAMBDA 1200 /* prices of a right answer, geometric */
#define N_ROUTE  40   /* router threshold candidates */

/* One group's options: escalating its first k tasks by confidence (k at a
 * tie boundary) gains right[k] answers at cost[k] and needs threshold
 * th[k]. Option 0 escalates nothing. */
struct group {
    size_t n_opt;
    double *right, *cost, *th;
};

struct conf_task {
    double conf;
    const struct ev_task *t;
};

static int cmp_conf(const void *a, const void *b)
{
    const struct conf_task *x = a, *y = b;

    return x->conf < y->conf ? -1 : x->conf > y->conf;
}

/* Builds a group's options from its tasks (those not routed up). */
static void group_build(
    struct conf_task *ct, size_t m, size_t lo, size_t hi, struct group *g)
{
    double right = 0, cost = 0;

    qsort(ct, m, sizeof(*ct), cmp_conf);
    g->right = ks_xmalloc((m + 1) * sizeof(double));
    g->cost = ks_xmalloc((m + 1) * sizeof(double));
    g->th = ks_xmalloc((m + 1) * sizeof(double));
    g->right[0] = g->cost[0] = 0;
    g->th[0] = m ? fmin(ct[0].conf, 0.0) : 0; /* escalates nothing */
    g->n_opt = 1;
    for (size_t j = 0; j < m; j++) {
        const struct ev_tier_out *l = &ct[j].t->t[lo], *h = &ct[j].t->t[hi];

        right += (double)h->correct - (double)l->correct;
        cost += ev_escalated_cost(l, h);
        /* A cut after j is realisable when the next value differs. */
        if (j + 1 < m && ct[j + 1].conf == ct[j].conf) {
            continue;
        }
        if (j + 1 == m && ct[j].conf >= 1.0) {
            continue; /* nothing is below a confidence of 1 */
        }
        g->right[g->n_opt] = right;
        g->cost[g->n_opt] = cost;
        /* Halfway to the next value: a score that travels through the
         * fleet (logprobs, JSON) and comes back a little lower still
         * lands on the same side. */
        g->th[g->n_opt] = j + 1 < m ? (ct[j].conf + ct[j + 1].conf) / 2 : 1.0;
        g->n_opt++;
    }
}

static void group_free(struct group *g)
{
    free(g->right);
    free(g->cost);
    free(g->th);
}

static size_t group_best(const struct group *g, double lambda)
{
    size_t best = 0;
    double v = 0;

    for (size_t k = 1; k < g->n_opt; k++) {
        double w = g->cost[k] - lambda * g->right[k];

        if (w < v - 1e-15) {
            v = w;
            best = k;
        }
    }
    return best;
}

/* The groups of one router threshold: own types, then the rest. Returns
 * the number of groups; gid[ty] is each type's group. */
static size_t groups_of(const struct ev_task *const *t,
                        size_t n,
                        size_t n_types,
                        size_t lo,
                        size_t hi,
                        size_t src,
                        double route_at,
                        size_t min_type,
                        size_t *gid,
                        struct group *g)
{
    size_t count[EV_MAX_TYPES] = {0}, ng = 0, rest;
    struct conf_task *ct = ks_xmalloc((n ? n : 1) * sizeof(*ct));

    for (size_t i = 0; i < n; i++) {
        count[t[i]->type]++;
    }
    for (size_t ty = 0; ty < n_types; ty++) {
        gid[ty] = count[ty] >= min_type ? ng++ : SIZE_MAX;
    }
    rest = ng++;
    for (size_t ty = 0; ty < n_types; ty++) {
        gid[ty] = gid[ty] == SIZE_MAX ? rest : gid[ty];
    }
    for (size_t k = 0; k < ng; k++) {
        size_t m = 0;

        for (size_t i = 0; i < n; i++) {
            double c = t[i]->t[lo].conf[src];
            bool up = !isnan(route_at) && !isnan(t[i]->router_score) &&
                      t[i]->router_score >= route_at;

            if (gid[t[i]->type] == k && !up && !isnan(c)) {
                ct[m].conf = c;
                ct[m++].t = t[i];
            }
        }
        group_build(ct, m, lo, hi, &g[k]);
    }
    free(ct);
    return ng;
}

/* The policy of option choice opt[] for the groups. */
static void policy_of(const struct group *g,
                      size_t ng,
                      const size_t *gid,
                      size_t n_types,
                      const size_t *opt,
                      double route_at,
                      size_t src,
                      struct tune_choice *c)
{
    memset(&c->policy, 0, sizeof(c->policy));
    c->policy.route_at = route_at;
    c->policy.src = src;
    for (size_t ty = 0; ty < EV_MAX_TYPES; ty++) {
        size_t k = ty < n_types ? gid[ty] : ng - 1;

        c->policy.below[ty] = g[k].th[opt[k]];
        c->own[ty] = ty < n_types && k != ng - 1;
    }
    c->below_rest = g[ng - 1].th[opt[ng - 1]];
    if (ng == 2 && g[1].n_opt == 1) {
        /* One type, nothing else: its threshold is the tier's. */
        c->below_rest = g[0].th[opt[0]];
        memset(c->own, 0, sizeof(c->own));
    } else if (g[ng - 1].n_opt == 1 && ng > 1) {
        /* No task in the rest: unseen types escalate like the most
         * careful type does. */
        c->below_rest = 0;
        for (size_t k = 0; k + 1 < ng; k++) {
            c->below_rest = fmax(c->below_rest, g[k].th[opt[k]]);
        }
    }
}

/* Keeps c in *best when it meets target more cheaply. Returns true then. */
static bool try_choice(struct tune_choice *c,
                       double target,
                       struct tune_choice *best)
{
    if (c->r.quality >= target - 1e-12 &&
        (!best->found || c->r.cost < best->r.cost - 1e-15)) {
        c->found = true;
        *best = *c;
        return true;
    }
    return false;
}

/* The cheapest choice meeting target for one router threshold: the
 * Lagrangian sweep, then a scan of each group's options. */
static void sweep(const struct ev_task *const *t,
                  size_t n,
                  size_t n_types,
                  size_t lo,
                  size_t hi,
                  size_t src,
                  double target,
                  size_t min_type,
                  double route_at,
                  struct tune_choice *best)
{
    struct group g[EV_MAX_TYPES + 1];
    size_t gid[EV_MAX_TYPES], opt[EV_MAX_TYPES + 1];
    size_t ng =
        groups_of(t, n, n_types, lo, hi, src, route_at, min_type, gid, g);

    bool have = false;
    size_t best_opt[EV_MAX_TYPES + 1] = {0};

    for (int li = -1; li <= N_LAMBDA; li++) {
        /* lambda 0 (cheapest), then 1e-7 .. 1e3 USD a right answer, then
         * "quality at any price". */
        double lambda = li < 0 ? 0
                        : li == N_LAMBDA
                            ? 1e12
                            : 1e-7 * pow(1e10, (double)li / (N_LAMBDA - 1));
        struct tune_choice c;

        for (size_t k = 0; k < ng; k++) {
            opt[k] = group_best(&g[k], lambda);
        }
        policy_of(g, ng, gid, n_types, opt, route_at, src, &c);
        ev_policy_apply(&c.policy, t, n, lo, hi, &c.r);
        if (try_choice(&c, target, best)) {
            memcpy(best_opt, opt, ng * sizeof(*opt));
            have = true;
        }
    }
    /* The Lagrangian reaches only the lower convex hull of each group's
     * (cost, right) curve; where the curve is flat and then jumps (a
     * verifier near its target) the cheapest option meeting the target
     * lies between hull points. So each group also tries every option of
     * its own with the others as chosen (with one group: exhaustive). */
    if (!have) {
        for (size_t k = 0; k < ng; k++) {
            best_opt[k] = g[k].n_opt - 1;
        }
    }
    for (size_t k = 0; k < ng; k++) {
        memcpy(opt, best_opt, ng * sizeof(*opt));
        for (size_t o = 0; o < g[k].n_opt; o++) {
            struct tune_choice c;

            opt[k] = o;
            policy_of(g, ng, gid, n_types, opt, route_at, src, &c);
            ev_policy_apply(&c.policy, t, n, lo, hi, &c.r);
            if (try_choice(&c, target, best)) {
                best_opt[k] = o;
            }
        }
    }
    for (size_t k = 0; k < ng; k++) {
        group_free(&g[k]);
    }
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

void tune_search(const struct ev_task *const *t,
                 size_t n,
                 size_t n_types,
                 size_t lo,
                 size_t hi,
                 size_t src,
                 double target,
                 size_t min_type,
                 bool use_router,
                 struct tune_choice *out)
{
    double *s = ks_xmalloc((n ? n : 1) * sizeof(*s));
    size_t m = 0;

    memset(out, 0, sizeof(*out));
    sweep(t, n, n_types, lo, hi, src, target, min_type, NAN, out);
    for (size_t i = 0; use_router && i < n; i++) {
        if (!isnan(t[i]->router_score)) {
            s[m++] = t[i]->router_score;
        }
    }
    qsort(s, m, sizeof(*s), cmp_dbl);
    for (size_t q = 1; m && q < N_ROUTE; q++) {
        /* Send the top (N_ROUTE - q) / N_ROUTE of scores straight up. */
        double at = s[(size_t)((double)m * (double)q / N_ROUTE)];

        sweep(t, n, n_types, lo, hi, src, target, min_type, at, out);
    }
    free(s);
}
