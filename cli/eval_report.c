/*
 * eval_report.c - `kascade eval -i OUTCOMES.jsonl`: the measurement
 * framework. Per tier and task type: quality, cost, latency; between the
 * cheapest tier and the top one: the routing and cascade curves of every
 * signal against random and the oracle (CPT, APGR, the saving at a
 * quality target), the threshold sweep of each signal, reliability with
 * the expected calibration error, and SVG plots.
 *
 * Every signal is ranked and swept by the very value the router or the
 * worker compares with its threshold: the router's calibrated score
 * (ks_lr_score, not the raw margin) and each confidence as recorded. A
 * constant signal (a calibration that collapsed) is flagged, and its
 * curve is random's (eval_curve.h: ties cross on a straight line).
 */
#include "eval_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "eval_curve.h"
#include "eval_outcomes.h"
#include "eval_results.h"
#include "eval_svg.h"
#include "eval_verify.h"
#include "jsonl.h"
#include "learn/lr.h"

#include "base/banned.h"

#define MAX_PRICES 16

struct ev_opts {
    const char *in, *score_model, *svg_dir, *target, *write_out, *results;
    const char *cheap, *top;
    const char *verifier, *verifier_tier;
    struct vpatterns pats;
    struct ev_price prices[MAX_PRICES];
    size_t n_prices;
    double step;
};

static const char report_usage[] =
    "usage: kascade eval -i OUTCOMES.jsonl [--score-model ROUTER.lrm]\n"
    "         [--price TIER=IN:OUT]... [--cheap TIER] [--top TIER]\n"
    "         [--target top-1|top-K|Q] [--step 0.05] [--svg-dir DIR]\n"
    "         [--verifier VERIFIER.lrm [--verifier-tier TIER]\n"
    "          [--answer-pattern TYPE=REGEX]...] [--write-outcomes OUT]\n"
    "         [--escalate-context final|answer|full|none]\n"
    "       kascade eval -i OUTCOMES.jsonl --results RESULTS.jsonl\n"
    "  OUTCOMES: one task a line, what every tier answered (see README,\n"
    "  \"Measuring your own workload\"); --price in USD per million\n"
    "  input:output tokens fills in a missing cost_usd; the target\n"
    "  (default top-1: the top tier's accuracy minus 1 point) is where\n"
    "  the saving is read. --verifier scores the cheap tier's answers\n"
    "  (or --verifier-tier's) as the worker would: source \"verifier\".\n"
    "  --write-outcomes writes the input with every computed score added\n"
    "  (cross-fitting: score a fold with models trained on the others).\n"
    "  --escalate-context: what an escalated call reads of the cheap\n"
    "  answer (the top tier's escalate_context: final (default), answer,\n"
    "  full or none), priced at the top tier's input price in the\n"
    "  cascade's cost.\n"
    "  --results: a real run's Results (kascade submit -o) graded by the\n"
    "  labels of the same ids.\n";

static int parse_args(int argc, char **argv, struct ev_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->target = "top-1";
    o->step = 0.05;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(report_usage, stdout);
            return 1;
        }
        if (!v) {
            goto usage;
        }
        i++;
        if (strcmp(a, "-i") == 0) {
            o->in = v;
        } else if (strcmp(a, "--score-model") == 0) {
            o->score_model = v;
        } else if (strcmp(a, "--results") == 0) {
            o->results = v;
        } else if (strcmp(a, "--write-outcomes") == 0) {
            o->write_out = v;
        } else if (strcmp(a, "--svg-dir") == 0) {
            o->svg_dir = v;
        } else if (strcmp(a, "--target") == 0) {
            o->target = v;
        } else if (strcmp(a, "--verifier") == 0) {
            o->verifier = v;
        } else if (strcmp(a, "--verifier-tier") == 0) {
            o->verifier_tier = v;
        } else if (strcmp(a, "--answer-pattern") == 0) {
            if (vpatterns_add(&o->pats, v) != 0) {
                return -1;
            }
        } else if (strcmp(a, "--cheap") == 0) {
            o->cheap = v;
        } else if (strcmp(a, "--top") == 0) {
            o->top = v;
        } else if (strcmp(a, "--step") == 0) {
            if (cli_parse_dbl(a, v, &o->step) != 0 || !(o->step > 0.001) ||
                o->step > 0.5) {
                fputs("kascade eval: --step must be in (0.001, 0.5]\n", stderr);
                return -1;
            }
        } else if (strcmp(a, "--escalate-context") == 0) {
            enum ks_escalate_context r;

            if (ev_escalation_read_parse(v, &r) != 0) {
                return -1;
            }
            ev_escalation_read_set(r);
        } else if (strcmp(a, "--price") == 0) {
            if (o->n_prices == MAX_PRICES ||
                ev_price_parse(v, &o->prices[o->n_prices]) != 0) {
                fprintf(stderr,
                        "kascade eval: bad --price '%s' (want "
                        "TIER=IN:OUT, USD per million tokens)\n",
                        v);
                return -1;
            }
            o->n_prices++;
        } else {
            goto usage;
        }
    }
    if (o->in) {
        return 0;
    }
