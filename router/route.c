/*
 * route.c - the tier decision.
 *
 * Order (DESIGN.md section 5): the task-type table gives a tier; min_tier
 * raises it and max_tier caps it (a hint is a hard limit, so it wins over
 * the table); local_only then moves the task to a local tier within
 * [min, max], preferring the nearest one at or above the table's choice.
 * Hint tier names must name configured tiers: a typo is an invalid task,
 * not a silent default.
 */
#include "route.h"

#include <stdio.h>
#include <string.h>

#include "banned.h"

static int hint_tier(const struct ks_config *cfg,
                     const char *name,
                     const char *field,
                     struct route_decision *d)
{
    int t = ks_config_tier_index(cfg, name);

    if (t < 0) {
        d->error = "invalid";
        snprintf(d->detail, sizeof(d->detail),
                 "field 'hints.%s': no tier named '%s'", field, name);
    }
    return t;
}

static int pick_local(const struct ks_config *cfg, int want, int lo, int hi)
{
    for (int t = want; t <= hi; t++) {
        if (cfg->tiers[t].local) {
            return t;
        }
    }
    for (int t = want - 1; t >= lo; t--) {
        if (cfg->tiers[t].local) {
            return t;
        }
    }
    return -1;
}

int route_task(const struct ks_config *cfg,
               const struct ks_task *task,
               struct route_decision *d)
{
    int lo = 0, hi = (int)cfg->n_tiers - 1, t;
    bool known = false;

    memset(d, 0, sizeof(*d));
    for (size_t i = 0; i < cfg->n_routes; i++) {
        known |= strcmp(cfg->routes[i].type, task->type) == 0;
    }
    t = ks_config_route_type(cfg, task->type);
    d->reason = known ? "task_type" : "default_tier";
    if (task->hints.min_tier &&
        (lo = hint_tier(cfg, task->hints.min_tier, "min_tier", d)) < 0) {
        return -1;
    }
    if (task->hints.max_tier &&
        (hi = hint_tier(cfg, task->hints.max_tier, "max_tier", d)) < 0) {
        return -1;
    }
    if (lo > hi) {
        d->error = "invalid";
        snprintf(d->detail, sizeof(d->detail),
                 "field 'hints': min_tier '%s' is above max_tier '%s'",
                 cfg->tiers[lo].name, cfg->tiers[hi].name);
        return -1;
    }
    if (t < lo) {
        t = lo;
        d->reason = "min_tier";
    } else if (t > hi) {
        t = hi;
        d->reason = "max_tier";
    }
    if (task->hints.local_only && !cfg->tiers[t].local) {
        t = pick_local(cfg, t, lo, hi);
        if (t < 0) {
            d->error = "invalid";
            snprintf(d->detail, sizeof(d->detail),
                     "field 'hints.local_only': no local tier between '%s' "
                     "and '%s'",
                     cfg->tiers[lo].name, cfg->tiers[hi].name);
            return -1;
        }
        d->reason = "local_only";
    }
    d->tier = t;
    return 0;
}
