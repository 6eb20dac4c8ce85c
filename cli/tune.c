/*
 * tune.c - `kascade tune`: thresholds for a quality target at the least
 * cost, from labelled outcomes (eval_outcomes.h).
 *
 *   kascade tune -i TRAIN.jsonl --target top-1 [--test TEST.jsonl] ...
 *       searches the training outcomes (tune_search.h) for the cheap
 *       tier's escalate_below (per task type where a type has
 *       --min-per-type examples) and, with router scores, the router's
 *       score_threshold; prints the expected quality, cost and escalation
 *       share on the test outcomes (or a --holdout share of the file)
 *       with bootstrap 95% intervals, and writes a config fragment (-o)
 *       or a whole config (--config BASE --write-config OUT).
 *   kascade tune --check CONFIG -i OUTCOMES.jsonl ...
 *       predicts what CONFIG's thresholds give on the outcomes.
 *
 * The thresholds are compared exactly as the worker and the router do:
 * escalate when the confidence is below escalate_below (a missing
 * confidence never escalates), one tier up when the calibrated router
 * score is at or above score_threshold.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "cli.h"
#include "eval_report.h"
#include "eval_verify.h"
#include "jsonl.h"
#include "tune_config.h"
#include "tune_search.h"
#include "tune_transfer.h"

#include "base/banned.h"

#define MAX_PRICES 16

struct tune_opts {
    const char *in, *test, *target, *source, *out, *check;
    const char *base, *write_config, *deploy;
    const char *score_model, *verifier, *verifier_tier, *cheap, *top;
    struct vpatterns pats;
    struct ev_price prices[MAX_PRICES];
    size_t n_prices;
    double holdout;
    int64_t min_type, boot, seed;
};

static const char tune_usage[] =
    "usage: kascade tune -i TRAIN.jsonl --target top-K|Q [--test TEST.jsonl "
    "|\n"
    "         --holdout SHARE] [--source NAME] [--min-per-type 100]\n"
    "         [-o FRAGMENT.json] [--config BASE.json --write-config "
    "OUT.json]\n"
    "       kascade tune --check CONFIG.json -i OUTCOMES.jsonl [--source "
    "NAME]\n"
    "  common: [--verifier VERIFIER.lrm [--verifier-tier TIER]\n"
    "          [--answer-pattern TYPE=REGEX]...] [--score-model ROUTER.lrm]\n"
    "          [--cheap TIER] [--top TIER] [--price TIER=IN:OUT]...\n"
    "          [--bootstrap 1000] [--seed 1] [--escalate-context MODE]\n"
    "          [--deploy-scores OUTCOMES.jsonl]\n"
    "  --target top-1: the top tier's quality (on the training outcomes)\n"
    "  minus 1 point; 0.92: an absolute share right. The source is the\n"
    "  confidence the cheap tier's escalate_below is compared with\n"
    "  (default: \"verifier\" with --verifier, else the file's first;\n"
    "  \"none\": no escalation, only the router's score_threshold).\n"
    "  Tune on outcomes the verifier and router models were not trained\n"
    "  on: their scores on their own training tasks are optimistic.\n"
    "  Scores already in the file (router_score, confidence) are used as\n"
    "  they are (cross-fitting); --score-model and --verifier score only\n"
    "  the tasks without one; --score-model is also the model the written\n"
    "  config deploys. Escalated calls are priced as the fleet pays them:\n"
    "  the top tier's call plus what it reads of the cheap answer\n"
    "  (--escalate-context, the top tier's escalate_context: final\n"
    "  (default), answer, full or none) at the top tier's input price\n"
    "  (--price).\n"
    "  --deploy-scores: outcomes (labels not read) scored by the verifier\n"
    "  the config deploys, on tasks it was not trained on; each chosen\n"
    "  escalate_below becomes the threshold that sends up the same share\n"
    "  of them (cross-fitted fold models and the deployed model score on\n"
    "  different scales).\n";

static int opt_str(const char *a, const char *v, struct tune_opts *o)
{
    static const struct {
        const char *flag;
        size_t off;
    } strs[] = {
        {"-i", offsetof(struct tune_opts, in)},
        {"--test", offsetof(struct tune_opts, test)},
        {"--target", offsetof(struct tune_opts, target)},
        {"--source", offsetof(struct tune_opts, source)},
        {"-o", offsetof(struct tune_opts, out)},
        {"--check", offsetof(struct tune_opts, check)},
        {"--config", offsetof(struct tune_opts, base)},
        {"--write-config", offsetof(struct tune_opts, write_config)},
        {"--score-model", offsetof(struct tune_opts, score_model)},
        {"--verifier", offsetof(struct tune_opts, verifier)},
        {"--verifier-tier", offsetof(struct tune_opts, verifier_tier)},
        {"--cheap", offsetof(struct tune_opts, cheap)},
        {"--deploy-scores", offsetof(struct tune_opts, deploy)},
        {"--top", offsetof(struct tune_opts, top)},
    };

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (strcmp(a, strs[i].flag) == 0) {
            *(const char **)((char *)o + strs[i].off) = v;
            return 1;
        }
    }
    return 0;
}

static int opt_other(const char *a, const char *v, struct tune_opts *o)
{
    if (strcmp(a, "--holdout") == 0) {
        if (cli_parse_dbl(a, v, &o->holdout) != 0 || o->holdout <= 0 ||
            o->holdout >= 1) {
            fputs("kascade tune: --holdout must be in (0,1)\n", stderr);
            return -1;
        }
    } else if (strcmp(a, "--min-per-type") == 0) {
        return cli_parse_u64(a, v, 1, 100000000, &o->min_type);
    } else if (strcmp(a, "--bootstrap") == 0) {
        return cli_parse_u64(a, v, 10, 100000, &o->boot);
    } else if (strcmp(a, "--seed") == 0) {
        return cli_parse_u64(a, v, 0, INT64_MAX, &o->seed);
    } else if (strcmp(a, "--answer-pattern") == 0) {
        return vpatterns_add(&o->pats, v);
    } else if (strcmp(a, "--escalate-context") == 0) {
        enum ks_escalate_context r;

        if (ev_escalation_read_parse(v, &r) != 0) {
            return -1;
        }
        ev_escalation_read_set(r);
    } else if (strcmp(a, "--price") == 0) {
        if (o->n_prices == MAX_PRICES ||
            ev_price_parse(v, &o->prices[o->n_prices]) != 0) {
            fprintf(stderr, "kascade tune: bad --price '%s'\n", v);
            return -1;
        }
        o->n_prices++;
    } else {
        fputs(tune_usage, stderr);
        return -1;
    }
    return 0;
}

/* Returns 0, 1 for --help, -1 for bad flags (reported). */
static int parse_args(int argc, char **argv, struct tune_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->min_type = 100;
    o->boot = 1000;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(tune_usage, stdout);
            return 1;
        }
        if (!v) {
            fputs(tune_usage, stderr);
            return -1;
        }
        i++;
        if (!opt_str(a, v, o) && opt_other(a, v, o) != 0) {
            return -1;
        }
    }
    if (!o->in || (!o->check && !o->target) || (o->test && o->holdout > 0) ||
        (!!o->base != !!o->write_config)) {
        fputs(tune_usage, stderr);
        return -1;
    }
    return 0;
}

