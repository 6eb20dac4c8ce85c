/*
 * sim_stats.c - counters for GET /stats and POST /stats/reset.
 *
 * Invariant: every chat request bumps requests once and then exactly one
 * of ok or errors[kind]; a snapshot taken while requests run may be
 * momentarily ahead on requests, never behind.
 */
#include "sim_stats.h"

#include <cjson/cJSON.h>

#include "base/banned.h"

void sim_stats_init(struct sim_stats *st)
{
    atomic_init(&st->requests, 0);
    atomic_init(&st->ok, 0);
    atomic_init(&st->inflight, 0);
    atomic_init(&st->replay_hit, 0);
    atomic_init(&st->replay_miss, 0);
    atomic_init(&st->escalated, 0);
    for (int i = 0; i < SIM_KIND_COUNT; i++) {
        atomic_init(&st->errors[i], 0);
    }
}

void sim_stats_reset(struct sim_stats *st)
{
    atomic_store(&st->requests, 0);
    atomic_store(&st->ok, 0);
    atomic_store(&st->replay_hit, 0);
    atomic_store(&st->replay_miss, 0);
    atomic_store(&st->escalated, 0);
    for (int i = 0; i < SIM_KIND_COUNT; i++) {
        atomic_store(&st->errors[i], 0);
    }
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
    cJSON_AddNumberToObject(root, "replay_hit",
                            (double)atomic_load(&st->replay_hit));
    cJSON_AddNumberToObject(root, "replay_miss",
                            (double)atomic_load(&st->replay_miss));
    cJSON_AddNumberToObject(root, "escalated",
                            (double)atomic_load(&st->escalated));
    text = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return text;
}
