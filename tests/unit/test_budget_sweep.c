/*
 * test_budget_sweep.c - budgets against a real redis-server after their
 * reservations outlive their callers: expired and lapsed-owner
 * reservations charged at worst case and their room released (timed by
 * Redis, not the caller), late settles replacing that charge once, a
 * reserve run after its own settle making nothing, and the TTLs of the
 * day keys. The server, the pinned time and the helpers are
 * budget_fixture.h's.
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

/* A reservation that expires unsettled (its worker died mid-call, and the
 * call may have been billed) is charged at its worst case, not dropped. */
static void budget_expired_reservation_is_charged_at_worst_case(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;
    const char *by;

    assert_int_equal(reserve(state, "t", 1000, "", -1, 600, t0, 50, &res, NULL),
                     KS_OK);
    assert_int_equal(reserve(state, "t", 1000, "", -1, 500, t0, 50, &res, &by),
                     KS_ERR_BUDGET);
    sleep_ms(150);
    assert_int_equal(ks_budget_read(redis_fixture_store(state), "tier", "t",
                                    day0, 1000, t0, &st),
                     KS_OK);
    assert_int_equal(st.spent_micro, 600);
    assert_int_equal(st.reserved_micro, 0);
    assert_int_equal(st.expired_micro, 600);
    assert_int_equal(field("tier", "t", "expired_micro"), 600);
    /* the room of the open reservation is back; the spend stays */
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 400, t0, LONG_TTL_MS, &res, &by),
        KS_OK);
    assert_int_equal(
        redis_server_num(&srv, "HLEN %s", bkey("tier", "t", day0, ":amt")), 1);
    assert_int_equal(
        redis_server_num(&srv, "ZCARD %s", bkey("tier", "t", day0, ":res")), 1);
}

/* Expiry is timed by Redis TIME: a worker whose clock is behind (the
 * caller's now_ms 10 minutes early) does not have its fresh reservation
 * swept by a worker with the right clock. */
static void budget_expiry_is_timed_by_redis_not_the_caller(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;
    int64_t wall = ks_wall_ms(), behind = wall - 10 * 60 * 1000;

    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 600, behind, 60000, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_read(redis_fixture_store(state), "tier", "t",
                                    res.day, 1000, wall, &st),
                     KS_OK);
    assert_int_equal(st.reserved_micro, 600);
    assert_int_equal(st.spent_micro, 0);
}

/* A settle after the sweep charged its reservation at worst case replaces
 * that charge with the actual cost, once: the worker that made the call
 * knows it (a Redis outage longer than the liveness lifetime makes every
 * live worker look dead; keeping the worst case overcharged every call
 * in flight, as the fault suite's Redis restart showed). */
static void budget_late_settle_replaces_the_worst_case_once(void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(
        reserve(state, "t", 1000, "acme", 1000, 600, t0, 50, &res, NULL),
        KS_OK);
    sleep_ms(150);
    /* reading the tier sweeps the tier only; the tenant's stays open */
    assert_state(state, "tier", "t", day0, t0, 600, 0);
    assert_int_equal(field("tier", "t", "expired_micro"), 600);
    assert_int_equal(field("tenant", "acme", "reserved"), 600);
    assert_int_equal(field("tenant", "acme", "spent"), 0);
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res, 300, t0), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 300, 0);
    assert_state(state, "tenant", "acme", day0, t0, 300, 0);
    assert_int_equal(field("tier", "t", "expired_micro"), 0);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS %s", bkey("tier", "t", day0, ":swept")),
        0);
    /* and a second settle changes nothing */
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res, 300, t0), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 300, 0);
    assert_state(state, "tenant", "acme", day0, t0, 300, 0);
    assert_int_equal(field("tier", "t", "expired_micro"), 0);
}

/* A worker killed mid-call stops renewing its liveness: its reservations
 * are charged at worst case and their room released within its liveness
 * (here 300 ms), long before their own expiry; a live worker's stay. */
