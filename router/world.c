/*
 * world.c - the outside world route_task() looks at: the tier list's
 * topics and budget flags, and the learned difficulty score.
 *
 * Budgets are read from Redis at most once a second for all tiers (a
 * reload resets the clock); with Redis down the budget step is skipped
 * (workers still fail closed) and the change is logged once each way.
 * A tier whose budget read gets an error reply (WRONGTYPE on its key, a
 * garbage runtime limit) is not "Redis down": the other tiers' budgets
 * still apply, and that tier counts as not spent, since its workers
 * dead-letter its tasks with the same error (code `redis`) and never
 * call unreserved. Logged at most once a minute.
 *
 * Tenant budgets are read the same way, per tenant on first sight and at
 * most once a second after that, from a small cache (TENANT_CACHE
 * tenants; the oldest entry makes room). A tenant counts as spent when
 * spent >= its limit (open reservations alone do not: the answer is final,
 * and they may settle lower); Redis down or an error reply counts as not
 * spent (the workers still refuse the task when its reservation fails).
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/budget.h"
#include "route.h"
#include "state.h"

#include "base/banned.h"

#define BUDGET_REFRESH_MS   1000
#define BUDGET_ERROR_LOG_MS 60000
#define TENANT_CACHE        64

/* The tenant budgets last read (one router per process, router thread). */
static struct tenant_seen {
    char name[129];
    bool spent;
    int64_t read_ms; /* monotonic; 0: free */
} tenants[TENANT_CACHE];

void router_build_tiers(struct router *rt)
{
    free(rt->tier_topics);
    free(rt->tier_spent);
    rt->tier_topics = ks_xcalloc(rt->cfg->n_tiers, sizeof(*rt->tier_topics));
    rt->tier_spent = ks_xcalloc(rt->cfg->n_tiers, sizeof(*rt->tier_spent));
    for (size_t i = 0; i < rt->cfg->n_tiers; i++) {
        char suffix[128];

        snprintf(suffix, sizeof(suffix), "tier.%s", rt->cfg->tiers[i].name);
        ks_config_topic(rt->boot, suffix, rt->tier_topics[i], KS_TOPIC_MAX);
    }
    rt->budget_read_ms = 0; /* read the new tiers' budgets now */
}

/* A tier's budget read got an error reply: logged, at most once a minute
 * (one router per process, on its one thread). */
static void budget_error(struct router *rt, const char *tier)
{
    static int64_t logged_ms;
    int64_t mono = ks_mono_ms();

    if (logged_ms == 0 || mono - logged_ms >= BUDGET_ERROR_LOG_MS) {
        logged_ms = mono;
        ks_log_error("router",
                     "tier '%s': budget read refused by redis (%s): its "
                     "tasks are routed and dead-lettered by its workers",
                     tier, ks_store_last_error(rt->rs));
    }
}

/* Reads every tier's budget into rt->tier_spent: all or nothing when
 * Redis is unreachable; a tier whose read gets an error reply counts as
 * not spent. */
static void read_budgets(struct router *rt)
{
    int64_t now = ks_config_budget_now_ms(rt->cfg);
    bool ok = true;
    char day[9];

    ks_budget_day(now, day);
    for (size_t i = 0; ok && i < rt->cfg->n_tiers; i++) {
        const struct ks_tier_cfg *t = &rt->cfg->tiers[i];
        struct ks_budget_state bs;
        enum ks_err err = ks_budget_read(rt->rs, "tier", t->name, day,
                                         t->daily_budget_micro, now, &bs);

        if (err == KS_ERR_UPSTREAM || err == KS_ERR_INVALID) {
            budget_error(rt, t->name);
            rt->tier_spent[i] = false;
            continue;
        }
        if (err != KS_OK) {
            ok = false;
            break;
        }
        rt->tier_spent[i] =
            bs.limit_micro != KS_BUDGET_NO_LIMIT &&
            bs.spent_micro + bs.reserved_micro >= bs.limit_micro;
    }
    if (!ok && !rt->redis_down_logged) {
        ks_log_warn("router", "redis unreachable: routing without the "
                              "budget step until it is back");
    } else if (ok && rt->redis_down_logged) {
        ks_log_info("router", "redis is back: budgets apply again");
    }
    rt->redis_down_logged = !ok;
    rt->budget_known = ok;
}

/* The learned score of task's input and messages. */
static double score(const struct router *rt, const struct ks_task *task)
{
    struct ks_buf text;
    double sc;
    char *s;

    ks_buf_init(&text);
    if (task->input) {
        ks_buf_append(&text, task->input, strlen(task->input));
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        ks_buf_append(&text, "\n", text.len ? 1 : 0);
        ks_buf_append(&text, task->messages[i].content,
                      strlen(task->messages[i].content));
    }
    s = ks_buf_take(&text);
    sc = rt->scorer->score(rt->model, task, s ? s : "", s ? strlen(s) : 0);
    free(s);
    return sc;
}

/* The batch's clock (a cache refreshed once a second needs no fresher). */
static int64_t batch_now(const struct router *rt)
{
    return rt->batch_ms ? rt->batch_ms : ks_mono_ms();
}

struct route_state router_world(struct router *rt, const struct ks_task *task)
{
    struct route_state st = {-1, NULL};
    int64_t mono = batch_now(rt);

    if (rt->budget_read_ms == 0 ||
        mono - rt->budget_read_ms >= BUDGET_REFRESH_MS) {
        rt->budget_read_ms = mono;
        read_budgets(rt);
    }
    st.tier_spent = rt->budget_known ? rt->tier_spent : NULL;
    if (task && rt->cfg->score_model) {
        if (rt->model) {
            st.score = score(rt, task);
        } else if (!rt->no_scorer_logged) {
            ks_log_warn("router", "routing.score_model is set but this "
                                  "router has no scorer: score step skipped");
            rt->no_scorer_logged = true;
        }
    }
    return st;
}

/* The cache entry of tenant: its own when present, else the free or
 * oldest one, cleared. */
static struct tenant_seen *tenant_entry(const char *tenant)
{
    struct tenant_seen *oldest = &tenants[0];

    for (size_t i = 0; i < TENANT_CACHE; i++) {
        if (tenants[i].read_ms && strcmp(tenants[i].name, tenant) == 0) {
            return &tenants[i];
        }
        if (tenants[i].read_ms < oldest->read_ms) {
            oldest = &tenants[i];
        }
    }
    memset(oldest, 0, sizeof(*oldest));
    ks_strlcpy(oldest->name, tenant, sizeof(oldest->name));
    return oldest;
}

bool router_tenant_spent(struct router *rt, const char *tenant)
{
    struct tenant_seen *e;
    struct ks_budget_state bs;
    int64_t mono = batch_now(rt), now;
    char day[9];

    if (!tenant || !tenant[0] || strlen(tenant) >= sizeof(e->name)) {
        return false;
    }
    e = tenant_entry(tenant);
    if (e->read_ms && mono - e->read_ms < BUDGET_REFRESH_MS) {
        return e->spent;
    }
    now = ks_config_budget_now_ms(rt->cfg);
    ks_budget_day(now, day);
    e->read_ms = mono;
    e->spent = ks_budget_read(rt->rs, "tenant", tenant, day,
                              ks_config_tenant_limit(rt->cfg, tenant), now,
                              &bs) == KS_OK &&
               bs.limit_micro != KS_BUDGET_NO_LIMIT &&
               bs.spent_micro >= bs.limit_micro;
    return e->spent;
}
