/*
 * task.c - a task from the tasks topic: its tier decided by route_task()
 * against the budget and score, and turned into what router.c does with
 * it: republish to the tier topic, answer (budget reject or stop),
 * dead-letter, or hold while its `defer` tier is spent.
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

void router_task_decide(struct router *rt,
                        const struct src *s,
                        const struct ks_task *task,
                        enum ks_format fmt,
                        struct router_outcome *out)
{
    struct route_state st = router_world(rt, task);
    struct route_decision d;
    const char *tier;

    memset(out, 0, sizeof(*out));
    if (router_task_reply_to_refused(rt, task, out)) {
        return;
    }
    if (route_task(rt->cfg, task, &st, &d) != 0) {
        out->act = ROUTER_ACT_DLQ;
        out->code = d.error;
        snprintf(out->detail, sizeof(out->detail), "%s", d.detail);
        return;
    }
    tier = rt->cfg->tiers[d.tier].name;
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
    out->hdrs = router_routing_headers(s->hdrs, tier, 0, d.reason);
}
