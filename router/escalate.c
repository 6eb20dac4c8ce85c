/*
 * escalate.c - an escalation from the escalations topic: decoded,
 * its context loaded from Redis (held while Redis is down), its next tier
 * decided by route_escalation(), then republished one tier up with the
 * context's task, or ended with the best answer so far (or a failure)
 * when the ladder, hop count or cost cap stops it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/metrics.h"
#include "kafka/client.h"
#include "kafka/produce.h"
#include "redis/ctx.h"
#include "route.h"
#include "router_internal.h"
#include "wire/codec.h"

#include "base/banned.h"

/* Ends an escalation: the best answer so far, or a failure. */
static void finish_escalation(struct router *rt,
                              const struct src *s,
                              struct pending *p,
                              const struct ks_ctx *ctx,
                              const struct route_decision *d)
{
    int best = ks_ctx_best(ctx);
    struct ks_result *res;
    char why[400];

    if (best < 0) {
        snprintf(why, sizeof(why), "no attempt produced an output (%s)",
                 d->detail);
        res = ks_ctx_result(ctx, -1, KS_STATUS_FAILED, why);
    } else {
        res = ks_ctx_result(ctx, best, d->stop_status, d->detail);
    }
    router_publish_result(rt, ctx->task, ctx->fmt, res, s, p);
    ks_result_destroy(res);
}

/* Decides an escalation whose context is loaded. Takes ownership of esc
 * and ctx; returns true when they were kept for a later retry (held). */
bool router_decide_escalation(struct router *rt,
                              const struct src *s,
                              struct pending *p,
                              struct ks_escalation *esc,
                              struct ks_ctx *ctx)
{
    int from = ks_config_tier_index(rt->cfg, esc->from_tier);
    int64_t cost = esc->cost_so_far_micro > ctx->cost_micro
                       ? esc->cost_so_far_micro
                       : ctx->cost_micro;
    struct route_state st;
    struct route_decision d;
    char reason[160];
    char *buf = NULL;
    size_t len = 0;
    rd_kafka_headers_t *hdrs;
    const char *tier;

    if (from < 0) {
        char detail[200];

        snprintf(detail, sizeof(detail),
                 "field 'from_tier': no tier named '%s'", esc->from_tier);
        router_dead_letter(rt, s, p, "invalid", detail);
        goto out;
    }
    st = router_world(rt, NULL);
    route_escalation(rt->cfg, ctx->task, from, esc->hop, cost, &st, &d);
    switch (d.action) {
    case ROUTE_DEFER:
        return true;
    case ROUTE_STOP:
    case ROUTE_REJECT:
        ks_log_info("router", "%s: escalation from %s stops: %s", ctx->task->id,
                    esc->from_tier, d.reason);
        finish_escalation(rt, s, p, ctx, &d);
        goto out;
    case ROUTE_PUBLISH:
        break;
    }
    if (ks_task_encode(ctx->fmt, ctx->task, &buf, &len) != KS_OK) {
        router_dead_letter(rt, s, p, "invalid",
                           "the context's task cannot be "
                           "encoded");
        goto out;
    }
    tier = rt->cfg->tiers[d.tier].name;
    snprintf(reason, sizeof(reason), "escalation:%s",
             esc->reason ? esc->reason : "unknown");
    hdrs = router_routing_headers(NULL, tier, esc->hop + 1, reason);
    if (ctx->fmt == KS_FORMAT_PROTOBUF) {
        rd_kafka_header_add(hdrs, KS_HDR_CONTENT_TYPE, -1, KS_CONTENT_PROTOBUF,
                            -1);
    }
    ks_log_info("router", "%s: escalation %s -> %s (hop %u, %s)", ctx->task->id,
                esc->from_tier, tier, (unsigned)esc->hop + 1, reason);
    ks_metrics_add(rt->m_escalations, 1, esc->from_tier,
                   esc->reason ? esc->reason : "unknown");
    router_produce(rt, rt->tier_topics[d.tier], ctx->task->id,
                   strlen(ctx->task->id), buf, len, hdrs, p);
    free(buf);

out:
    ks_escalation_destroy(esc);
    ks_ctx_destroy(ctx);
    return false;
}

/* Loads the context of esc. Returns KS_OK with *ctxp, KS_ERR_RETRY (Redis
 * down: hold and retry), or KS_ERR_INVALID after dead-lettering. */
enum ks_err router_load_context(struct router *rt,
                                const struct src *s,
                                struct pending *p,
                                const struct ks_escalation *esc,
                                struct ks_ctx **ctxp)
{
    char errstr[256], detail[400];
    enum ks_err err;

    *ctxp = NULL;
    err = ks_ctx_load(rt->rs, esc->context_key, &rt->cfg->limits, ctxp, errstr,
                      sizeof(errstr));
    if (err == KS_OK || err == KS_ERR_RETRY) {
        return err;
    }
    snprintf(detail, sizeof(detail), "escalation %s: %s", esc->id, errstr);
    router_dead_letter(rt, s, p, "invalid", detail);
    return KS_ERR_INVALID;
}

void router_escalation_one(struct router *rt,
                           const struct src *s,
                           struct pending *p)
{
    struct ks_codec_error cerr = {0};
    struct ks_escalation *esc = NULL;
    struct ks_ctx *ctx = NULL;
    enum ks_format fmt;
    enum ks_err err;

    if (router_detect_format(s, &fmt, &cerr) != KS_OK ||
        ks_escalation_decode(fmt, s->payload, s->len, &rt->cfg->limits, &esc,
                             &cerr) != KS_OK) {
        router_dead_letter(rt, s, p, cerr.code, cerr.detail);
        return;
    }
    err = router_load_context(rt, s, p, esc, &ctx);
    if (err == KS_ERR_INVALID) {
        ks_escalation_destroy(esc);
        return;
    }
    if (err == KS_ERR_RETRY) {
        ks_log_warn("router", "%s: context not loaded (redis down): held",
                    esc->id);
        router_hold(rt, HELD_ESCALATION, s, p, NULL, fmt, esc, NULL);
        return;
    }
    if (router_decide_escalation(rt, s, p, esc, ctx)) {
        ks_log_info("router", "%s: escalation held (budget_defer)", esc->id);
        router_hold(rt, HELD_ESCALATION, s, p, NULL, fmt, esc, ctx);
    }
}