usage:
    fputs(report_usage, stderr);
    return -1;
}

int ev_target_parse(const char *s, double top_quality, double *q)
{
    double v;

    if (strncmp(s, "top-", 4) == 0) {
        if (ks_parse_double(s + 4, &v) != 0 || v < 0 || v > 100) {
            return -1;
        }
        *q = top_quality - v / 100.0;
        return 0;
    }
    if (ks_parse_double(s, &v) != 0 || v < 0 || v > 1) {
        return -1;
    }
    *q = v;
    return 0;
}

int ev_pick_pair(const struct ev_set *set,
                 const char *cheap,
                 const char *top,
                 size_t *lo,
                 size_t *hi)
{
    int l = cheap ? ev_tier_index(set, cheap) : 0;
    int h = top ? ev_tier_index(set, top) : (int)set->n_tiers - 1;

    if (l < 0 || h < 0 || l == h) {
        fprintf(stderr, "kascade: --cheap/--top must name two different "
                        "tiers of the outcomes\n");
        return -1;
    }
    *lo = (size_t)l;
    *hi = (size_t)h;
    return 0;
}

int ev_score_tasks(struct ev_set *set, const char *model_path, bool missing)
{
    char errstr[512];
    struct ks_lr_model *m = ks_lr_load(model_path, errstr, sizeof(errstr));

    if (!m) {
        fprintf(stderr, "kascade: %s\n", errstr);
        return -1;
    }
    if (strcmp(ks_lr_kind(m), "router") != 0) {
        fprintf(stderr, "kascade: %s is a %s model, not a router one\n",
                model_path, ks_lr_kind(m));
        ks_lr_destroy(m);
        return -1;
    }
    for (size_t i = 0; i < set->n; i++) {
        const char *p = set->tasks[i].prompt;

        if (missing && !isnan(set->tasks[i].router_score)) {
            continue;
        }
        /* The calibrated score of the task as the router sees it (text
         * and type; metadata is not in the outcomes): what it compares. */
        struct ks_lr_task task = {.type = set->tasks[i].has_type
                                              ? set->types[set->tasks[i].type]
                                              : NULL,
                                  .text = p,
                                  .len = strlen(p)};

        set->tasks[i].router_score = ks_lr_score_task(m, &task);
    }
    ks_lr_destroy(m);
    return 0;
}

static double pctl(double *v, size_t n, double q)
{
    size_t k;

    if (n == 0) {
        return NAN;
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is small */
        double x = v[i];
        size_t j = i;

        for (; j > 0 && v[j - 1] > x; j--) {
            v[j] = v[j - 1];
        }
        v[j] = x;
    }
    k = (size_t)ceil(q * (double)n);
    return v[k ? k - 1 : 0];
}

static void print_tiers(const struct ev_set *set, const struct ev_task **t)
{
    double *lat = ks_xmalloc(set->n * sizeof(*lat));

    printf("== tiers (%zu tasks)\n", set->n);
    printf("  %-12s %8s %12s %12s %9s %9s %9s\n", "tier", "quality", "usd/task",
           "usd total", "p50 ms", "p95 ms", "truncated");
    for (size_t k = 0; k < set->n_tiers; k++) {
        size_t nl = 0, trunc = 0;
        double q, c;

        ev_tier_mean(t, set->n, k, &q, &c);
        for (size_t i = 0; i < set->n; i++) {
            if (!isnan(t[i]->t[k].latency_ms)) {
                lat[nl++] = t[i]->t[k].latency_ms;
            }
            trunc += t[i]->t[k].truncated;
        }
        printf("  %-12s %8.4f %12.6f %12.4f", set->tiers[k], q, c,
               c * (double)set->n);
        if (nl) {
            printf(" %9.0f %9.0f", pctl(lat, nl, 0.5), pctl(lat, nl, 0.95));
        } else {
            printf(" %9s %9s", "-", "-");
        }
        printf(" %8.1f%%\n", 100.0 * (double)trunc / (double)set->n);
    }
    free(lat);
}