/* Reads an outcomes file with the signals the options ask for. */
static int load(const struct tune_opts *o,
                const char *path,
                struct ev_set *set,
                size_t *lo,
                size_t *hi)
{
    if (ev_set_read(set, path, o->prices, o->n_prices) != 0 ||
        ev_pick_pair(set, o->cheap, o->top, lo, hi) != 0 ||
        (o->score_model && ev_score_tasks(set, o->score_model, true) != 0)) {
        return -1;
    }
    if (o->verifier &&
        ev_verifier_fill(set, path, o->verifier,
                         o->verifier_tier ? o->verifier_tier : set->tiers[*lo],
                         &o->pats, true) != 0) {
        return -1;
    }
    return 0;
}

/* A source by name; "none" is a slot no task has a value in (the cheap
 * tier never escalates: only the router's threshold is searched). */
static int tune_src_index(const struct ev_set *set, const char *name)
{
    if (name && strcmp(name, "none") == 0) {
        return set->n_src < EV_MAX_SOURCES ? (int)set->n_src : -1;
    }
    return name ? ev_src_index(set, name) : -1;
}

static int pick_source(const struct tune_opts *o,
                       const struct ev_set *set,
                       size_t *src)
{
    const char *name = o->source     ? o->source
                       : o->verifier ? "verifier"
                       : set->n_src  ? set->src[0]
                                     : NULL;
    int s = tune_src_index(set, name);

    if (s < 0) {
        fprintf(stderr,
                "kascade tune: no confidence source %s%s in the "
                "outcomes (give --source, or --verifier)\n",
                name ? "named " : "", name ? name : "");
        return -1;
    }
    *src = (size_t)s;
    return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* 2.5% and 97.5% of v[0..n-1] (sorted in place). */
static void interval(double *v, size_t n, double *lo, double *hi)
{
    qsort(v, n, sizeof(*v), cmp_dbl);
    *lo = v[(size_t)(0.025 * (double)(n - 1) + 0.5)];
    *hi = v[(size_t)(0.975 * (double)(n - 1) + 0.5)];
}

/* The policy on t[0..n-1] with bootstrap intervals, next to all-top. */
static void report(const struct ev_policy *p,
                   const struct ev_task **t,
                   size_t n,
                   size_t lo,
                   size_t hi,
                   const struct tune_opts *o,
                   const char *what,
                   double target)
{
    size_t b = (size_t)o->boot;
    double *q = ks_xmalloc(b * sizeof(*q)), *c = ks_xmalloc(b * sizeof(*c));
    double *e = ks_xmalloc(b * sizeof(*e)), *sv = ks_xmalloc(b * sizeof(*sv));
    const struct ev_task **r = ks_xmalloc(n * sizeof(*r));
    uint64_t seed = (uint64_t)o->seed;
    struct ev_result res;
    double top_q, top_c, ql, qh, cl, ch, el, eh, sl, sh;

    ev_policy_apply(p, t, n, lo, hi, &res);
    ev_tier_mean(t, n, hi, &top_q, &top_c);
    for (size_t k = 0; k < b; k++) {
        struct ev_result x;
        double tq, tc;

        for (size_t i = 0; i < n; i++) {
            r[i] = t[ev_rand(&seed) % n];
        }
        ev_policy_apply(p, r, n, lo, hi, &x);
        ev_tier_mean(r, n, hi, &tq, &tc);
        q[k] = x.quality;
        c[k] = x.cost;
        e[k] = x.escalated + x.routed;
        sv[k] = tc > 0 ? 1 - x.cost / tc : 0;
    }
    interval(q, b, &ql, &qh);
    interval(c, b, &cl, &ch);
    interval(e, b, &el, &eh);
    interval(sv, b, &sl, &sh);
    printf("expected on %s (%zu tasks; 95%% bootstrap intervals, %zu "
           "resamples):\n",
           what, n, b);
    printf("  quality        %.4f  [%.4f, %.4f]   (top tier alone %.4f; "
           "target %.4f: %s)\n",
           res.quality, ql, qh, top_q, target,
           res.quality >= target - 1e-12 ? "met" : "NOT met");
    printf("  usd per task   %.6f  [%.6f, %.6f]   (all-top %.6f)\n", res.cost,
           cl, ch, top_c);
    printf("  saving         %.1f%%  [%.1f%%, %.1f%%] of the all-top cost\n",
           100 * (top_c > 0 ? 1 - res.cost / top_c : 0), 100 * sl, 100 * sh);
    printf("  sent up        %.1f%%  [%.1f%%, %.1f%%]   (escalated %.1f%%, "
           "routed by the score %.1f%%)\n",
           100 * (res.escalated + res.routed), 100 * el, 100 * eh,
           100 * res.escalated, 100 * res.routed);
    free(q);
    free(c);
    free(e);
    free(sv);
    free(r);
}

static void print_choice(const struct tune_choice *c,
                         const struct ev_set *set,
                         size_t lo,
                         size_t src)
{
    printf("chosen (source %s on tier %s):\n  escalate_below %.6g\n",
           src < set->n_src ? set->src[src] : "none", set->tiers[lo],
           c->below_rest);
    for (size_t ty = 0; ty < set->n_types; ty++) {
        if (c->own[ty]) {
            printf("  escalate_below_types.%s %.6g\n", set->types[ty],
                   c->policy.below[ty]);
        }
    }
    if (isnan(c->policy.route_at)) {
        printf("  no router score threshold (routing.score_threshold "
               "unset)\n");
    } else {
        printf("  routing.score_threshold %.6g\n", c->policy.route_at);
    }
    printf("on the training outcomes: quality %.4f, %.6f USD a task, "
           "%.1f%% sent up\n",
           c->r.quality, c->r.cost, 100 * (c->r.escalated + c->r.routed));
}

/* --deploy-scores: c's escalate_below thresholds carried onto the
 * deployed model's scores (tune_transfer.h). */
static int deploy_map(const struct tune_opts *o,
                      const struct ev_set *set,
                      const struct ev_task *const *tr,
                      size_t ntr,
                      size_t lo,
                      size_t src,
                      struct tune_choice *c)
{
    struct ev_set dep = {0};
    size_t dlo;
    int dsrc, rc = -1;

    dep.unlabelled = true;
    if (ev_set_read(&dep, o->deploy, o->prices, o->n_prices) != 0 ||
        (o->score_model && ev_score_tasks(&dep, o->score_model, true) != 0)) {
        goto out;
    }
    if (src >= set->n_src) {
        rc = tune_transfer(c, set, tr, ntr, lo, src, &dep, 0, 0);
        goto out;
    }
    for (dlo = 0; dlo < dep.n_tiers; dlo++) {
        if (strcmp(dep.tiers[dlo], set->tiers[lo]) == 0) {
            break;
        }
    }
    if (dlo < dep.n_tiers && o->verifier &&
        ev_verifier_fill(&dep, o->deploy, o->verifier,
                         o->verifier_tier ? o->verifier_tier : dep.tiers[dlo],
                         &o->pats, true) != 0) {
        goto out;
    }
    dsrc = tune_src_index(&dep, set->src[src]);
    if (dsrc < 0 || dlo == dep.n_tiers) {
        fprintf(stderr, "kascade tune: %s lacks source %s or tier %s\n",
                o->deploy, set->src[src], set->tiers[lo]);
        goto out;
    }
    rc = tune_transfer(c, set, tr, ntr, lo, src, &dep, dlo, (size_t)dsrc);
out:
    ev_set_free(&dep);
    return rc;
}

static int tune_run(const struct tune_opts *o)
{
    struct ev_set set = {0}, test = {0};
    const struct ev_task **tr = NULL, **te = NULL;
    size_t lo, hi, src, ntr = 0, nte = 0;
    double top_q, top_c, target;
    struct tune_choice c;
    struct tune_out_args w;
    int status = 1;

    if (load(o, o->in, &set, &lo, &hi) != 0 || pick_source(o, &set, &src)) {
        goto out;
    }
    if (o->holdout > 0) {
        ev_set_split(&set, 1 - o->holdout, (uint64_t)o->seed, &tr, &ntr, &te,
                     &nte);
    } else {
        ev_set_split(&set, 1, 0, &tr, &ntr, &te, &nte);
    }
    ev_tier_mean(tr, ntr, hi, &top_q, &top_c);
    if (ntr == 0 || ev_target_parse(o->target, top_q, &target) != 0) {
        fputs("kascade tune: --target must be top-K or a share in [0,1], "
              "and the training part must not be empty\n",
              stderr);
        status = 2;
        goto out;
    }
    printf("training outcomes: %zu tasks; all-%s %.4f at %.6f USD a task; "
           "target %.4f\n",
           ntr, set.tiers[hi], top_q, top_c, target);
    tune_search(tr, ntr, set.n_types, lo, hi, src, target, (size_t)o->min_type,
                o->score_model != NULL, &c);
    if (!c.found) {
        printf("no thresholds reach %.4f on the training outcomes\n", target);
        goto out;
    }
    print_choice(&c, &set, lo, src);
    if (c.r.cost > top_c) {
        /* Escalated calls pay twice (and read the cheap answer): near the
         * target a cascade can cost more than no cascade at all. */
        printf("NOTE: this cascade costs more than the top tier alone "
               "(%.6f against %.6f USD a task): at this target, send the "
               "tasks straight to tier %s, or escalate_context \"none\"\n",
               c.r.cost, top_c, set.tiers[hi]);
    }
    if (o->deploy && deploy_map(o, &set, tr, ntr, lo, src, &c) != 0) {
        goto out;
    }
    if (o->test) {
        size_t tlo, thi;

        free(te);
        te = NULL;
        int tsrc;

        if (load(o, o->test, &test, &tlo, &thi) != 0) {
            goto out;
        }
        tsrc = tune_src_index(&test, src < set.n_src ? set.src[src] : "none");
        if (tsrc < 0 || strcmp(test.tiers[tlo], set.tiers[lo]) != 0 ||
            strcmp(test.tiers[thi], set.tiers[hi]) != 0) {
            fprintf(stderr,
                    "kascade tune: %s lacks the source or the tiers of %s\n",
                    o->test, o->in);
            goto out;
        }
        te = ks_xmalloc(test.n * sizeof(*te));
        for (size_t i = 0; i < test.n; i++) {
            te[i] = &test.tasks[i];
        }
        nte = test.n;
        /* Per-type thresholds follow the type's name, not its index. */
        tune_remap(&c, &set, &test, (size_t)tsrc);
    }
    if (nte) {
        double tq, tc, tt;

        ev_tier_mean(te, nte, hi, &tq, &tc);
        tt = target;
        if (strncmp(o->target, "top-", 4) == 0) {
            ev_target_parse(o->target, tq, &tt);
        }
        report(&c.policy, te, nte, lo, hi, o, o->test ? o->test : "the holdout",
               tt);
    } else {
        report(&c.policy, tr, ntr, lo, hi, o,
               "the training outcomes (no "
               "test set: optimistic)",
               target);
    }
    w = (struct tune_out_args){.c = &c,
                               .set = o->test ? &test : &set,
                               .tier = set.tiers[lo],
                               .score_model = o->score_model};
    status = tune_write(&w, o->out, o->base, o->write_config) == 0 ? 0 : 1;
out:
    free(tr);
    free(te);
    ev_set_free(&set);
    ev_set_free(&test);
    return status;
}

static int tune_check(const struct tune_opts *o)
{
    struct ev_set set = {0};
    const struct ev_task **t = NULL;
    struct ev_policy p;
    size_t lo, hi, src;
    double top_q, top_c, target = 0;
    char *model = NULL;
    int status = 1;

    if (tune_read_config(o->check, &model) != 0) {
        goto out;
    }
    if (model && !o->score_model) {
        printf("router score model from the config: %s\n", model);
    }
    {
        struct tune_opts o2 = *o;

        o2.score_model = o->score_model ? o->score_model : model;
        if (load(&o2, o->in, &set, &lo, &hi) != 0 ||
            pick_source(&o2, &set, &src) != 0) {
            goto out;
        }
    }
    if (tune_policy_of_config(o->check, &set, lo, src, &p) != 0) {
        goto out;
    }
    t = ks_xmalloc(set.n * sizeof(*t));
    for (size_t i = 0; i < set.n; i++) {
        t[i] = &set.tasks[i];
    }
    ev_tier_mean(t, set.n, hi, &top_q, &top_c);
    if (o->target && ev_target_parse(o->target, top_q, &target) != 0) {
        goto out;
    }
    report(&p, t, set.n, lo, hi, o, o->in, target);
    status = 0;
out:
    free(model);
    free(t);
    ev_set_free(&set);
    return status;
}

int cli_tune(int argc, char **argv)
{
    struct tune_opts o;
    int r = parse_args(argc, argv, &o), status;

    if (r != 0) {
        vpatterns_fini(&o.pats);
        return r > 0 ? 0 : 2;
    }
    status = o.check ? tune_check(&o) : tune_run(&o);
    vpatterns_fini(&o.pats);
    return status;
}
