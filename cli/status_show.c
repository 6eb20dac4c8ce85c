/*
 * status_show.c - `kascade status` printed: a screen for people, or one
 * JSON object for scripts (a section that could not be read is null there,
 * with its error under "errors").
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "base/util.h"
#include "status.h"

#include "base/banned.h"

/* ---------------------------------------------------------- output */

static const char *circuit_name(int state)
{
    return state == 0 ? "closed" : state == 1 ? "open" : "half-open";
}

/* "model:state ..." of a tier, or why not. */
static void circuits_text(const struct status_cli *sc,
                          const struct status *st,
                          size_t t,
                          char *out,
                          size_t size)
{
    const struct ks_tier_cfg *tc = &sc->cfg->tiers[t];
    size_t len = 0;

    out[0] = '\0';
    if (sc->n_urls == 0) {
        snprintf(out, size, "n/a (pass --metrics)");
        return;
    }
    for (size_t p = 0; p < tc->n_providers && len < size; p++) {
        int c = st->tiers[t].circuit[p];

        len += (size_t)snprintf(out + len, size - len, "%s%s:%s", p ? " " : "",
                                tc->providers[p].model,
                                c < 0 ? "?" : circuit_name(c));
    }
}

void status_print_text(const struct status_cli *sc, const struct status *st)
{
    const struct ks_config *cfg = sc->cfg;
    bool kafka = !st->kafka_err[0], redis = !st->redis_err[0];
    int name_w = 4;
    char when[32], circuits[512];
    struct tm tm;
    time_t now = (time_t)(ks_wall_ms() / 1000);

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        int len = (int)strlen(cfg->tiers[t].name);

        name_w = len > name_w ? len : name_w;
    }
    printf("kascade status  %s UTC  budget day %s, %.0f%% elapsed\n", when,
           st->day, st->elapsed * 100.0);
    if (kafka) {
        printf("router: %" PRId64 " member(s), lag tasks %" PRId64
               ", escalations %" PRId64 "\n",
               st->router_members, st->tasks_lag, st->esc_lag);
        printf("fleet:  results %" PRId64 "/min, escalations %" PRId64
               "/min, DLQ %" PRId64 " in the last hour\n",
               st->results_per_min, st->esc_per_min, st->dlq_last_hour);
    }
    printf("%-*s  %8s  %7s  %6s  %14s  %14s  %5s  %s\n", name_w, "tier", "lag",
           "members", "in/min", "spent USD", "limit USD", "used", "circuits");
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        const struct tier_status *ts = &st->tiers[t];
        const struct ks_budget_state *b = &ts->budget;
        char lag[24] = "?", mem[24] = "?", in[24] = "?", spent[32] = "?",
             limit[32] = "?", used[16] = "?";

        if (kafka) {
            snprintf(lag, sizeof(lag), "%" PRId64, ts->lag);
            snprintf(mem, sizeof(mem), "%" PRId64, ts->members);
            snprintf(in, sizeof(in), "%" PRId64, ts->in_per_min);
        }
        if (redis) {
            bool capped = b->limit_micro != KS_BUDGET_NO_LIMIT;

            snprintf(spent, sizeof(spent), "%.6f",
                     ks_micro_to_usd(b->spent_micro));
            snprintf(limit, sizeof(limit), capped ? "%.6f%s" : "unlimited",
                     ks_micro_to_usd(b->limit_micro),
                     b->limit_is_runtime ? "*" : "");
            snprintf(used, sizeof(used), capped ? "%.0f%%" : "-",
                     b->limit_micro > 0
                         ? 100.0 *
                               (double)(b->spent_micro + b->reserved_micro) /
                               (double)b->limit_micro
                         : 100.0);
        }
        circuits_text(sc, st, t, circuits, sizeof(circuits));
        printf("%-*s  %8s  %7s  %6s  %14s  %14s  %5s  %s\n", name_w,
               cfg->tiers[t].name, lag, mem, in, spent, limit, used, circuits);
    }
    printf("lag: the group's committed offsets behind the topic's end; "
           "in/min: routed to the tier;\nresults and escalations per minute "
           "are fleet-wide; used: (spent + reserved) / limit\n");
}