static void print_types(const struct ev_set *set, const struct ev_task **t)
{
    const struct ev_task **sub = ks_xmalloc(set->n * sizeof(*sub));

    printf("== by task type: quality / usd per task\n  %-16s %6s", "type",
           "tasks");
    for (size_t k = 0; k < set->n_tiers; k++) {
        printf(" %20s", set->tiers[k]);
    }
    printf("\n");
    for (size_t ty = 0; ty < set->n_types; ty++) {
        size_t m = 0;

        for (size_t i = 0; i < set->n; i++) {
            if (t[i]->type == ty) {
                sub[m++] = t[i];
            }
        }
        printf("  %-16s %6zu", set->types[ty], m);
        for (size_t k = 0; k < set->n_tiers; k++) {
            double q, c;

            ev_tier_mean(sub, m, k, &q, &c);
            printf(" %8.4f / %9.6f", q, c);
        }
        printf("\n");
    }
    free(sub);
}

static void print_share(double v)
{
    if (v < 0) {
        printf(" %8s", "never");
    } else {
        printf(" %7.1f%%", 100 * v);
    }
}

/* 1 - cost / all_top in percent, without a "-0.0" from rounding. */
static double saving_pct(double cost, double all_top)
{
    double v = 100 * (1 - cost / all_top);

    return fabs(v) < 0.005 ? 0 : v;
}

static void curve_row(const char *name,
                      const struct ev_curve *c,
                      double q,
                      double all_top)
{
    double share = 0, cc = ev_cost_at(c, q, true, &share), rs = 0;
    double rc = ev_cost_at(c, q, false, &rs);

    printf("  %-22s", name);
    print_share(ev_cpt(c, 0.5));
    print_share(ev_cpt(c, 0.8));
    printf(" %6.3f", ev_apgr(c));
    if (cc < 0) {
        printf(" %9s %7s", "never", "-");
    } else {
        printf(" %8.1f%% %6.1f%%", saving_pct(cc, all_top), 100 * share);
    }
    if (rc < 0) {
        printf(" %9s\n", "never");
    } else {
        printf(" %8.1f%%\n", saving_pct(rc, all_top));
    }
}

static void print_curves(const struct ev_set *set,
                         const struct ev_signals *s,
                         size_t lo,
                         size_t hi,
                         double q,
                         double all_top)
{
    const struct ev_curve *c = &s->c[0];

    printf("== curves: %s -> %s (all-%s %.4f at %.6f USD/task, all-%s "
           "%.4f at %.6f)\n",
           set->tiers[lo], set->tiers[hi], set->tiers[lo], c->acc[0],
           c->cost_route[0], set->tiers[hi], c->acc[c->n], all_top);
    printf("  quality target %.4f; saving = 1 - cost / all-%s cost; "
           "cascade pays the cheap call too\n",
           q, set->tiers[hi]);
    if (!(c->acc[c->n] > c->acc[0])) {
        printf("  the top tier is not more accurate than the cheap one: "
               "CPT and APGR are undefined\n");
    }
    printf("  %-22s %8s %8s %6s %9s %7s %9s\n", "signal", "CPT(50%)",
           "CPT(80%)", "APGR", "cascade", "up", "routing");
    for (size_t j = 0; j < s->n; j++) {
        curve_row(ev_signal_name(set, s->sig[j]), &s->c[j], q, all_top);
    }
}

static void print_sweep(const struct ev_set *set,
                        const struct ev_task **t,
                        size_t lo,
                        size_t hi,
                        int sig,
                        double step,
                        double all_top)
{
    struct ev_policy p = {.route_at = NAN};
    bool router = sig == EV_SIG_ROUTER;

    if (router) {
        printf("== sweep: router score (to %s at or above t; else %s "
               "without escalation)\n",
               set->tiers[hi], set->tiers[lo]);
    } else {
        printf("== sweep: %s (escalate %s -> %s below t)\n", set->src[sig],
               set->tiers[lo], set->tiers[hi]);
        p.src = (size_t)sig;
    }
    printf("  %6s %8s %8s %12s %8s\n", "t", "up", "quality", "usd/task",
           "saving");
    for (int k = 0; k * step <= 1 + 1e-9; k++) {
        double th = round(k * step * 1e9) / 1e9;
        struct ev_result r;

        for (size_t ty = 0; ty < EV_MAX_TYPES; ty++) {
            p.below[ty] = router ? -1 : th;
        }
        p.route_at = router ? th : NAN;
        ev_policy_apply(&p, t, set->n, lo, hi, &r);
        printf("  %6.2f %7.1f%% %8.4f %12.6f %7.1f%%\n", th,
               100 * (r.escalated + r.routed), r.quality, r.cost,
               100 * (1 - r.cost / all_top));
    }
}

