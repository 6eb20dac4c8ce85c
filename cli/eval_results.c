/*
 * eval_results.c - `kascade eval --results RESULTS.jsonl -i OUTCOMES.jsonl`:
 * a real run's Results (`kascade submit --wait -o`) joined by id with
 * labelled outcomes. A Result is right when the outcome of the tier that
 * answered it is labelled right; cost and latency are the Result's own.
 * Printed next to each tier alone (from the labels), so a deployed
 * config's quality and saving can be checked against what tune predicted.
 */
#include "eval_results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "eval_curve.h"
#include "jsonl.h"

#include "base/banned.h"

struct run_sum {
    size_t results, matched, unknown_tier, right, escalated;
    size_t per_tier[EV_MAX_TIERS], per_type[EV_MAX_TYPES];
    size_t right_type[EV_MAX_TYPES];
    double cost, latency;
    size_t n_latency;
};

static const struct ev_task *task_of(const struct ev_set *set, const char *id)
{
    for (size_t i = 0; i < set->n; i++) { /* sets are small: a scan */
        if (strcmp(set->tasks[i].id, id) == 0) {
            return &set->tasks[i];
        }
    }
    return NULL;
}

static void add_result(const struct ev_set *set,
                       const cJSON *r,
                       struct run_sum *s)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
    const cJSON *tier = cJSON_GetObjectItemCaseSensitive(r, "tier");
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(r, "cost_usd");
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(r, "latency_ms");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(r, "path");
    const struct ev_task *t;
    int k;

    s->results++;
    t = cJSON_IsString(id) ? task_of(set, id->valuestring) : NULL;
    if (!t) {
        return;
    }
    s->matched++;
    k = cJSON_IsString(tier) ? ev_tier_index(set, tier->valuestring) : -1;
    if (k < 0) {
        s->unknown_tier++;
        return;
    }
    s->per_tier[k]++;
    s->per_type[t->type]++;
    s->right += t->t[k].correct;
    s->right_type[t->type] += t->t[k].correct;
    s->escalated += cJSON_GetArraySize(path) > 1;
    s->cost += cJSON_IsNumber(cost) ? cost->valuedouble : 0;
    if (cJSON_IsNumber(lat)) {
        s->latency += lat->valuedouble;
        s->n_latency++;
    }
}

static void print_sum(const struct ev_set *set,
                      const struct run_sum *s,
                      const char *path)
{
    const struct ev_task **t = ks_xmalloc(set->n * sizeof(*t));
    double q, c, n = s->matched ? (double)s->matched : 1;

    for (size_t i = 0; i < set->n; i++) {
        t[i] = &set->tasks[i];
    }
    printf("%s: %zu results, %zu with a labelled outcome (of %zu)", path,
           s->results, s->matched, set->n);
    if (s->unknown_tier) {
        printf(", %zu from a tier the outcomes lack", s->unknown_tier);
    }
    printf("\n  the run          quality %.4f, %.6f USD a task, %.1f%% "
           "escalated",
           (double)s->right / n, s->cost / n, 100.0 * (double)s->escalated / n);
    if (s->n_latency) {
        printf(", mean latency %.0f ms", s->latency / (double)s->n_latency);
    }
    printf("\n");
    for (size_t k = 0; k < set->n_tiers; k++) {
        ev_tier_mean(t, set->n, k, &q, &c);
        printf("  %-16s answered %5.1f%%; alone: quality %.4f, %.6f USD a "
               "task (labels)\n",
               set->tiers[k], 100.0 * (double)s->per_tier[k] / n, q, c);
    }
    ev_tier_mean(t, set->n, set->n_tiers - 1, &q, &c);
    if (c > 0) {
        printf("  saving against the top tier alone: %.1f%%\n",
               100 * (1 - (s->cost / n) / c));
    }
    for (size_t ty = 0; ty < set->n_types; ty++) {
        if (s->per_type[ty]) {
            printf("  type %-14s %5zu results, quality %.4f\n", set->types[ty],
                   s->per_type[ty],
                   (double)s->right_type[ty] / (double)s->per_type[ty]);
        }
    }
    free(t);
}

int ev_results_report(const struct ev_set *set, const char *path)
{
    struct line_reader lr;
    struct run_sum s = {0};
    cJSON *root = NULL;
    int r;

    if (jsonl_open(&lr, path) != 0) {
        return -1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0) {
        add_result(set, root, &s);
        cJSON_Delete(root);
        root = NULL;
    }
    jsonl_close(&lr);
    if (r < 0) {
        return -1;
    }
    print_sum(set, &s, path);
    return 0;
}
