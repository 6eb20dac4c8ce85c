/*
 * task.c - a task from the tasks topic: decoded (or dead-lettered),
 * its tier decided by route_task() against the budget and score, then
 * republished to the tier topic, answered (budget reject or stop), or
 * held while its `defer` tier is spent.
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/metrics.h"
#include "base/util.h"
#include "kafka/client.h"
#include "route.h"
#include "router_internal.h"
#include "wire/codec.h"

#include "base/banned.h"

/* Decides task (taking ownership) and acts. Returns the task back when it
 * must be held (ROUTE_DEFER), else NULL (consumed). */
struct ks_task *router_decide_task(struct router *rt,
                                   const struct src *s,
                                   struct pending *p,
                                   struct ks_task *task,
                                   enum ks_format fmt)
{
    struct route_state st = router_world(rt, task);
    struct route_decision d;
    struct ks_result *res;
    const char *tier;

    if (route_task(rt->cfg, task, &st, &d) != 0) {
        router_dead_letter(rt, s, p, d.error, d.detail);
        goto out;
    }
    tier = rt->cfg->tiers[d.tier].name;
    switch (d.action) {
    case ROUTE_DEFER:
        return task;
    case ROUTE_REJECT:
    case ROUTE_STOP:
        res = ks_result_new();
        res->id = ks_xstrdup(task->id);
        res->type = ks_xstrdup(task->type);
        res->tenant = task->tenant ? ks_xstrdup(task->tenant) : NULL;
        res->status = d.stop_status;
        res->error = ks_xstrdup(d.detail);
        ks_metrics_add(rt->m_routed, 1, tier, d.reason);
        router_publish_result(rt, task, fmt, res, s, p);
        ks_result_destroy(res);
        goto out;
    case ROUTE_PUBLISH:
        break;
    }
    ks_log_debug("router", "%s (%s) -> %s: %s", task->id, task->type, tier,
                 d.reason);
    ks_metrics_add(rt->m_routed, 1, tier, d.reason);
    router_produce(rt, rt->tier_topics[d.tier], s->key, s->key_len, s->payload,
                   s->len, router_routing_headers(s->hdrs, tier, 0, d.reason),
                   p);

out:
    ks_task_destroy(task);
    return NULL;
}

void router_task_one(struct router *rt, const struct src *s, struct pending *p)
{
    struct ks_codec_error cerr = {0};
    struct ks_task *task = NULL;
    enum ks_format fmt;

    if (router_detect_format(s, &fmt, &cerr) != KS_OK ||
        ks_task_decode(fmt, s->payload, s->len, &rt->cfg->limits, &task,
                       &cerr) != KS_OK) {
        router_dead_letter(rt, s, p, cerr.code, cerr.detail);
        return;
    }
    task = router_decide_task(rt, s, p, task, fmt);
    if (task) {
        ks_log_info("router", "%s: held (budget_defer)", task->id);
        router_hold(rt, HELD_TASK, s, p, task, fmt, NULL, NULL);
    }
}
