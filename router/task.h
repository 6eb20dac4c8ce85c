/*
 * task.h - the decision for a task of the tasks topic: its tier by
 * route_task() against the budgets and the score (world.h), returned as
 * an outcome for router.c to apply. Router thread only.
 */
#ifndef KASCADE_ROUTER_TASK_H
#define KASCADE_ROUTER_TASK_H

#include "outcome.h"
#include "route.h"
#include "src.h"
#include "wire/codec.h"

struct router;

/* Decides task (borrowed; decoded from s in fmt) into *out: a record for
 * its tier topic (routing headers on s's), a Result (budget reject,
 * stop), the DLQ (invalid hints), or HOLD while its `defer` tier is
 * spent. *rules (caller's; zeroed for a new task) is the task's rules
 * step: made here when not done under the current config, kept
 * otherwise, so a held task passes its own back each time. *out borrows
 * s and task: apply it before they go. */
void router_task_decide(struct router *rt,
                        const struct src *s,
                        const struct ks_task *task,
                        enum ks_format fmt,
                        struct route_rules *rules,
                        struct router_outcome *out);

#endif