static void budget_lapsed_owner_is_charged_and_released(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_budget_owner dead, alive;
    struct ks_budget_reservation a, b;
    struct ks_budget_state st;
    const char *by;

    ks_budget_owner_init(&dead, 300);
    ks_budget_owner_init(&alive, 300);
    assert_string_not_equal(dead.id, alive.id);
    assert_int_equal(ks_budget_reserve(rs, &dead, "t", 1000, "acme", -1, 600,
                                       t0, LONG_TTL_MS, &a, NULL),
                     KS_OK);
    assert_string_equal(a.owner, dead.id);
    assert_int_equal(ks_budget_reserve(rs, &alive, "t", 1000, "", -1, 300, t0,
                                       LONG_TTL_MS, &b, NULL),
                     KS_OK);
    assert_int_equal(ks_budget_reserve(rs, NULL, "t", 1000, "", -1, 200, t0,
                                       LONG_TTL_MS, &b, &by),
                     KS_ERR_BUDGET);
    for (int i = 0; i < 6; i++) { /* 600 ms: alive renews, dead does not */
        sleep_ms(100);
        assert_int_equal(
            ks_budget_live_read(rs, &alive, "tier", "t", day0, 1000, &st),
            KS_OK);
    }
    assert_int_equal(st.spent_micro, 600);
    assert_int_equal(st.reserved_micro, 300);
    assert_int_equal(st.expired_micro, 600);
    assert_state(state, "tenant", "acme", day0, t0, 600, 0);
    /* the dead worker's set and liveness entry are gone */
    assert_int_equal(
        redis_server_num(&srv, "ZSCORE " PREFIX "{budget}:live %s", dead.id),
        0);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS " PREFIX "{budget}:w:%s", dead.id), 0);
    assert_int_equal(
        redis_server_num(&srv, "SCARD " PREFIX "{budget}:w:%s", alive.id), 1);
}

static void assert_ttl_in_range(const char *key, long long lo, long long hi)
{
    long long ttl = redis_server_num(&srv, "TTL %s", key);

    if (ttl < lo || ttl > hi) {
        fail_msg("TTL of %s is %lld, expected %lld..%lld", key, ttl, lo, hi);
    }
}

static void budget_day_keys_expire_two_days_after_their_day(void **state)
{
    struct ks_budget_reservation res;
    int64_t now = ks_wall_ms();
    int64_t day_end = now / DAY_MS * DAY_MS + DAY_MS;
    long long want = (long long)((day_end + 2 * DAY_MS - now) / 1000);
    char day[9];

    ks_budget_day(now, day);
    assert_int_equal(
        reserve(state, "t", -1, "acme", -1, 600, now, 1, &res, NULL), KS_OK);
    assert_ttl_in_range(bkey("tier", "t", day, ""), want - 3, want + 1);
    assert_ttl_in_range(bkey("tier", "t", day, ":res"), want - 3, want + 1);
    assert_ttl_in_range(bkey("tier", "t", day, ":amt"), want - 3, want + 1);
    assert_ttl_in_range(bkey("tenant", "acme", day, ""), want - 3, want + 1);
    /* a sweep charges the expired id and keeps it, with the same TTL */
    sleep_ms(20);
    assert_state(state, "tier", "t", day, now + 10, 600, 0);
    assert_ttl_in_range(bkey("tier", "t", day, ":swept"), want - 3, want + 1);
    assert_true(want > 2 * 86400 && want <= 3 * 86400);
    /* runtime limits have no day and no TTL */
    assert_int_equal(
        ks_budget_set_limit(redis_fixture_store(state), "tier", "t", 5), KS_OK);
    assert_int_equal(
        redis_server_num(&srv, "TTL " PREFIX "{budget}:limit:tier:t"), -1);
}

/* id with its counter moved on by k: ids are "<host>-<pid>-<salt>-<counter
 * in hex>" (store_key.c). */
static void id_plus(const char *id, unsigned k, char *out, size_t size)
{
    char base[64];
    char *dash;

    ks_strlcpy(base, id, sizeof(base));
    dash = strrchr(base, '-');
    assert_non_null(dash);
    *dash = '\0';
    snprintf(out, size, "%s-%llx", base, strtoull(dash + 1, NULL, 16) + k);
}

/* The id the next reservation of this process will get (taking one here
 * moves the counter: the next is that plus one). */
static void next_reservation_id(char *out, size_t size)
{
    char mine[64];

    ks_store_unique_id(mine, sizeof(mine));
    id_plus(mine, 1, out, size);
}

/* A worker that gave up waiting for a reserve's reply (Redis stalled past
 * redis.timeout_ms) settles that reservation at 0 (spend.c's debt). When
 * Redis runs the reserve only after that settle (a stall, a script queued
 * behind a slow one), it must neither hold room no call uses nor be
 * charged at its worst case when it expires: it is refused. The same for
 * a turn's reserve_many. */
