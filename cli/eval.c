/*
 * eval.c - `kascade eval`: what routing by the learned score would cost
 * and gain on a test set, against random routing and an oracle (see
 * train.c for the definitions of CPT and APGR), or, for a triage model,
 * accuracy, calibration and what each escalation threshold keeps.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "cli.h"
#include "eval_report.h"
#include "jsonl.h"
#include "learn/lr.h"

#include "base/banned.h"

/* ---- eval ---- */

struct eval_item {
    double score;
    size_t line;
    bool weak, strong;
};

static int cmp_item(const void *a, const void *b)
{
    const struct eval_item *x = a, *y = b;

    /* The calibrated score alone: it is what the router compares with
     * routing.score_threshold; the raw margin would order tasks the
     * router cannot tell apart (a collapsed calibration). */
    if (x->score != y->score) {
        return x->score > y->score ? -1 : 1;
    }
    return x->line < y->line ? -1 : x->line > y->line;
}

/* acc[k], k = 0..n: accuracy with the first k items on the strong model. */
static void curve(const struct eval_item *it, size_t n, double *acc)
{
    size_t weak_right = 0, right;

    for (size_t i = 0; i < n; i++) {
        weak_right += it[i].weak;
    }
    right = weak_right;
    acc[0] = (double)right / (double)n;
    for (size_t k = 0; k < n; k++) {
        right = right - it[k].weak + it[k].strong;
        acc[k + 1] = (double)right / (double)n;
    }
}

/* The curve of items sorted by score: tasks with the same score cannot be
 * told apart by a threshold, so a tied group is crossed on a straight
 * line (the expectation over its orders). */
static void curve_ties(const struct eval_item *it, size_t n, double *acc)
{
    curve(it, n, acc);
    for (size_t s = 0, e; s < n; s = e) {
        for (e = s + 1; e < n && it[e].score == it[s].score; e++) {
        }
        for (size_t k = s + 1; k < e; k++) {
            acc[k] =
                acc[s] + (acc[e] - acc[s]) * (double)(k - s) / (double)(e - s);
        }
    }
}

/* CPT(x) of a curve as a share of strong calls, or -1 when never met. */
static double cpt(const double *acc, size_t n, double x)
{
    double target = acc[0] + x * (acc[n] - acc[0]);

    for (size_t k = 0; k <= n; k++) {
        if (acc[k] >= target - 1e-12) {
            return (double)k / (double)n;
        }
    }
    return -1;
}

