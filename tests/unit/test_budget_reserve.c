/*
 * test_budget_reserve.c - daily budgets against a real redis-server, one
 * reservation at a time: reservations refused at the limit, atomically for
 * tier and tenant; settle moving reserved to spent once per id; runtime
 * limits; budget days, resets and replayed spend; reservation ids; keys
 * that tenant names cannot forge; error replies and Redis down giving
 * KS_ERR_UPSTREAM and KS_ERR_RETRY. The server, the pinned time and the
 * helpers are budget_fixture.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "base/util.h"
#include "budget_fixture.h"
#include "redis/budget.h"
#include "redis/store.h"

#include "base/banned.h"

/* ---- tests -------------------------------------------------------------- */

static void budget_day_is_the_utc_date(void **state)
{
    char day[9];

    (void)state;
    ks_budget_day(0, day);
    assert_string_equal(day, "19700101");
    ks_budget_day(1709251199999, day); /* 2024-02-29T23:59:59.999Z */
    assert_string_equal(day, "20240229");
    ks_budget_day(1709251200000, day);
    assert_string_equal(day, "20240301");
    ks_budget_day(-1, day);
    assert_string_equal(day, "19691231");
}

static void budget_reserve_refuses_when_limit_reached(void **state)
{
    struct ks_budget_reservation res;
    const char *by = "unset";

    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 600, t0, LONG_TTL_MS, &res, &by),
        KS_OK);
    assert_null(by);
    assert_string_equal(res.day, day0);
    assert_string_equal(res.tier, "t");
    assert_int_equal(res.amount_micro, 600);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 500, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_string_equal(by, "tier");
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 400, t0, LONG_TTL_MS, &res, &by),
        KS_OK);
    assert_state(state, "tier", "t", day0, t0, 0, 1000);
}

static void budget_reserve_checks_tenant_and_tier_atomically(void **state)
{
    struct ks_budget_reservation res;
    const char *by = NULL;

    assert_int_equal(reserve(state, "t", 10000, "acme", 1000, 1000, t0,
                             LONG_TTL_MS, &res, &by),
                     KS_OK);
    assert_string_equal(res.tenant, "acme");
    /* the tenant is full: nothing changes on the tier */
    assert_int_equal(
        reserve(state, "t", 10000, "acme", 1000, 1, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_string_equal(by, "tenant");
    assert_int_equal(field("tier", "t", "reserved"), 1000);
    assert_int_equal(
        redis_server_num(&srv, "HLEN %s", bkey("tier", "t", day0, ":amt")), 1);
    assert_int_equal(
        redis_server_num(&srv, "ZCARD %s", bkey("tier", "t", day0, ":res")), 1);
    /* the tier is full: nothing is created for the other tenant */
    assert_int_equal(reserve(state, "t", 10000, "beta", 100000, 9001, t0,
                             LONG_TTL_MS, &res, &by),
                     KS_ERR_BUDGET);
    assert_string_equal(by, "tier");
    assert_int_equal(redis_server_num(&srv, "EXISTS %s %s %s",
                                      bkey("tenant", "beta", day0, ""),
                                      bkey("tenant", "beta", day0, ":res"),
                                      bkey("tenant", "beta", day0, ":amt")),
                     0);
    assert_int_equal(field("tier", "t", "reserved"), 1000);
    assert_int_equal(field("tenant", "acme", "reserved"), 1000);
}

static void budget_settle_moves_reserved_to_spent_and_releases_the_rest(
    void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(reserve(state, "t", 1000, "acme", 1000, 600, t0,
                             LONG_TTL_MS, &res, NULL),
                     KS_OK);
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res, 250, t0 + 5), KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 5, 250, 0);
    assert_state(state, "tenant", "acme", day0, t0 + 5, 250, 0);
    assert_int_equal(redis_server_num(&srv, "EXISTS %s %s",
                                      bkey("tier", "t", day0, ":amt"),
                                      bkey("tier", "t", day0, ":res")),
                     0);
    /* the 350 reserved and not spent can be reserved again */
    assert_int_equal(reserve(state, "t", 1000, "acme", 1000, 750, t0 + 6,
                             LONG_TTL_MS, &res, NULL),
                     KS_OK);
}