static void budget_reserve_run_after_its_settle_makes_nothing(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_budget_reservation res, gave_up = {.day = "", .tier = "t"};
    struct ks_budget_request q[2] = {
        {"t", 1000, "acme", 1000, 300, 50},
        {"t", 1000, "acme", 1000, 300, 50},
    };
    struct ks_budget_reservation many[2], both[2];
    const char *by[2];
    enum ks_err errs[2];

    ks_strlcpy(gave_up.day, day0, sizeof(gave_up.day));
    ks_strlcpy(gave_up.tenant, "acme", sizeof(gave_up.tenant));
    gave_up.amount_micro = 600;
    next_reservation_id(gave_up.id, sizeof(gave_up.id));
    assert_int_equal(ks_budget_settle(rs, &gave_up, 0, t0), KS_OK);
    assert_int_not_equal(
        reserve(state, "t", 1000, "acme", 1000, 600, t0, 50, &res, NULL),
        KS_OK);
    /* a turn's two reservations, settled at 0 by settle_many first */
    both[0] = both[1] = gave_up;
    next_reservation_id(both[0].id, sizeof(both[0].id));
    id_plus(both[0].id, 1, both[1].id, sizeof(both[1].id));
    assert_int_equal(
        ks_budget_settle_many(rs, 2, both, (const int64_t[]){0, 0}, t0, errs),
        KS_OK);
    /* the batch script is refused; the client's fallback reserves each
     * request alone under a new id (a late batch's reply is read by no
     * one: nothing is made then) */
    assert_int_equal(ks_budget_reserve_many(rs, NULL, 2, q, t0, many, by, errs),
                     KS_OK);
    for (int i = 0; i < 2; i++) {
        assert_string_not_equal(many[i].id, both[i].id);
        assert_int_equal(redis_server_num(&srv, "HEXISTS %s %s",
                                          bkey("tier", "t", day0, ":amt"),
                                          both[i].id),
                         0);
    }
    assert_int_equal(
        ks_budget_settle_many(rs, 2, many, (const int64_t[]){0, 0}, t0, errs),
        KS_OK);
    sleep_ms(150); /* past their expiry: a sweep would charge them */
    assert_state(state, "tier", "t", day0, t0, 0, 0);
    assert_state(state, "tenant", "acme", day0, t0, 0, 0);
    /* a reservation of a new id goes through */
    assert_int_equal(reserve(state, "t", 1000, "acme", 1000, 600, t0,
                             LONG_TTL_MS, &res, NULL),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0, 0, 600);
}

/* Every key a reservation writes has the day's TTL, also when an earlier
 * settle emptied (and so deleted) the reservation set and hash. */
static void budget_keys_made_again_get_the_ttl(void **state)
{
    struct ks_budget_reservation a, b, c;
    const char *keys[3];

    assert_int_equal(
        reserve(state, "k", 10000, "", -1, 100, t0, LONG_TTL_MS, &a, NULL),
        KS_OK);
    assert_int_equal(ks_budget_settle(redis_fixture_store(state), &a, 10, t0),
                     KS_OK);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS %s", bkey("tier", "k", day0, ":res")),
        0);
    assert_int_equal(
        reserve(state, "k", 10000, "", -1, 100, t0, LONG_TTL_MS, &b, NULL),
        KS_OK);
    assert_int_equal(
        reserve(state, "k", 10000, "", -1, 100, t0, LONG_TTL_MS, &c, NULL),
        KS_OK);
    keys[0] = bkey("tier", "k", day0, "");
    keys[1] = bkey("tier", "k", day0, ":res");
    keys[2] = bkey("tier", "k", day0, ":amt");
    for (int i = 0; i < 3; i++) {
        assert_true(redis_server_num(&srv, "TTL %s", keys[i]) > 0);
    }
}

/* A reservation of cost 0 creates no budget hash; its settle does, and
 * the hash gets the day's TTL like any other (never a key for ever). */
static void budget_settle_of_a_free_reservation_sets_the_ttl(void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(
        reserve(state, "z", 1000, "", -1, 0, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_settle(redis_fixture_store(state), &res, 7, t0),
                     KS_OK);
    assert_int_equal(field("tier", "z", "spent"), 7);
    assert_true(redis_server_num(&srv, "TTL %s", bkey("tier", "z", day0, "")) >
                0);
}

int main(void)
{
#define T(f)                                                                   \
    cmocka_unit_test_setup_teardown(f, budget_setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(budget_expired_reservation_is_charged_at_worst_case),
        T(budget_expiry_is_timed_by_redis_not_the_caller),
        T(budget_late_settle_replaces_the_worst_case_once),
        T(budget_lapsed_owner_is_charged_and_released),
        T(budget_settle_of_a_free_reservation_sets_the_ttl),
        T(budget_keys_made_again_get_the_ttl),
        T(budget_day_keys_expire_two_days_after_their_day),
        T(budget_reserve_run_after_its_settle_makes_nothing),
    };
#undef T
    return cmocka_run_group_tests_name(
        "budget_sweep", tests, budget_group_setup, redis_server_group_teardown);
}
