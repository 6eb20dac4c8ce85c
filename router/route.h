/*
 * route.h - the router's tier decision for one task (DESIGN.md section 5),
 * as a pure function of the config and the task, so it can be tested
 * table-driven without Kafka.
 *
 * This first version applies the task-type table (unknown types go to
 * routing.default_tier) and the min_tier / max_tier / local_only hints.
 */
#ifndef KASCADE_ROUTER_ROUTE_H
#define KASCADE_ROUTER_ROUTE_H

#include "codec.h"
#include "config.h"

struct route_decision {
    int tier;           /* index into cfg->tiers */
    const char *reason; /* static: why this tier (kascade-reason) */
    const char *error;  /* static DLQ code when the task cannot be routed */
    char detail[256];   /* why, when error is set */
};

/* Decides the tier of task. Returns 0 with d->tier and d->reason set, or
 * -1 with d->error ("invalid") and d->detail (e.g. an unknown tier name in
 * the hints, or local_only with no local tier in range). */
int route_task(const struct ks_config *cfg,
               const struct ks_task *task,
               struct route_decision *d);

#endif
