/*
 * escalate.c - an escalation from the escalations topic: checked, its
 * context loaded from Redis (held while Redis is down), its next tier
 * decided by route_escalation(), and turned into what router.c does with
 * it: republish one tier up with the context's task, or end it with the
 * best answer so far (or a failure) when the ladder, hop count or cost cap
 * stops it.
 *
 * Nothing in an escalation is trusted to name a Redis key: the context key
 * is derived from its tenant and id (ks_ctx_key), a context_key on the
 * wire must equal it, the context must hold the same task (id, tenant)
 * and the attempt being handed on (hop, from_tier). Anything else is
 * dead-lettered as invalid with the reason.
 */
#include "escalate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/metrics.h"
#include "kafka/produce.h"
#include "route.h"
#include "state.h"
#include "world.h"

#include "base/banned.h"

static void dead_letter(struct router_outcome *out, const char *detail)
{
    out->act = ROUTER_ACT_DLQ;
    out->code = "invalid";
    snprintf(out->detail, sizeof(out->detail), "%s", detail);
}

/* Ends an escalation: the best answer so far, or a failure. */
static void finish(const struct ks_ctx *ctx,
                   const struct route_decision *d,
                   struct router_outcome *out)
{
    int best = ks_ctx_best(ctx);
    char why[400];

    out->act = ROUTER_ACT_RESULT;
    out->task = ctx->task;
    out->fmt = ctx->fmt;
    if (best < 0) {
        snprintf(why, sizeof(why), "no attempt produced an output (%s)",
                 d->detail);
        out->res = ks_ctx_result(ctx, -1, KS_STATUS_FAILED, why);
    } else {
        out->res = ks_ctx_result(ctx, best, d->stop_status, d->detail);
    }
}

/* The context's task one tier up, to tier d->tier. */
static void republish(struct router *rt,
                      const struct ks_escalation *esc,
                      const struct ks_ctx *ctx,
                      const struct route_decision *d,
                      struct router_outcome *out)
{
    const char *tier = rt->cfg->tiers[d->tier].name;
    char reason[160];

    if (ks_task_encode(ctx->fmt, ctx->task, &out->buf, &out->len) != KS_OK) {
        dead_letter(out, "the context's task cannot be encoded");
        return;
    }
    snprintf(reason, sizeof(reason), "escalation:%s",
             esc->reason ? esc->reason : "unknown");
    out->hdrs = router_routing_headers(NULL, tier, esc->hop + 1, reason);
    if (ctx->fmt == KS_FORMAT_PROTOBUF) {
        rd_kafka_header_add(out->hdrs, KS_HDR_CONTENT_TYPE, -1,
                            KS_CONTENT_PROTOBUF, -1);
    }
    ks_log_info("router", "%s: escalation %s -> %s (hop %u, %s)", ctx->task->id,
                esc->from_tier, tier, (unsigned)esc->hop + 1, reason);
    ks_metrics_add(rt->m_escalations, 1, esc->from_tier,
                   esc->reason ? esc->reason : "unknown");
    out->act = ROUTER_ACT_RECORD;
    out->topic = rt->tier_topics[d->tier];
    out->key = ctx->task->id;
    out->key_len = strlen(ctx->task->id);
    out->value = out->buf;
}

/* Decides an escalation from tier from whose context is loaded. */
static void decide(struct router *rt,
                   const struct ks_escalation *esc,
                   int from,
                   const struct ks_ctx *ctx,
                   struct router_outcome *out)
{
    int64_t cost = esc->cost_so_far_micro > ctx->cost_micro
                       ? esc->cost_so_far_micro
                       : ctx->cost_micro;
    struct route_state st;
    struct route_decision d;

    st = router_world(rt, NULL);
    route_escalation(rt->cfg, ctx->task, from, esc->hop, cost, &st, &d);
    switch (d.action) {
    case ROUTE_DEFER:
        out->act = ROUTER_ACT_HOLD;
        return;
    case ROUTE_STOP:
    case ROUTE_REJECT:
        ks_log_info("router", "%s: escalation from %s stops: %s", ctx->task->id,
                    esc->from_tier, d.reason);
        finish(ctx, &d, out);
        return;
    case ROUTE_PUBLISH:
        republish(rt, esc, ctx, &d, out);
        return;
    }
}

/* What an escalation must pass before its context is read: a tier that
 * exists, and a context_key, when it carries one, equal to the key
 * derived from its tenant and id (a forged one could name any key).
 * Returns the index of from_tier, or -1 with *out dead-lettered. */
static int check_escalation(struct router *rt,
                            const struct ks_escalation *esc,
                            struct router_outcome *out)
{
    int from = ks_config_tier_index(rt->cfg, esc->from_tier);
    char detail[400];
    char *key;

    if (from < 0) {
        snprintf(detail, sizeof(detail),
                 "field 'from_tier': no tier named '%s'", esc->from_tier);
        dead_letter(out, detail);
        return -1;
    }
    if (!esc->context_key) {
        return from;
    }
    key = ks_ctx_key(rt->rs, esc->tenant, esc->id);
    if (strcmp(key, esc->context_key) != 0) {
        snprintf(detail, sizeof(detail),
                 "field 'context_key': not the context key of this task "
                 "(tenant and id give '%s')",
                 key);
        dead_letter(out, detail);
        from = -1;
    }
    free(key);
    return from;
}

/* Does ctx hold the attempt esc hands on (its hop, on its from_tier)?
 * A worker saves the attempt before it produces the escalation, so an
 * escalation without one was not made by a worker. */
static bool ctx_has_attempt(const struct ks_ctx *ctx,
                            const struct ks_escalation *esc)
{
    for (size_t i = 0; i < ctx->n_attempts; i++) {
        const struct ks_ctx_attempt *a = &ctx->attempts[i];

        if (a->hop == esc->hop && strcmp(a->tier, esc->from_tier) == 0) {
            return true;
        }
    }
    return false;
}

void router_escalation_decide(struct router *rt,
                              const struct ks_escalation *esc,
                              struct ks_ctx **ctxp,
                              struct router_outcome *out)
{
    char errstr[256], detail[400];
    enum ks_err err;
    int from;

    memset(out, 0, sizeof(*out));
    from = check_escalation(rt, esc, out);
    if (from < 0) {
        return;
    }
    if (!*ctxp) {
        err = ks_ctx_load(rt->rs, esc->tenant, esc->id, &rt->cfg->limits, ctxp,
                          errstr, sizeof(errstr));
        if (err == KS_ERR_RETRY) {
            out->act = ROUTER_ACT_HOLD; /* Redis down */
            return;
        }
        if (err != KS_OK) {
            snprintf(detail, sizeof(detail), "escalation %s: %s", esc->id,
                     errstr);
            dead_letter(out, detail);
            return;
        }
    }
    if (!ctx_has_attempt(*ctxp, esc)) {
        snprintf(detail, sizeof(detail),
                 "field 'hop': the context of %s holds no attempt at hop %u "
                 "on tier '%s'",
                 esc->id, (unsigned)esc->hop, esc->from_tier);
        dead_letter(out, detail);
        return;
    }
    decide(rt, esc, from, *ctxp, out);
}