/* Counts read from Kafka: each is null when Kafka could not be read. */
struct json_count {
    const char *key;
    int64_t value;
};

static void json_counts(cJSON *o,
                        bool ok,
                        const struct json_count *counts,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToObject(o, counts[i].key,
                              ok ? cJSON_CreateNumber((double)counts[i].value)
                                 : cJSON_CreateNull());
    }
}

static cJSON *json_usd(bool ok, int64_t micro)
{
    return ok ? cJSON_CreateNumber(ks_micro_to_usd(micro)) : cJSON_CreateNull();
}

static cJSON *json_budget(const struct tier_status *ts, bool ok)
{
    const struct ks_budget_state *b = &ts->budget;
    bool capped = ok && b->limit_micro != KS_BUDGET_NO_LIMIT;
    cJSON *o;

    if (!ok) {
        return cJSON_CreateNull();
    }
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "spent_usd", json_usd(true, b->spent_micro));
    cJSON_AddItemToObject(o, "reserved_usd", json_usd(true, b->reserved_micro));
    cJSON_AddItemToObject(o, "limit_usd", json_usd(capped, b->limit_micro));
    cJSON_AddStringToObject(o, "limit_source",
                            b->limit_is_runtime ? "runtime" : "config");
    return o;
}

static cJSON *json_circuits(const struct status_cli *sc,
                            const struct status *st,
                            size_t t)
{
    const struct ks_tier_cfg *tc = &sc->cfg->tiers[t];
    cJSON *o;

    if (sc->n_urls == 0) {
        return cJSON_CreateNull();
    }
    o = cJSON_CreateObject();
    for (size_t p = 0; p < tc->n_providers; p++) {
        int c = st->tiers[t].circuit[p];

        cJSON_AddItemToObject(o, tc->providers[p].model,
                              c < 0 ? cJSON_CreateNull()
                                    : cJSON_CreateString(circuit_name(c)));
    }
    return o;
}

static void json_error(cJSON *errors, const char *key, const char *err)
{
    cJSON_AddItemToObject(
        errors, key, err[0] ? cJSON_CreateString(err) : cJSON_CreateNull());
}

int status_print_json(const struct status_cli *sc, const struct status *st)
{
    bool kafka = !st->kafka_err[0], redis = !st->redis_err[0];
    cJSON *root = cJSON_CreateObject(), *o, *arr;
    char *text;

    cJSON_AddNumberToObject(root, "time_ms", (double)ks_wall_ms());
    cJSON_AddStringToObject(root, "day", st->day);
    cJSON_AddNumberToObject(root, "day_elapsed",
                            round(st->elapsed * 1e4) / 1e4);
    o = cJSON_AddObjectToObject(root, "router");
    json_counts(o, kafka,
                (const struct json_count[]){{"members", st->router_members},
                                            {"tasks_lag", st->tasks_lag},
                                            {"escalations_lag", st->esc_lag}},
                3);
    o = cJSON_AddObjectToObject(root, "fleet");
    json_counts(
        o, kafka,
        (const struct json_count[]){{"results_per_min", st->results_per_min},
                                    {"escalations_per_min", st->esc_per_min},
                                    {"dlq_last_hour", st->dlq_last_hour}},
        3);
    arr = cJSON_AddArrayToObject(root, "tiers");
    for (size_t t = 0; t < sc->cfg->n_tiers; t++) {
        const struct tier_status *ts = &st->tiers[t];

        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", sc->cfg->tiers[t].name);
        json_counts(o, kafka,
                    (const struct json_count[]){{"lag", ts->lag},
                                                {"members", ts->members},
                                                {"in_per_min", ts->in_per_min}},
                    3);
        cJSON_AddItemToObject(o, "budget", json_budget(ts, redis));
        cJSON_AddItemToObject(o, "circuits", json_circuits(sc, st, t));
        cJSON_AddItemToArray(arr, o);
    }
    o = cJSON_AddObjectToObject(root, "errors");
    json_error(o, "kafka", st->kafka_err);
    json_error(o, "redis", st->redis_err);
    json_error(o, "metrics", st->metrics_err);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "kascade: status: out of memory\n");
        return -1;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}