static void budget_settle_twice_counts_once(void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(
        reserve(state, "t", 1000, "acme", -1, 600, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res, 250, t0), KS_OK);
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res, 250, t0), KS_OK);
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res, 400, t0), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 250, 0);
    assert_state(state, "tenant", "acme", day0, t0, 250, 0);
}

static void budget_runtime_limit_overrides_config(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;
    const char *by;
    struct ks_store *rs = redis_fixture_store(state);

    assert_int_equal(ks_budget_set_limit(rs, "tier", "t", 5000), KS_OK);
    assert_int_equal(
        redis_server_num(&srv, "GET " PREFIX "{budget}:limit:tier:t"), 5000);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 3000, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_read(rs, "tier", "t", day0, 1000, t0, &st),
                     KS_OK);
    assert_int_equal(st.limit_micro, 5000);
    assert_true(st.limit_is_runtime);

    assert_int_equal(ks_budget_set_limit(rs, "tier", "t", KS_BUDGET_NO_LIMIT),
                     KS_OK);
    assert_int_equal(ks_budget_read(rs, "tier", "t", day0, 1000, t0, &st),
                     KS_OK);
    assert_int_equal(st.limit_micro, 1000);
    assert_false(st.limit_is_runtime);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 1, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);

    /* a runtime 0 stops an unlimited tenant */
    assert_int_equal(ks_budget_set_limit(rs, "tenant", "acme", 0), KS_OK);
    assert_int_equal(
        reserve(state, "u", -1, "acme", -1, 1, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_string_equal(by, "tenant");
}

static void budget_unlimited_budget_never_refuses(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(reserve(state, "t", KS_BUDGET_NO_LIMIT, "acme",
                                 KS_BUDGET_NO_LIMIT, 1000000000000000, t0,
                                 LONG_TTL_MS, &res, NULL),
                         KS_OK);
    }
    assert_int_equal(ks_budget_read(redis_fixture_store(state), "tier", "t",
                                    day0, KS_BUDGET_NO_LIMIT, t0, &st),
                     KS_OK);
    assert_int_equal(st.limit_micro, KS_BUDGET_NO_LIMIT);
    assert_int_equal(st.reserved_micro, 3000000000000000);
}

static void budget_day_rollover_uses_a_fresh_budget(void **state)
{
    struct ks_budget_reservation res, next;
    int64_t tomorrow = t0 - DAY_MS / 2 + DAY_MS + 1000;
    char day1[9];
    const char *by;

    ks_budget_day(tomorrow, day1);
    assert_string_not_equal(day1, day0);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 1000, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 1, t0, LONG_TTL_MS, &next, &by),
        KS_ERR_BUDGET);
    assert_int_equal(reserve(state, "t", 1000, "", -1, 1000, tomorrow,
                             LONG_TTL_MS, &next, NULL),
                     KS_OK);
    assert_string_equal(next.day, day1);
    /* a call that started yesterday is paid from yesterday's budget */
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res, 700, tomorrow),
        KS_OK);
    assert_state(state, "tier", "t", day0, tomorrow, 700, 0);
    assert_state(state, "tier", "t", day1, tomorrow, 0, 1000);
}

static void budget_reset_keeps_the_old_spend_in_reset_micro(void **state)
{
    struct ks_budget_reservation res;
    struct ks_store *rs = redis_fixture_store(state);

    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 700, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_settle(rs, &res, 700, t0), KS_OK);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 200, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_reset(rs, "tier", "t", day0), KS_OK);
    assert_int_equal(field("tier", "t", "spent"), 0);
    assert_int_equal(field("tier", "t", "reset_micro"), 700);
    assert_int_equal(field("tier", "t", "reserved"), 200);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 800, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    /* resets add up; resetting nothing changes nothing */
    assert_int_equal(ks_budget_add_spent(rs, day0, "tier", "t", 50), KS_OK);
    assert_int_equal(ks_budget_reset(rs, "tier", "t", day0), KS_OK);
    assert_int_equal(ks_budget_reset(rs, "tier", "t", day0), KS_OK);
    assert_int_equal(field("tier", "t", "reset_micro"), 750);
    assert_int_equal(ks_budget_reset(rs, "tenant", "nobody", day0), KS_OK);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS %s", bkey("tenant", "nobody", day0, "")),
        0);
}

