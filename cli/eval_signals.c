/*
 * eval_signals.c - the signals `kascade eval` compares (eval_report.h):
 * the key each one orders tasks by (the router's calibrated score, each
 * confidence as recorded, the task type's failure rate, random, the
 * oracle), their curves, and the reliability of a real signal.
 */
#include <math.h>
#include <stdlib.h>

#include "base/util.h"
#include "eval_curve.h"
#include "eval_outcomes.h"
#include "eval_report.h"

#include "base/banned.h"

/* key[i]: the smoothed failure rate of tier lo on t[i]'s type, (failures
 * + 2 p) / (n + 2) with p the rate over all tasks, as the router's
 * per-type prior starts (learn/lr.h). */
static void type_prior_keys(const struct ev_task **t,
                            size_t n,
                            size_t lo,
                            double *key)
{
    double fail[EV_MAX_TYPES] = {0}, cnt[EV_MAX_TYPES] = {0}, all = 0, p;

    for (size_t i = 0; i < n; i++) {
        fail[t[i]->type] += !t[i]->t[lo].correct;
        cnt[t[i]->type] += 1;
        all += !t[i]->t[lo].correct;
    }
    p = n ? all / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        key[i] = (fail[t[i]->type] + 2 * p) / (cnt[t[i]->type] + 2);
    }
}

static void signal_keys(const struct ev_task **t,
                        size_t n,
                        size_t lo,
                        size_t hi,
                        int sig,
                        double *key)
{
    if (sig == EV_SIG_TYPE_PRIOR) {
        type_prior_keys(t, n, lo, key);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        switch (sig) {
        case EV_SIG_ROUTER:
            key[i] = t[i]->router_score;
            break;
        case EV_SIG_RANDOM:
            key[i] = 0;
            break;
        case EV_SIG_ORACLE:
            key[i] = !t[i]->t[lo].correct && t[i]->t[hi].correct;
            break;
        default:
            key[i] = -t[i]->t[lo].conf[sig];
        }
    }
}

static bool has_router(const struct ev_task **t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isnan(t[i]->router_score)) {
            return true;
        }
    }
    return false;
}

const char *ev_signal_name(const struct ev_set *set, int sig)
{
    switch (sig) {
    case EV_SIG_ROUTER:
        return "router score";
    case EV_SIG_TYPE_PRIOR:
        return "type prior";
    case EV_SIG_RANDOM:
        return "random";
    case EV_SIG_ORACLE:
        return "oracle";
    default:
        return set->src[sig];
    }
}


void ev_signals_build(const struct ev_set *set,
                      const struct ev_task **t,
                      size_t lo,
                      size_t hi,
                      struct ev_signals *s)
{
    double *key = ks_xmalloc(set->n * sizeof(*key));

    s->n = 0;
    if (has_router(t, set->n)) {
        s->sig[s->n++] = EV_SIG_ROUTER;
    }
    for (size_t k = 0; k < set->n_src; k++) {
        s->sig[s->n++] = (int)k;
    }
    s->n_real = s->n;
    if (set->n_types > 1) {
        s->sig[s->n++] = EV_SIG_TYPE_PRIOR;
    }
    s->sig[s->n++] = EV_SIG_RANDOM;
    s->sig[s->n++] = EV_SIG_ORACLE;
    for (size_t j = 0; j < s->n; j++) {
        signal_keys(t, set->n, lo, hi, s->sig[j], key);
        ev_curve_build(t, set->n, lo, hi, key, &s->c[j]);
    }
    free(key);
}

void ev_reliability_of(
    const struct ev_task **t, size_t n, size_t lo, int sig, struct ev_rel *rel)
{
    double *p = ks_xmalloc(n * sizeof(*p));
    bool *y = ks_xmalloc(n * sizeof(*y));

    for (size_t i = 0; i < n; i++) {
        if (sig == EV_SIG_ROUTER) { /* P(the cheap tier fails) */
            p[i] = t[i]->router_score;
            y[i] = !t[i]->t[lo].correct;
        } else { /* P(the cheap answer is right) */
            p[i] = t[i]->t[lo].conf[sig];
            y[i] = t[i]->t[lo].correct;
        }
    }
    ev_reliability(p, y, n, rel);
    free(p);
    free(y);
}
