/*
 * sim_stats.c - counters for GET /stats and POST /stats/reset.
 *
 * Invariants: every chat request bumps requests once and then exactly one
 * of ok or errors[kind]; a snapshot taken while requests run may be
 * momentarily ahead on requests, never behind. A billed call is added to
 * the totals and to its model's entry under one lock, so the per-model
 * figures always sum to the totals.
 */
#include "sim_stats.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"

#include "base/banned.h"

void sim_stats_init(struct sim_stats *st)
{
    atomic_init(&st->requests, 0);
    atomic_init(&st->ok, 0);
    atomic_init(&st->inflight, 0);
    atomic_init(&st->inflight_peak, 0);
    atomic_init(&st->replay_hit, 0);
    atomic_init(&st->replay_miss, 0);
    atomic_init(&st->escalated, 0);
    for (int i = 0; i < SIM_KIND_COUNT; i++) {
        atomic_init(&st->errors[i], 0);
    }
    pthread_mutex_init(&st->bill_lock, NULL);
    memset(&st->billed, 0, sizeof(st->billed));
    st->n_models = 0;
}

void sim_stats_inflight_up(struct sim_stats *st)
{
    long long now = atomic_fetch_add(&st->inflight, 1) + 1;
    long long peak = atomic_load(&st->inflight_peak);

    /* a failed exchange reloads peak: retry while ours is still higher */
    while (now > peak &&
           !atomic_compare_exchange_weak(&st->inflight_peak, &peak, now)) {
    }
}

void sim_stats_reset(struct sim_stats *st)
{
    atomic_store(&st->requests, 0);
    atomic_store(&st->ok, 0);
    atomic_store(&st->replay_hit, 0);
    atomic_store(&st->replay_miss, 0);
    atomic_store(&st->escalated, 0);
    atomic_store(&st->inflight_peak, atomic_load(&st->inflight));
    for (int i = 0; i < SIM_KIND_COUNT; i++) {
        atomic_store(&st->errors[i], 0);
    }
    pthread_mutex_lock(&st->bill_lock);
    memset(&st->billed, 0, sizeof(st->billed));
    st->n_models = 0;
    pthread_mutex_unlock(&st->bill_lock);
}

/* The slot of model, added when new; the last slot is "other".
 * Called with bill_lock held. */
static struct sim_bill *bill_slot(struct sim_stats *st, const char *model)
{
    int i;

    for (i = 0; i < st->n_models; i++) {
        if (strcmp(st->model_names[i], model) == 0) {
            return &st->models[i];
        }
    }
    if (st->n_models == SIM_STATS_MODELS) {
        return &st->models[SIM_STATS_MODELS - 1];
    }
    i = st->n_models++;
    ks_strlcpy(st->model_names[i], i == SIM_STATS_MODELS - 1 ? "other" : model,
               sizeof(st->model_names[i]));
    memset(&st->models[i], 0, sizeof(st->models[i]));
    return &st->models[i];
}

void sim_stats_bill(struct sim_stats *st,
                    const char *model,
                    long long input_tokens,
                    long long output_tokens)
{
    struct sim_bill *b;

    pthread_mutex_lock(&st->bill_lock);
    b = bill_slot(st, model);
    b->calls++;
    b->input_tokens += input_tokens;
    b->output_tokens += output_tokens;
    st->billed.calls++;
    st->billed.input_tokens += input_tokens;
    st->billed.output_tokens += output_tokens;
    pthread_mutex_unlock(&st->bill_lock);
}

static cJSON *bill_json(const struct sim_bill *b)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "calls", (double)b->calls);
    cJSON_AddNumberToObject(o, "input_tokens", (double)b->input_tokens);
    cJSON_AddNumberToObject(o, "output_tokens", (double)b->output_tokens);
    return o;
}

static void add_bill(cJSON *root, struct sim_stats *st)
{
    cJSON *models = cJSON_CreateObject();

    pthread_mutex_lock(&st->bill_lock);
    cJSON_AddItemToObject(root, "billed", bill_json(&st->billed));
    for (int i = 0; i < st->n_models; i++) {
        cJSON_AddItemToObject(models, st->model_names[i],
                              bill_json(&st->models[i]));
    }
    pthread_mutex_unlock(&st->bill_lock);
    cJSON_AddItemToObject(root, "models", models);
}

char *sim_stats_json(struct sim_stats *st)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *errors = cJSON_CreateObject();
    char *text = NULL;

    if (root == NULL || errors == NULL) {
        cJSON_Delete(errors);
        goto out;
    }
    cJSON_AddNumberToObject(root, "requests",
                            (double)atomic_load(&st->requests));
    cJSON_AddNumberToObject(root, "ok", (double)atomic_load(&st->ok));
    for (int i = 0; i < SIM_KIND_COUNT; i++) {
        cJSON_AddNumberToObject(errors, sim_kind_name((enum sim_kind)i),
                                (double)atomic_load(&st->errors[i]));
    }
    cJSON_AddItemToObject(root, "errors", errors);
    cJSON_AddNumberToObject(root, "inflight",
                            (double)atomic_load(&st->inflight));
    cJSON_AddNumberToObject(root, "inflight_peak",
                            (double)atomic_load(&st->inflight_peak));
    cJSON_AddNumberToObject(root, "replay_hit",
                            (double)atomic_load(&st->replay_hit));
    cJSON_AddNumberToObject(root, "replay_miss",
                            (double)atomic_load(&st->replay_miss));
    cJSON_AddNumberToObject(root, "escalated",
                            (double)atomic_load(&st->escalated));
    add_bill(root, st);
    text = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return text;
}
