/*
 * task.c - a task from the tasks topic: its tier decided by route_task()
 * against the budget and score, and turned into what router.c does with
 * it: republish to the tier topic, answer (budget reject or stop),
 * dead-letter, or hold while its `defer` tier is spent. A task whose
 * tenant's budget is spent is answered budget_exceeded here, whatever its
 * tier (reason `budget_tenant`), before any worker reserves for it. The
 * rules step is
 * made once per task (and once more after a reload): a held task keeps
 * it, so its bounded but real cost is not paid every second.
 */
#include "task.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "route.h"
#include "state.h"
#include "world.h"

#include "base/banned.h"

/* A Result of status d->stop_status for task (caller owns). */
static struct ks_result *stop_result(const struct ks_task *task,
                                     const struct route_decision *d)
{
    struct ks_result *res = ks_result_new();

    res->id = ks_xstrdup(task->id);
    res->type = ks_xstrdup(task->type);
    res->tenant = task->tenant ? ks_xstrdup(task->tenant) : NULL;
    res->status = d->stop_status;
    res->error = ks_xstrdup(d->detail);
    return res;
}

/* topics.reply_to_allow, checked here, at decode, before any model call:
 * a refused reply_to dead-letters the task as invalid. */
static bool router_task_reply_to_refused(struct router *rt,
                                         const struct ks_task *task,
                                         struct router_outcome *out)
{
    const char *why = ks_config_reply_to_refusal(rt->cfg, task->reply_to);

    if (!why) {
        return false;
    }
    out->act = ROUTER_ACT_DLQ;
    out->code = "invalid";
    if (ks_topic_name_valid(task->reply_to, strlen(task->reply_to))) {
        snprintf(out->detail, sizeof(out->detail),
                 "field 'reply_to': topic '%s': %s", task->reply_to, why);
    } else {
        snprintf(out->detail, sizeof(out->detail), "field 'reply_to': %s", why);
    }
    return true;
}

/* Makes the rules step of task into *rules unless it was made under the
 * current config; counts and logs the rules that hit their limit. */
static void decide_rules(struct router *rt,
                         const struct ks_task *task,
                         struct route_rules *rules)
{
    if (rules->done && rules->gen == rt->cfg_gen) {
        return;
    }
    route_task_rules(rt->cfg, task, rules);
    rules->gen = rt->cfg_gen;
    for (size_t i = 0; i < rt->cfg->n_rules; i++) {
        if (rules->limit_hits & ((uint64_t)1 << i)) {
            ks_log_warn("router",
                        "%s: rule '%s' hit its match limit: counted as "
                        "no match",
                        task->id, rt->cfg->rules[i].name);
            ks_metrics_add(rt->m_rule_limit, 1, rt->cfg->rules[i].name);
        }
    }
}

void router_task_decide(struct router *rt,
                        const struct src *s,
                        const struct ks_task *task,
                        enum ks_format fmt,
                        struct route_rules *rules,
                        struct router_outcome *out)
{
    struct route_state st = router_world(rt, task);
    struct route_decision d;
    const char *tier;

    memset(out, 0, sizeof(*out));
    if (router_task_reply_to_refused(rt, task, out)) {
        return;
    }
    decide_rules(rt, task, rules);
    if (route_task(rt->cfg, task, rules, &st, &d) != 0) {
        out->act = ROUTER_ACT_DLQ;
        out->code = d.error;
        snprintf(out->detail, sizeof(out->detail), "%s", d.detail);
        return;
    }
    tier = rt->cfg->tiers[d.tier].name;
    if (task->tenant && router_tenant_spent(rt, task->tenant)) {
        /* The tenant's budget refuses the task, never the tier. */
        d.action = ROUTE_REJECT;
        d.stop_status = KS_STATUS_BUDGET_EXCEEDED;
        snprintf(d.reason, sizeof(d.reason), "budget_tenant");
        snprintf(d.detail, sizeof(d.detail),
                 "budget: today's budget of tenant '%s' is spent",
                 task->tenant);
    }
    switch (d.action) {
    case ROUTE_DEFER:
        out->act = ROUTER_ACT_HOLD;
        return;
    case ROUTE_REJECT:
    case ROUTE_STOP:
        out->act = ROUTER_ACT_RESULT;
        out->res = stop_result(task, &d);
        out->task = task;
        out->fmt = fmt;
        ks_metrics_add(rt->m_routed, 1, tier, d.reason);
        return;
    case ROUTE_PUBLISH:
        break;
    }
    ks_log_debug("router", "%s (%s) -> %s: %s", task->id, task->type, tier,
                 d.reason);
    ks_metrics_add(rt->m_routed, 1, tier, d.reason);
    out->act = ROUTER_ACT_RECORD;
    out->topic = rt->tier_topics[d.tier];
    out->key = s->key;
    out->key_len = s->key_len;
    out->value = s->payload;
    out->len = s->len;
    if (s->reencode) {
        char *buf = NULL;
        size_t len = 0;

        if (ks_task_encode(fmt, task, &buf, &len) == KS_OK) {
            out->buf = buf;
            out->value = buf;
            out->len = len;
        }
    }
    out->hdrs = router_routing_headers(s->hdrs, tier, 0, d.reason);
}
