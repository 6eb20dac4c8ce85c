/*
 * route.h - the router's tier decisions (docs/design.md section 5), as pure
 * functions of the config, the task and a snapshot of the outside world
 * (the learned score, which tiers' budgets are spent), so they can be
 * tested table-driven without Kafka or Redis.
 *
 * route_task() decides a new task's tier in the order of section 5:
 *   1. hard limits: the hints' min_tier / max_tier, local_only (only tiers
 *      marked local) and the context window (estimated prompt tokens plus
 *      max_output_tokens must fit the tier's largest provider window);
 *   2. rules: routing.rules (PCRE2 pattern / keywords), hints.risk "high"
 *      (routing.high_risk_tier) and the risk domains
 *      (routing.risk_domains) set a floor; patterns and keywords look at
 *      the first routing.rules_max_scan_bytes of the input and of each
 *      message, and a pattern that hits its match limit counts as no
 *      match (rule.h);
 *   3. the task-type table, or routing.default_tier;
 *   4. the learned score: >= routing.score_threshold moves one tier up;
 *   5. budget: a spent tier is handled by its on_budget_exhausted policy.
 * Steps 2-4 propose a tier; the hard limits then bound it, so a floor or
 * the score never overrides max_tier or local_only: the hard limit wins
 * and the reason names it. Budget comes last and never leaves the hard
 * limits either (a downgrade only goes to allowed tiers).
 *
 * Steps 2 and 3 depend on the task and the config only: route_task_rules()
 * makes them once, and a task held for its budget keeps that result
 * (route_task() takes it) instead of running the rules again.
 *
 * route_escalation() picks the next tier for an escalated task.
 * Neither function allocates or keeps pointers; thread-safe on distinct
 * decisions.
 */
#ifndef KASCADE_ROUTER_ROUTE_H
#define KASCADE_ROUTER_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "wire/codec.h"

/* What the router should do with the task. */
enum route_action {
    ROUTE_PUBLISH = 0, /* to tier d->tier */
    ROUTE_DEFER,       /* hold: tier d->tier is spent under `defer` */
    ROUTE_REJECT,      /* Result budget_exceeded (new tasks) */
    ROUTE_STOP,        /* escalation ends: publish the best answer with
                          d->stop_status */
};

/* The outside world at decision time. */
struct route_state {
    double score;           /* learned score in [0,1]; < 0: none */
    const bool *tier_spent; /* n_tiers flags (budget spent), or NULL when
                               budgets are unknown (Redis down) */
};

struct route_decision {
    enum route_action action;
    int tier;                   /* index into cfg->tiers (PUBLISH, DEFER) */
    char reason[96];            /* kascade-reason: why this tier / outcome */
    const char *error;          /* static DLQ code when refused, else NULL */
    enum ks_status stop_status; /* ROUTE_STOP / ROUTE_REJECT */
    char detail[256];           /* why, when error is set or on STOP/REJECT */
};

/* Steps 2-3 of a new task: the tier the type table and the rules propose
 * and why, and which rules gave up at their match limit. */
struct route_rules {
    bool done;           /* false: not made yet */
    int tier;            /* index into cfg->tiers */
    char reason[96];     /* "task_type", "rule:<name>", "risk:<domain>"... */
    uint64_t limit_hits; /* bit i: routing.rules[i] hit its match limit */
    uint64_t gen;        /* the caller's: which config it was made under */
};

/* Makes steps 2 and 3 of task into *r (all fields but gen set). The cost
 * is bounded by the rules' scan and match limits. */
void route_task_rules(const struct ks_config *cfg,
                      const struct ks_task *task,
                      struct route_rules *r);

/* Decides the tier of a new task, with rules (borrowed) made by
 * route_task_rules() under this cfg, or NULL (or not done) to make them
 * here. Returns 0 with d->action and d->reason
 * set (d->tier for PUBLISH and DEFER), or -1 with d->error ("invalid")
 * and d->detail: an unknown tier name in the hints, min_tier above
 * max_tier, local_only with no local tier in range, or a prompt too long
 * for every allowed tier. st may be NULL (no score, budgets unknown). */
int route_task(const struct ks_config *cfg,
               const struct ks_task *task,
               const struct route_rules *rules,
               const struct route_state *st,
               struct route_decision *d);

/* Decides where an escalation of task from tier from_tier (index) at hop
 * hop, having cost cost_so_far_micro, goes next: the first tier strictly
 * above from_tier that the hints allow (max_tier, local_only, context
 * window) and whose budget is not spent (spent tiers are skipped upward;
 * a spent tier under `defer` gives ROUTE_DEFER). ROUTE_STOP when hop + 1
 * would pass routing.max_hops (reason "max_hops", status low_confidence),
 * when cost_so_far plus the next tier's worst case passes the task's
 * max_cost_usd ("max_cost", budget_exceeded), when only spent tiers are
 * left ("budget", budget_exceeded) or when no tier is left ("no_tier",
 * low_confidence). Always returns 0 (hint names are not re-checked: an
 * unknown max_tier there counts as no limit). */
int route_escalation(const struct ks_config *cfg,
                     const struct ks_task *task,
                     int from_tier,
                     uint32_t hop,
                     int64_t cost_so_far_micro,
                     const struct route_state *st,
                     struct route_decision *d);

/* The worst case of task on tier t at its first provider's prices, in
 * micro-dollars (ks_price_worst_micro with the task's instructions as the
 * system prompt: a lower bound of what the worker reserves). */
int64_t route_worst_case_micro(const struct ks_config *cfg,
                               const struct ks_task *task,
                               int t);

#endif