static void print_reliability(const struct ev_set *set,
                              int sig,
                              const struct ev_rel *rel)
{
    printf("== reliability: %s (%s), %zu of %zu tasks with a value\n",
           ev_signal_name(set, sig),
           sig == EV_SIG_ROUTER ? "P(cheap tier wrong)"
                                : "P(cheap answer right)",
           rel->n, set->n);
    if (rel->n == 0) {
        return;
    }
    printf("  %-9s %7s %10s %9s\n", "bin", "count", "mean_pred", "observed");
    for (int b = 0; b < EV_BINS; b++) {
        printf("  %.1f-%.1f   %7zu", b / 10.0, (b + 1) / 10.0, rel->count[b]);
        if (rel->count[b]) {
            printf(" %10.3f %9.3f\n", rel->mean_p[b], rel->observed[b]);
        } else {
            printf(" %10s %9s\n", "-", "-");
        }
    }
    printf("  expected calibration error %.4f; values %.4f .. %.4f\n", rel->ece,
           rel->min, rel->max);
    if (rel->max - rel->min < 1e-9) {
        printf("  WARNING: %s is constant (%.4f on every task): it cannot "
               "tell tasks apart and its curve is random's (a collapsed "
               "calibration?)\n",
               ev_signal_name(set, sig), rel->min);
    }
}

int eval_outcomes(int argc, char **argv)
{
    struct ev_opts o;
    struct ev_set set = {0};
    struct ev_signals s = {0};
    const struct ev_task **t = NULL;
    size_t lo, hi, n_real;
    double q, all_top, top_q;
    int r = parse_args(argc, argv, &o), status = 1;

    if (r != 0) {
        vpatterns_fini(&o.pats);
        return r > 0 ? 0 : 2;
    }
    if (ev_set_read(&set, o.in, o.prices, o.n_prices) != 0 ||
        ev_pick_pair(&set, o.cheap, o.top, &lo, &hi) != 0 ||
        (o.score_model && ev_score_tasks(&set, o.score_model, false) != 0) ||
        (o.verifier &&
         ev_verifier_fill(&set, o.in, o.verifier,
                          o.verifier_tier ? o.verifier_tier : set.tiers[lo],
                          &o.pats, false) != 0)) {
        goto out;
    }
    if (o.results) {
        status = ev_results_report(&set, o.results) == 0 ? 0 : 1;
        goto out;
    }
    if (o.write_out && ev_set_write_scored(&set, o.in, o.write_out) != 0) {
        goto out;
    }
    t = ks_xmalloc(set.n * sizeof(*t));
    for (size_t i = 0; i < set.n; i++) {
        t[i] = &set.tasks[i];
    }
    ev_tier_mean(t, set.n, hi, &top_q, &all_top);
    if (ev_target_parse(o.target, top_q, &q) != 0) {
        fprintf(stderr, "kascade eval: --target must be top-K (points "
                        "below the top tier) or a share in [0,1]\n");
        status = 2;
        goto out;
    }
    print_tiers(&set, t);
    print_types(&set, t);
    ev_signals_build(&set, t, lo, hi, &s);
    print_curves(&set, &s, lo, hi, q, all_top);
    n_real = s.n_real; /* without the baselines */
    for (size_t j = 0; j < n_real; j++) {
        struct ev_rel rel;

        print_sweep(&set, t, lo, hi, s.sig[j], o.step, all_top);
        ev_reliability_of(t, set.n, lo, s.sig[j], &rel);
        print_reliability(&set, s.sig[j], &rel);
    }
    if (o.svg_dir &&
        (ev_plot_curves(o.svg_dir, &set, &s, lo, hi) != 0 ||
         ev_plot_reliability(o.svg_dir, &set, t, s.sig, n_real, lo) != 0)) {
        goto out;
    }
    if (o.svg_dir) {
        printf("plots: %s/quality_cost.svg, %s/reliability.svg\n", o.svg_dir,
               o.svg_dir);
    }
    status = 0;
out:
    for (size_t j = 0; j < s.n; j++) {
        ev_curve_fini(&s.c[j]);
    }
    free(t);
    ev_set_free(&set);
    vpatterns_fini(&o.pats);
    return status;
}
