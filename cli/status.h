/*
 * status.h - the parts of `kascade status` (status.c reads and runs,
 * status_kafka.c reads Kafka, status_show.c prints): one reading of the
 * fleet and what the command holds across redraws. Internal to cli/.
 */
#ifndef KASCADE_CLI_STATUS_H
#define KASCADE_CLI_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "redis/budget.h"
#include "redis/store.h"

#define KAFKA_TIMEOUT_MS   5000
#define METRICS_TIMEOUT_MS 2000
#define METRICS_MAX_BYTES  (4 << 20) /* a scrape bigger than this is refused */
#define DAY_MS             86400000LL
#define MINUTE_MS          60000LL
#define HOUR_MS            3600000LL
#define MAX_WATCH_S        86400

/* The fixed topics, in this order, before the tier topics. */
enum {
    T_TASKS,
    T_ESC,
    T_RESULTS,
    T_DLQ,
    T_FIXED
};

/* What one tier shows. */
struct tier_status {
    int64_t lag, members, in_per_min;
    struct ks_budget_state budget;
    int *circuit; /* per provider: -1 not seen, else 0 closed, 1 open,
                     2 half-open (the worst any worker reports) */
};

/* One reading of the whole fleet; errors are "" when the section was
 * read. */
struct status {
    int64_t now_ms; /* budget clock */
    char day[9];
    double elapsed;
    int64_t router_members, tasks_lag, esc_lag;
    int64_t results_per_min, esc_per_min, dlq_last_hour;
    struct tier_status *tiers;
    char kafka_err[512], redis_err[512], metrics_err[512];
};

/* What the command holds across redraws. */
struct status_cli {
    const struct ks_config *cfg;
    rd_kafka_t *rk;      /* admin, metadata and offsets */
    struct ks_store *rs; /* connects lazily */
    char **topics;       /* T_FIXED fixed ones, then one per tier */
    size_t n_topics;
    char **metrics_urls; /* NULL when --metrics was not given */
    size_t n_urls;
};

/* Reads the Kafka section into st (st->kafka_err on failure). */
void status_read_kafka(struct status_cli *sc, struct status *st);

/* Prints st for people. */
void status_print_text(const struct status_cli *sc, const struct status *st);

/* Prints st as one JSON object; returns 0, or 1 when it cannot. */
int status_print_json(const struct status_cli *sc, const struct status *st);

#endif
