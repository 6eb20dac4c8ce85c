/*
 * escalate.h - the decision for an escalation of the escalations topic:
 * its context loaded from Redis, its next tier by route_escalation(),
 * returned as an outcome for router.c to apply. Router thread only.
 */
#ifndef KASCADE_ROUTER_ESCALATE_H
#define KASCADE_ROUTER_ESCALATE_H

#include "outcome.h"
#include "redis/ctx.h"
#include "wire/codec.h"

struct router;

/* Decides esc (borrowed) into *out. Loads its context into *ctxp first
 * when *ctxp is NULL (caller owns what it finds there after the call,
 * also on HOLD). *out is a record one tier up (the context's task), a
 * Result (the best answer so far, or a failure, when the ladder, hop
 * count or cost cap stops it), the DLQ (unknown tier, a context_key that
 * is not the derived one, a missing or unreadable context, one of another
 * task or tenant, or without the attempt at esc's hop), or HOLD: *ctxp still
 * NULL when Redis is down, else a `defer` tier is spent. *out borrows *ctxp:
 * apply it before it goes. */
void router_escalation_decide(struct router *rt,
                              const struct ks_escalation *esc,
                              struct ks_ctx **ctxp,
                              struct router_outcome *out);

#endif