static double apgr(const double *acc, size_t n)
{
    double gap = acc[n] - acc[0], s = 0;

    for (size_t k = 0; k < n; k++) {
        s += ((acc[k] - acc[0]) + (acc[k + 1] - acc[0])) / 2 / gap;
    }
    return s / (double)n;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char eval_usage[] =
    "usage: kascade eval -i OUTCOMES.jsonl ...   (the measurement "
    "framework;\n"
    "                                            eval -i X --help for more)\n"
    "       kascade eval --kind router|triage --model MODEL -i TEST.jsonl\n"
    "         [--rounds 200] [--seed 1]\n"
    "  router lines: {\"input\": \"...\", \"weak_correct\": true|false,\n"
    "                 \"strong_correct\": true|false}\n"
    "  triage lines: {\"input\": \"...\", \"label\": \"billing\"}\n";

/* Triage: accuracy, a reliability table, and what escalating below a
 * confidence threshold would keep (the tier's escalate_below). */
static int eval_triage(const struct ks_lr_model *m, const char *path)
{
    struct line_reader lr;
    cJSON *root = NULL;
    size_t n = 0, right = 0, unknown = 0, cap = 0;
    size_t count[KS_LR_CAL_BINS] = {0};
    double sum_p[KS_LR_CAL_BINS] = {0}, sum_ok[KS_LR_CAL_BINS] = {0};
    double *conf = NULL;
    bool *ok = NULL;
    int r, rc = 1;

    if (jsonl_open(&lr, path) != 0) {
        return 1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0) {
        const cJSON *in = jsonl_input(&lr, root);
        const cJSON *lab = cJSON_GetObjectItemCaseSensitive(root, "label");
        double p;
        int k;
        size_t b;
        bool known;

        if (!in) {
            goto out;
        }
        if (!cJSON_IsString(lab)) {
            jsonl_bad(&lr, "\"label\" must be a string");
            goto out;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            conf = ks_xrealloc(conf, cap * sizeof(*conf));
            ok = ks_xrealloc(ok, cap * sizeof(*ok));
        }
        k = ks_lr_classify(m, in->valuestring, strlen(in->valuestring), &p);
        conf[n] = p;
        ok[n] = strcmp(ks_lr_label(m, (size_t)k), lab->valuestring) == 0;
        known = false;
        for (size_t i = 0; i < ks_lr_n_labels(m); i++) {
            known = known || strcmp(ks_lr_label(m, i), lab->valuestring) == 0;
        }
        unknown += !known;
        right += ok[n];
        b = (size_t)(p * KS_LR_CAL_BINS);
        b = b >= KS_LR_CAL_BINS ? KS_LR_CAL_BINS - 1 : b;
        count[b]++;
        sum_p[b] += p;
        sum_ok[b] += ok[n];
        n++;
        cJSON_Delete(root);
        root = NULL;
    }
    if (r < 0) {
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "kascade eval: %s has no examples\n", path);
        goto out;
    }
    printf("%zu test examples, %zu labels in the model; accuracy %.4f", n,
           ks_lr_n_labels(m), (double)right / (double)n);
    if (unknown) {
        printf(" (%zu with a label the model does not know)", unknown);
    }
    printf("\ncalibration (top label's probability against the share "
           "right):\n");
    printf("  %-9s %7s %10s %9s\n", "bin", "count", "mean_pred", "observed");
    for (int b = 0; b < KS_LR_CAL_BINS; b++) {
        printf("  %.1f-%.1f   %7zu", b / 10.0, (b + 1) / 10.0, count[b]);
        if (count[b]) {
            printf(" %10.3f %9.3f\n", sum_p[b] / (double)count[b],
                   sum_ok[b] / (double)count[b]);
        } else {
            printf(" %10s %9s\n", "-", "-");
        }
    }
    printf("escalating below a threshold: share kept, accuracy of the kept\n");
    printf("  %9s %7s %9s\n", "threshold", "kept", "accuracy");
    for (int t = 0; t <= 9; t++) {
        size_t kept = 0, kept_ok = 0;

        for (size_t i = 0; i < n; i++) {
            if (conf[i] >= t / 10.0) {
                kept++;
                kept_ok += ok[i];
            }
        }
        printf("  %9.1f %6.1f%%", t / 10.0, 100.0 * (double)kept / (double)n);
        if (kept) {
            printf(" %9.4f\n", (double)kept_ok / (double)kept);
        } else {
            printf(" %9s\n", "-");
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    jsonl_close(&lr);
    free(conf);
    free(ok);
    return rc;
}

static int eval_read(const struct ks_lr_model *m,
                     const char *path,
                     struct eval_item **items,
                     size_t *n)
{
    struct line_reader lr;
    cJSON *root = NULL;
    size_t cap = 0;
    int r, rc = -1;

    *items = NULL;
    *n = 0;
    if (jsonl_open(&lr, path) != 0) {
        return -1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0) {
        const cJSON *in = jsonl_input(&lr, root);
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "weak_correct");
        const cJSON *s =
            cJSON_GetObjectItemCaseSensitive(root, "strong_correct");
        struct eval_item *it;
        size_t len;

        if (!in) {
            goto out;
        }
        if (!cJSON_IsBool(w) || !cJSON_IsBool(s)) {
            jsonl_bad(&lr, "\"weak_correct\" and \"strong_correct\" must be "
                           "true or false");
            goto out;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            *items = ks_xrealloc(*items, cap * sizeof(**items));
        }
        it = &(*items)[(*n)++];
        len = strlen(in->valuestring);
        {
            /* As the router scores a task: its text and, for a model
             * with task features, its type. */
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(root, "type");
            struct ks_lr_task task = {
                .type = cJSON_IsString(ty) ? ty->valuestring : NULL,
                .text = in->valuestring,
                .len = len};

            it->score = ks_lr_score_task(m, &task);
        }
        it->line = lr.lineno;
        it->weak = cJSON_IsTrue(w);
        it->strong = cJSON_IsTrue(s);
        cJSON_Delete(root);
        root = NULL;
    }
    rc = r < 0 ? -1 : 0;
out:
    cJSON_Delete(root);
    jsonl_close(&lr);
    return rc;
}

static void print_cpt(const char *name, double c50, double c80, double ap)
{
    printf("  %-28s", name);
    if (c50 >= 0) {
        printf(" %7.1f%%", 100 * c50);
    } else {
        printf(" %8s", "never");
    }
    if (c80 >= 0) {
        printf(" %7.1f%%", 100 * c80);
    } else {
        printf(" %8s", "never");
    }
    printf(" %7.3f\n", ap);
}

int cli_eval(int argc, char **argv)
{
    const char *kind = NULL, *model = NULL, *in = NULL;
    char errstr[512];
    struct ks_lr_model *m = NULL;
    struct eval_item *items = NULL, *perm = NULL, *oracle = NULL;
    double *acc = NULL, *racc = NULL, *tmp = NULL, *oacc = NULL;
    double r50 = 0, r80 = 0, rap = 0;
    int64_t rounds = 200, v;
    uint64_t seed = 1;
    size_t n = 0, no = 0, n_only = 0;
    int status = 2;
    bool has_kind = false, has_in = false;

    for (int i = 1; i < argc; i++) {
        has_kind = has_kind || strcmp(argv[i], "--kind") == 0;
        has_in = has_in || strcmp(argv[i], "-i") == 0;
    }
    if (!has_kind && has_in) {
        return eval_outcomes(argc, argv);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(eval_usage, stdout);
            return 0;
        }
        if (!val) {
            goto usage;
        }
        i++;
        if (strcmp(a, "--kind") == 0) {
            kind = val;
        } else if (strcmp(a, "--model") == 0) {
            model = val;
        } else if (strcmp(a, "-i") == 0) {
            in = val;
        } else if (strcmp(a, "--rounds") == 0) {
            if (cli_parse_u64(a, val, 1, 100000, &rounds) != 0) {
                return 2;
            }
        } else if (strcmp(a, "--seed") == 0) {
            if (cli_parse_u64(a, val, 0, INT64_MAX, &v) != 0) {
                return 2;
            }
            seed = (uint64_t)v;
        } else {
            goto usage;
        }
    }
    if (!kind || !model || !in) {
        goto usage;
    }
    if (strcmp(kind, "router") != 0 && strcmp(kind, "triage") != 0) {
        fprintf(stderr, "kascade eval: --kind must be router or triage\n");
        return 2;
    }
    status = 1;
    m = ks_lr_load(model, errstr, sizeof(errstr));
    if (!m) {
        fprintf(stderr, "kascade eval: %s\n", errstr);
        goto out;
    }
    if (strcmp(ks_lr_kind(m), kind) != 0) {
        fprintf(stderr, "kascade eval: %s is a %s model, not a %s one\n", model,
                ks_lr_kind(m), kind);
        goto out;
    }
    if (strcmp(kind, "triage") == 0) {
        status = eval_triage(m, in);
        goto out;
    }
    if (eval_read(m, in, &items, &n) != 0) {
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "kascade eval: %s has no examples\n", in);
        goto out;
    }
    acc = ks_xcalloc(n + 1, sizeof(*acc));
    racc = ks_xcalloc(n + 1, sizeof(*racc));
    tmp = ks_xcalloc(n + 1, sizeof(*tmp));
    oacc = ks_xcalloc(n + 1, sizeof(*oacc));
    qsort(items, n, sizeof(*items), cmp_item);
    curve_ties(items, n, acc);
    if (items[0].score == items[n - 1].score) {
        printf("WARNING: the calibrated score is constant (%.4f on every "
               "task): the router cannot tell tasks apart with it, and its "
               "curve is random's (a collapsed calibration?)\n",
               items[0].score);
    }

    /* Random routing: the mean curve of `rounds` seeded random orders,
     * and the mean of each order's own CPT and APGR. */
    perm = ks_xmalloc(n * sizeof(*perm));
    memcpy(perm, items, n * sizeof(*perm));
    for (int64_t r = 0; r < rounds; r++) {
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)(splitmix(&seed) % i);
            struct eval_item x = perm[i - 1];

            perm[i - 1] = perm[j];
            perm[j] = x;
        }
        curve(perm, n, tmp);
        for (size_t k = 0; k <= n; k++) {
            racc[k] += tmp[k] / (double)rounds;
        }
        if (tmp[n] > tmp[0]) {
            r50 += cpt(tmp, n, 0.5) / (double)rounds;
            r80 += cpt(tmp, n, 0.8) / (double)rounds;
            rap += apgr(tmp, n) / (double)rounds;
        }
    }
    /* The oracle: the strong model only where it is right and weak wrong. */
    oracle = ks_xmalloc(n * sizeof(*oracle));
    for (size_t i = 0; i < n; i++) {
        if (!items[i].weak && items[i].strong) {
            oracle[no++] = items[i];
        }
    }
    n_only = no;
    for (size_t i = 0; i < n; i++) {
        if (items[i].weak || !items[i].strong) {
            oracle[no++] = items[i];
        }
    }
    curve(oracle, n, oacc);

    {
        double best = oacc[0];

        for (size_t k = 0; k <= n; k++) {
            best = oacc[k] > best ? oacc[k] : best;
        }
        printf("%zu test tasks: weak model alone %.4f, strong model alone "
               "%.4f, oracle router %.4f (strong calls on exactly the %.1f%% "
               "of tasks only it gets right)\n",
               n, acc[0], acc[n], best, 100.0 * (double)n_only / (double)n);
    }
    printf("accuracy against the share of strong-model calls:\n");
    printf("  %7s %9s %9s %9s\n", "strong", "learned", "random", "oracle");
    for (int s = 0; s <= 10; s++) {
        size_t k = (size_t)floor((double)n * s / 10.0 + 0.5);

        printf("  %6d%% %9.4f %9.4f %9.4f\n", s * 10, acc[k], racc[k], oacc[k]);
    }
    if (!(acc[n] > acc[0])) {
        printf("the strong model is not more accurate than the weak one: "
               "CPT and APGR are undefined\n");
    } else {
        printf("  %-28s %8s %8s %7s\n", "router", "CPT(50%)", "CPT(80%)",
               "APGR");
        print_cpt("learned score", cpt(acc, n, 0.5), cpt(acc, n, 0.8),
                  apgr(acc, n));
        print_cpt("random (mean curve)", cpt(racc, n, 0.5), cpt(racc, n, 0.8),
                  apgr(racc, n));
        print_cpt("random (mean of orders)", r50, r80, rap);
        print_cpt("oracle", cpt(oacc, n, 0.5), cpt(oacc, n, 0.8),
                  apgr(oacc, n));
    }
    status = 0;
out:
    free(oacc);
    free(tmp);
    free(racc);
    free(acc);
    free(oracle);
    free(perm);
    free(items);
    ks_lr_destroy(m);
    return status;

usage:
    fputs(eval_usage, stderr);
    return 2;
}