static void budget_add_spent_adds(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_budget_reservation res;
    const char *by;

    assert_int_equal(ks_budget_add_spent(rs, day0, "tier", "t", 250), KS_OK);
    assert_int_equal(ks_budget_add_spent(rs, day0, "tier", "t", 250), KS_OK);
    assert_int_equal(ks_budget_add_spent(rs, day0, "tenant", "acme", 5), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 500, 0);
    assert_state(state, "tenant", "acme", day0, t0, 5, 0);
    assert_true(redis_server_num(&srv, "TTL %s", bkey("tier", "t", day0, "")) >
                0);
    /* replayed spend counts against the limit */
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 501, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_int_equal(ks_budget_add_spent(rs, day0, "queue", "t", 1),
                     KS_ERR_INVALID);
}

static void budget_reservation_ids_are_unique(void **state)
{
    struct ks_budget_reservation res;
    char ids[50][48], host[64] = "", want[80];

    gethostname(host, sizeof(host));
    snprintf(want, sizeof(want), "%.12s-%ld-", host, (long)getpid());
    for (int i = 0; i < 50; i++) {
        assert_int_equal(
            reserve(state, "t", -1, "", -1, 1, t0, LONG_TTL_MS, &res, NULL),
            KS_OK);
        assert_memory_equal(res.id, want, strlen(want));
        ks_strlcpy(ids[i], res.id, sizeof(ids[i]));
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(ids[i], ids[j]);
        }
    }
}

static void budget_script_flush_falls_back_to_eval(void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 100, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(redis_server_num(&srv, "SCRIPT FLUSH"), 0);
    assert_int_equal(ks_budget_settle(redis_fixture_store(state), &res, 50, t0),
                     KS_OK);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 100, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_state(state, "tier", "t", day0, t0, 50, 100);
}

static void budget_garbage_runtime_limit_fails_closed(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;

    assert_int_equal(
        redis_server_num(&srv, "SET " PREFIX "{budget}:limit:tier:t lots"), 0);
    assert_int_equal(
        reserve(state, "t", -1, "", -1, 100, t0, LONG_TTL_MS, &res, NULL),
        KS_ERR_UPSTREAM);
    assert_int_equal(ks_budget_read(redis_fixture_store(state), "tier", "t",
                                    day0, -1, t0, &st),
                     KS_ERR_UPSTREAM);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS %s", bkey("tier", "t", day0, "")), 0);
}

/* A tenant named like another tenant's reservation set gets a budget of
 * its own: every variable part of a key is encoded (':' is %3A). */
static void budget_tenant_names_cannot_form_another_budgets_keys(void **state)
{
    struct ks_budget_reservation a, b;

    assert_int_equal(
        reserve(state, "t", -1, "acme", -1, 100, t0, LONG_TTL_MS, &a, NULL),
        KS_OK);
    assert_int_equal(
        reserve(state, "t", -1, "acme:res", -1, 30, t0, LONG_TTL_MS, &b, NULL),
        KS_OK);
    assert_state(state, "tenant", "acme", day0, t0, 0, 100);
    assert_state(state, "tenant", "acme:res", day0, t0, 0, 30);
    assert_int_equal(redis_server_num(&srv, "EXISTS %s",
                                      bkey("tenant", "acme%3Ares", day0, "")),
                     1);
    assert_int_equal(redis_server_num(&srv, "ZCARD %s",
                                      bkey("tenant", "acme", day0, ":res")),
                     1);
    assert_int_equal(
        ks_budget_set_limit(redis_fixture_store(state), "tenant", "acme:x", 5),
        KS_OK);
    assert_int_equal(redis_server_num(&srv, "EXISTS " PREFIX
                                            "{budget}:limit:tenant:acme%%3Ax"),
                     1);
}

/* An error reply (here WRONGTYPE from a key someone else wrote) is not
 * "Redis down": it is permanent for the call, KS_ERR_UPSTREAM. */
