/*
 * world.c - the outside world route_task() looks at: the per-tier
 * budget flags and the learned difficulty score.
 *
 * Budgets are read from Redis at most once a second for all tiers (a
 * reload resets the clock); with Redis down the budget step is skipped
 * (workers still fail closed) and the change is logged once each way.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/budget.h"
#include "route.h"
#include "router_internal.h"

#include "base/banned.h"

#define BUDGET_REFRESH_MS 1000

/* Refreshes the per-tier budget flags when they are older than a second.
 * Returns the state route_task() takes (tier_spent NULL when unknown). */
struct route_state router_world(struct router *rt, const struct ks_task *task)
{
    struct route_state st = {-1, NULL};
    int64_t mono = ks_mono_ms();

    if (rt->budget_read_ms == 0 ||
        mono - rt->budget_read_ms >= BUDGET_REFRESH_MS) {
        int64_t now = ks_config_budget_now_ms(rt->cfg);
        bool ok = true;
        char day[9];

        rt->budget_read_ms = mono;
        ks_budget_day(now, day);
        for (size_t i = 0; ok && i < rt->cfg->n_tiers; i++) {
            const struct ks_tier_cfg *t = &rt->cfg->tiers[i];
            struct ks_budget_state bs;

            if (ks_budget_read(rt->rs, "tier", t->name, day,
                               t->daily_budget_micro, now, &bs) != KS_OK) {
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
    st.tier_spent = rt->budget_known ? rt->tier_spent : NULL;
    if (task && rt->cfg->score_model) {
        if (rt->model) {
            struct ks_buf text;
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
            st.score =
                rt->scorer->score(rt->model, s ? s : "", s ? strlen(s) : 0);
            free(s);
        } else if (!rt->no_scorer_logged) {
            ks_log_warn("router", "routing.score_model is set but this "
                                  "router has no scorer: score step skipped");
            rt->no_scorer_logged = true;
        }
    }
    return st;
}
