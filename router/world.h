/*
 * world.h - the outside world the decisions look at: the tier list's
 * topics and budget flags, and the learned difficulty score. Router
 * thread only.
 */
#ifndef KASCADE_ROUTER_WORLD_H
#define KASCADE_ROUTER_WORLD_H

#include "route.h"
#include "wire/codec.h"

struct router;

/* (Re)builds rt->tier_topics and rt->tier_spent for rt->cfg's tiers and
 * makes the next router_world() read the budgets again. */
void router_build_tiers(struct router *rt);

/* Refreshes the per-tier budget flags when they are older than a second
 * and scores task (borrowed; may be NULL: no score). Returns the state
 * route_task() takes (tier_spent NULL when unknown, else borrowed from
 * rt until the next call). */
struct route_state router_world(struct router *rt, const struct ks_task *task);

/* Is tenant's budget spent for today (spent >= its limit: runtime or
 * config)? Read from Redis at most once a second per tenant; false when
 * unknown (Redis down, an error reply, no tenant). */
bool router_tenant_spent(struct router *rt, const char *tenant);

#endif