static void budget_error_reply_is_not_redis_down(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;

    assert_int_equal(redis_server_num(&srv, "SET %s x",
                                      bkey("tenant", "acme", day0, ":res")),
                     0);
    assert_int_equal(
        reserve(state, "t", -1, "acme", -1, 100, t0, LONG_TTL_MS, &res, NULL),
        KS_ERR_UPSTREAM);
    assert_int_equal(ks_budget_read(redis_fixture_store(state), "tenant",
                                    "acme", day0, -1, t0, &st),
                     KS_ERR_UPSTREAM);
    assert_int_equal(ks_budget_add_spent(redis_fixture_store(state), day0,
                                         "tenant", "acme", 5),
                     KS_OK); /* only the hash: untouched by the set */
}

static void budget_redis_down_gives_retry(void **state)
{
    struct redis_fixture *fx =
        redis_fixture_new(&srv, redis_server_free_port(), PREFIX);
    struct ks_budget_reservation res = {0}, open = {
                                                .id = "h-1-1",
                                                .tier = "t",
                                                .amount_micro = 5,
                                            };
    struct ks_budget_state st;

    (void)state;
    assert_non_null(fx->rs);
    ks_strlcpy(open.day, day0, sizeof(open.day));
    for (int i = 0; i < 2; i++) { /* connect refused, then in backoff */
        assert_int_equal(ks_budget_reserve(fx->rs, NULL, "t", 1000, "acme",
                                           1000, 1, t0, LONG_TTL_MS, &res,
                                           NULL),
                         KS_ERR_RETRY);
        /* never sent: nothing named that a 0-settle would have to undo */
        assert_false(ks_store_sent(fx->rs));
        assert_string_equal(res.id, "");
        assert_int_equal(ks_budget_settle(fx->rs, &open, 5, t0), KS_ERR_RETRY);
        assert_int_equal(
            ks_budget_read(fx->rs, "tier", "t", day0, 1000, t0, &st),
            KS_ERR_RETRY);
        assert_int_equal(ks_budget_set_limit(fx->rs, "tier", "t", 1),
                         KS_ERR_RETRY);
        assert_int_equal(ks_budget_add_spent(fx->rs, day0, "tier", "t", 1),
                         KS_ERR_RETRY);
        assert_int_equal(ks_budget_reset(fx->rs, "tier", "t", day0),
                         KS_ERR_RETRY);
    }
    {
        const struct ks_budget_request q[2] = {
            {"t", 1000, "acme", 1000, 1, LONG_TTL_MS},
            {"t", 1000, NULL, -1, 1, LONG_TTL_MS}};
        struct ks_budget_reservation many[2];
        const char *by[2];
        enum ks_err errs[2];

        memset(many, 'x', sizeof(many)); /* whatever the caller had */
        assert_int_equal(
            ks_budget_reserve_many(fx->rs, NULL, 2, q, t0, many, by, errs),
            KS_ERR_RETRY);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(errs[i], KS_ERR_RETRY);
            assert_string_equal(many[i].id, ""); /* never sent */
        }
    }
    redis_fixture_destroy(fx);
}

int main(void)
{
#define T(f)                                                                   \
    cmocka_unit_test_setup_teardown(f, budget_setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(budget_day_is_the_utc_date),
        T(budget_reserve_refuses_when_limit_reached),
        T(budget_reserve_checks_tenant_and_tier_atomically),
        T(budget_settle_moves_reserved_to_spent_and_releases_the_rest),
        T(budget_settle_twice_counts_once),
        T(budget_runtime_limit_overrides_config),
        T(budget_unlimited_budget_never_refuses),
        T(budget_day_rollover_uses_a_fresh_budget),
        T(budget_reset_keeps_the_old_spend_in_reset_micro),
        T(budget_add_spent_adds),
        T(budget_reservation_ids_are_unique),
        T(budget_script_flush_falls_back_to_eval),
        T(budget_garbage_runtime_limit_fails_closed),
        T(budget_tenant_names_cannot_form_another_budgets_keys),
        T(budget_error_reply_is_not_redis_down),
        T(budget_redis_down_gives_retry),
    };
#undef T
    return cmocka_run_group_tests_name("budget_reserve", tests,
                                       budget_group_setup,
                                       redis_server_group_teardown);
}
