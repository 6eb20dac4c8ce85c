/*
 * test_budget.c - daily budgets against a real redis-server: reservations
 * refused at the limit, atomically for tier and tenant; settle moving
 * reserved to spent once per id, even after the reservation expired and
 * was swept; runtime limits; day keys and their TTLs; many processes
 * never pushing spent past the limit; Redis down giving KS_ERR_RETRY.
 *
 * The group setup starts `redis-server` (from PATH, by redis_server.h) on
 * a free port in a temporary directory and the group teardown kills it and
 * removes the directory, also when tests fail; the server dies with this
 * process (PR_SET_PDEATHSIG) if the binary crashes. Without redis-server the
 * group setup fails with a message: a missing server is not a pass. Every test
 * starts from FLUSHALL with its own store (prefix "kt:").
 *
 * Times are pinned to noon UTC of today (t0) so that a test running across
 * midnight does not see two budget days.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "config/config.h"
#include "redis/budget.h"
#include "redis/store.h"
#include "redis_server.h"

#include "base/banned.h"

#define DAY_MS      (86400 * (int64_t)1000)
#define LONG_TTL_MS (10 * 60 * 1000)
#define PREFIX      "kt:"

/* The redis-server of the group. */
static struct redis_server srv = {.pid = -1};

static int64_t t0; /* noon UTC today */
static char day0[9];

/* ---- the server --------------------------------------------------------- */

/* The group state is the server, for redis_server_group_teardown. */
static int group_setup(void **state)
{
    *state = &srv;
    t0 = ks_wall_ms() / DAY_MS * DAY_MS + DAY_MS / 2;
    ks_budget_day(t0, day0);
    ks_log_set_level("error");
    return redis_server_start(&srv, "budget") ? 0 : -1;
}

/* ---- fixtures and helpers ----------------------------------------------- */

static int setup(void **state)
{
    return redis_fixture_setup(&srv, PREFIX, state);
}

/* The key of a budget: kind/name on day, with suffix ("", ":res", ...). */
static const char *bkey(const char *kind,
                        const char *name,
                        const char *day,
                        const char *suffix)
{
    static char keys[4][256];
    static int next;
    char *k = keys[next++ % 4];

    snprintf(k, 256, PREFIX "{budget}:%s:%s:%s%s", day, kind, name, suffix);
    return k;
}

static long long field(const char *kind, const char *name, const char *f)
{
    return redis_server_num(&srv, "HGET %s %s", bkey(kind, name, day0, ""), f);
}

static enum ks_err reserve(void **state,
                           const char *tier,
                           int64_t tier_limit,
                           const char *tenant,
                           int64_t tenant_limit,
                           int64_t cost,
                           int64_t now,
                           int64_t ttl_ms,
                           struct ks_budget_reservation *res,
                           const char **refused_by)
{
    return ks_budget_reserve(redis_fixture_store(state), NULL, tier, tier_limit,
                             tenant, tenant_limit, cost, now, ttl_ms, res,
                             refused_by);
}

static void assert_state(void **state,
                         const char *kind,
                         const char *name,
                         const char *day,
                         int64_t now,
                         int64_t spent,
                         int64_t reserved)
{
    struct ks_budget_state st;

    assert_int_equal(ks_budget_read(redis_fixture_store(state), kind, name, day,
                                    -1, now, &st),
                     KS_OK);
    assert_int_equal(st.spent_micro, spent);
    assert_int_equal(st.reserved_micro, reserved);
}

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

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

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

/* A settle that comes after a sweep charged the reservation keeps the
 * worst-case charge (the provider may have billed it) and never counts
 * the money twice, on either budget. */
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

/* Many reservations in one round trip: each decided as a single one. */
static void budget_reserve_many_decides_each(void **state)
{
    struct ks_budget_owner o;
    struct ks_budget_request q[3] = {
        {"t", 1000, "acme", 100, 80, LONG_TTL_MS},
        {"t", 1000, "acme", 100, 80, LONG_TTL_MS}, /* tenant full */
        {"t", 1000, "beta", -1, 500, LONG_TTL_MS},
    };
    struct ks_budget_reservation res[3];
    const char *by[3];
    enum ks_err errs[3];

    redisReply *r = redisCommand(srv.c, "CONFIG RESETSTAT");

    assert_non_null(r);
    freeReplyObject(r);
    ks_budget_owner_init(&o, 5000);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, 3,
                                            q, t0, res, by, errs),
                     KS_OK);
    /* answered by the pipeline itself, not by single calls after errors */
    r = redisCommand(srv.c, "INFO stats");
    assert_non_null(r);
    assert_non_null(strstr(r->str, "total_error_replies:0\r\n"));
    freeReplyObject(r);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[1], KS_ERR_BUDGET);
    assert_string_equal(by[1], "tenant");
    assert_int_equal(errs[2], KS_OK);
    assert_string_not_equal(res[0].id, res[2].id);
    assert_state(state, "tier", "t", day0, t0, 0, 580);
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &res[2], 100, t0), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 100, 80);
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

/* The commands Redis ran since the last CONFIG RESETSTAT, inner script
 * calls included, EVALSHA itself not (INFO commandstats). */
static long long inner_calls(void)
{
    redisReply *r = redisCommand(srv.c, "INFO commandstats");
    long long total = 0;
    const char *p;

    assert_non_null(r);
    for (p = strstr(r->str, "cmdstat_"); p; p = strstr(p + 1, "cmdstat_")) {
        const char *calls = strstr(p, ":calls=");

        if (calls && strncmp(p, "cmdstat_evalsha:", 16) != 0 &&
            strncmp(p, "cmdstat_config", 14) != 0) {
            total += strtoll(calls + 7, NULL, 10);
        }
    }
    freeReplyObject(r);
    return total;
}

/* What a pipeline of reservations and settlements costs Redis: the
 * sweeps and the liveness renewal run once per pipeline (not per
 * reservation) and a settle touches no TTL the reserve set already.
 * Before: 27 commands per reservation and 18 per settlement with a tier
 * and a tenant budget and an owner; then 16 and 14 (the TTLs are set when
 * a budget's first reservation makes its keys); now one script call for
 * the whole batch, whose commands are per budget, not per reservation
 * (about 24 and 13 for the 64: under one command a call). */
static void budget_many_costs_redis_few_commands_per_call(void **state)
{
    enum {
        N = 64
    };
    struct ks_budget_owner o;
    struct ks_budget_request q[N];
    struct ks_budget_reservation res[N];
    const char *by[N];
    enum ks_err errs[N];
    int64_t actual[N];
    redisReply *r;
    long long calls;

    ks_budget_owner_init(&o, 5000);
    for (int i = 0; i < N; i++) {
        q[i] = (struct ks_budget_request){"t",     1000000, "acme",
                                          1000000, 10,      LONG_TTL_MS};
        actual[i] = 5;
    }
    r = redisCommand(srv.c, "CONFIG RESETSTAT");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, N,
                                            q, t0, res, by, errs),
                     KS_OK);
    calls = inner_calls();
    print_message("reserve: %.1f commands per reservation\n",
                  (double)calls / N);
    assert_true(calls <= N);
    r = redisCommand(srv.c, "CONFIG RESETSTAT");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(ks_budget_settle_many(redis_fixture_store(state), N, res,
                                           actual, t0, errs),
                     KS_OK);
    calls = inner_calls();
    print_message("settle: %.1f commands per settlement\n", (double)calls / N);
    assert_true(calls <= N / 2);
    assert_state(state, "tier", "t", day0, t0, 5 * N, 0);
    assert_state(state, "tenant", "acme", day0, t0, 5 * N, 0);
}

/* A batch that overflows the limit is decided in job order as single
 * reservations one after another would be: the first three of 300 fit a
 * limit of 1000, the fourth does not, and the fifth (100) still fits the
 * room left; spent + reserved ends at the limit exactly, never past it. */
static void budget_reserve_many_grants_what_fits_in_order(void **state)
{
    enum {
        N = 6
    };
    struct ks_budget_owner o;
    struct ks_budget_request q[N];
    struct ks_budget_reservation res[N];
    const char *by[N];
    enum ks_err errs[N];
    const int64_t cost[N] = {300, 300, 300, 300, 100, 1};
    const enum ks_err want[N] = {KS_OK,         KS_OK, KS_OK,
                                 KS_ERR_BUDGET, KS_OK, KS_ERR_BUDGET};

    ks_budget_owner_init(&o, 5000);
    for (int i = 0; i < N; i++) {
        q[i] =
            (struct ks_budget_request){"t", 1000, "", -1, cost[i], LONG_TTL_MS};
    }
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, N,
                                            q, t0, res, by, errs),
                     KS_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(errs[i], want[i]);
        if (want[i] == KS_OK) {
            assert_null(by[i]);
            assert_true(res[i].id[0] != '\0');
            assert_int_equal(res[i].amount_micro, cost[i]);
        } else {
            assert_string_equal(by[i], "tier");
            assert_true(res[i].id[0] == '\0');
        }
    }
    assert_state(state, "tier", "t", day0, t0, 0, 1000);
    assert_int_equal(
        redis_server_num(&srv, "ZCARD %s", bkey("tier", "t", day0, ":res")), 4);
    assert_int_equal(
        redis_server_num(&srv, "SCARD " PREFIX "{budget}:w:%s", o.id), 4);
}

/* One batch naming several tenants: each reservation is checked against
 * its own tenant and the shared tier, a tenant's refusal refuses that
 * task only ("tenant"), and the settlements of the batch land on each
 * budget once. */
static void budget_reserve_many_mixes_tenants(void **state)
{
    enum {
        N = 6
    };
    struct ks_budget_owner o;
    struct ks_budget_request q[N] = {
        {"t", 10000, "acme", 500, 300, LONG_TTL_MS},
        {"t", 10000, "beta", -1, 300, LONG_TTL_MS},
        {"t", 10000, "acme", 500, 300, LONG_TTL_MS}, /* acme full */
        {"t", 10000, "beta", -1, 300, LONG_TTL_MS},
        {"t", 10000, "", -1, 300, LONG_TTL_MS},
        {"t", 10000, "acme", 500, 200, LONG_TTL_MS}, /* fits acme's rest */
    };
    struct ks_budget_reservation res[N];
    const char *by[N];
    enum ks_err errs[N];
    int64_t actual[N] = {100, 100, 100, 100, 100, 100};

    ks_budget_owner_init(&o, 5000);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, N,
                                            q, t0, res, by, errs),
                     KS_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(errs[i], i == 2 ? KS_ERR_BUDGET : KS_OK);
    }
    assert_string_equal(by[2], "tenant");
    assert_string_equal(res[1].tenant, "beta");
    assert_string_equal(res[4].tenant, "");
    assert_state(state, "tier", "t", day0, t0, 0, 1400);
    assert_state(state, "tenant", "acme", day0, t0, 0, 500);
    assert_state(state, "tenant", "beta", day0, t0, 0, 600);
    assert_int_equal(
        ks_budget_settle_many(redis_fixture_store(state), N, res, actual, t0,
                              errs),
        KS_ERR_INVALID); /* res[2] was refused: nothing to settle */
    assert_int_equal(errs[2], KS_ERR_INVALID);
    assert_state(state, "tier", "t", day0, t0, 500, 0);
    assert_state(state, "tenant", "acme", day0, t0, 200, 0);
    assert_state(state, "tenant", "beta", day0, t0, 200, 0);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS " PREFIX "{budget}:w:%s", o.id), 0);
}

/* budget_late_settle_replaces_the_worst_case_once, through the batch:
 * an expired reservation charged at its worst case by a sweep has that
 * charge replaced by the actual cost once, however often it is settled,
 * beside an open one settled the normal way in the same call. */
static void budget_settle_many_replaces_a_swept_charge_once(void **state)
{
    struct ks_budget_owner o;
    struct ks_budget_request q[2] = {
        {"t", 5000, "acme", 5000, 600, 50},
        {"t", 5000, "acme", 5000, 400, LONG_TTL_MS},
    };
    struct ks_budget_reservation res[2];
    const char *by[2];
    enum ks_err errs[2];
    int64_t actual[2] = {250, 150};

    ks_budget_owner_init(&o, 5000);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, 2,
                                            q, t0, res, by, errs),
                     KS_OK);
    sleep_ms(150);
    assert_state(state, "tier", "t", day0, t0, 600, 400); /* swept */
    assert_state(state, "tenant", "acme", day0, t0, 600, 400);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(ks_budget_settle_many(redis_fixture_store(state), 2,
                                               res, actual, t0, errs),
                         KS_OK);
        assert_state(state, "tier", "t", day0, t0, 400, 0);
        assert_state(state, "tenant", "acme", day0, t0, 400, 0);
        assert_int_equal(field("tier", "t", "expired_micro"), 0);
        assert_int_equal(field("tenant", "acme", "expired_micro"), 0);
    }
}

/* After SCRIPT FLUSH (a Redis restart) the batched scripts are sent again
 * as EVAL, which loads them: the batch is decided and settled as one
 * call, and the next batch runs by EVALSHA again. */
static void budget_many_after_script_flush(void **state)
{
    struct ks_budget_owner o;
    struct ks_budget_request q[2] = {
        {"t", 1000, "acme", -1, 600, LONG_TTL_MS},
        {"t", 1000, "acme", -1, 600, LONG_TTL_MS}, /* tier full */
    };
    struct ks_budget_reservation res[2];
    const char *by[2];
    enum ks_err errs[2];
    int64_t actual[2] = {100, 0};

    ks_budget_owner_init(&o, 5000);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, 1,
                                            q, t0, res, by, errs),
                     KS_OK);
    assert_int_equal(ks_budget_settle_many(redis_fixture_store(state), 1, res,
                                           actual, t0, errs),
                     KS_OK);
    assert_int_equal(redis_server_num(&srv, "SCRIPT FLUSH"), 0);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, 2,
                                            q, t0, res, by, errs),
                     KS_OK);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[1], KS_ERR_BUDGET);
    assert_string_equal(by[1], "tier");
    assert_state(state, "tier", "t", day0, t0, 100, 600);
    assert_int_equal(redis_server_num(&srv, "SCRIPT FLUSH"), 0);
    assert_int_equal(ks_budget_settle_many(redis_fixture_store(state), 1, res,
                                           actual, t0, errs),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0, 200, 0);
    assert_state(state, "tenant", "acme", day0, t0, 200, 0);
}

/* A budget first named by a later command of a pipeline is swept there:
 * the expired reservation of tenant beta is charged at its worst case by
 * the second command (the sweep runs once per budget, not only in
 * command 0). */
static void budget_reserve_many_sweeps_a_budget_named_later(void **state)
{
    struct ks_budget_owner o;
    struct ks_budget_reservation old, res[2];
    struct ks_budget_request q[2] = {
        {"t", 10000, "acme", -1, 100, LONG_TTL_MS},
        {"t", 10000, "beta", 10000, 600, LONG_TTL_MS},
    };
    const char *by[2];
    enum ks_err errs[2];

    assert_int_equal(
        reserve(state, "t", 10000, "beta", 1000, 600, t0, 1, &old, NULL),
        KS_OK);
    usleep(20 * 1000); /* expired by Redis TIME */
    ks_budget_owner_init(&o, 5000);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, 2,
                                            q, t0, res, by, errs),
                     KS_OK);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[1], KS_OK);
    assert_int_equal(field("tenant", "beta", "expired_micro"), 600);
    assert_int_equal(field("tenant", "beta", "spent"), 600);
    assert_int_equal(field("tenant", "beta", "reserved"), 600);
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

/* Settles sent without waiting (the worker sends them before serving
 * Kafka): a command run in between gets its own reply, never one of
 * theirs, and sees them; their replies come with recv. */
static void budget_settle_many_send_recv_with_commands_between(void **state)
{
    struct ks_budget_reservation res[2], other;
    int64_t actual[2] = {100, 50};
    enum ks_err errs[2];
    const char *by = NULL;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(reserve(state, "t", 1000, "acme", -1, 400, t0,
                                 LONG_TTL_MS, &res[i], NULL),
                         KS_OK);
    }
    assert_int_equal(ks_budget_settle_many_send(redis_fixture_store(state), 2,
                                                res, actual, t0, errs),
                     KS_OK);
    /* in between: 800 reserved before the settles, 150 spent after */
    assert_int_equal(reserve(state, "t", 1000, "acme", -1, 800, t0, LONG_TTL_MS,
                             &other, &by),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0, 150, 800);
    assert_int_equal(ks_budget_settle_many_recv(redis_fixture_store(state), 2,
                                                res, actual, t0, errs),
                     KS_OK);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[1], KS_OK);
    /* and the store is in step: the next command reads its own reply */
    assert_int_equal(
        ks_budget_settle(redis_fixture_store(state), &other, 10, t0), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 160, 0);
}

/* The connection breaks between send and recv: recv reports the batch
 * done (the replies were on their way) or every settle not done
 * (KS_ERR_RETRY), never half; sending them again counts each once, and
 * the store reads its own replies afterwards. */
static void budget_settle_many_recv_after_a_broken_connection(void **state)
{
    struct ks_budget_reservation res[2];
    int64_t actual[2] = {100, 50};
    enum ks_err errs[2], got;
    redisReply *r;

    for (int i = 0; i < 2; i++) {
        assert_int_equal(reserve(state, "t", 1000, "", -1, 400, t0, LONG_TTL_MS,
                                 &res[i], NULL),
                         KS_OK);
    }
    assert_int_equal(ks_budget_settle_many_send(redis_fixture_store(state), 2,
                                                res, actual, t0, errs),
                     KS_OK);
    r = redisCommand(srv.c, "CLIENT KILL TYPE normal SKIPME yes");
    assert_non_null(r);
    freeReplyObject(r);
    got = ks_budget_settle_many_recv(redis_fixture_store(state), 2, res, actual,
                                     t0, errs);
    assert_true(got == KS_OK || got == KS_ERR_RETRY);
    assert_int_equal(errs[0], got);
    assert_int_equal(errs[1], got);
    /* Sent again, as the worker's spend_tick does: the first try may
     * still meet the killed connection (its write succeeds, its read
     * finds the end) and fail as a whole. */
    for (int i = 0; i < 3; i++) {
        usleep(250 * 1000); /* the store's reconnect backoff */
        got = ks_budget_settle_many(redis_fixture_store(state), 2, res, actual,
                                    t0, errs);
        if (got == KS_OK) {
            break;
        }
        assert_int_equal(got, KS_ERR_RETRY);
    }
    assert_int_equal(got, KS_OK);
    assert_state(state, "tier", "t", day0, t0, 150, 0);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 850, t0, LONG_TTL_MS, &res[0], NULL),
        KS_OK);
    assert_state(state, "tier", "t", day0, t0, 150, 850);
}

static void budget_settle_many_settles_each_once_in_one_batch(void **state)
{
    struct ks_budget_reservation res[3];
    int64_t actual[3] = {100, 0, 250};
    enum ks_err errs[3];

    assert_int_equal(reserve(state, "t", 10000, "acme", -1, 300, t0,
                             LONG_TTL_MS, &res[0], NULL),
                     KS_OK);
    assert_int_equal(
        reserve(state, "t", 10000, "", -1, 300, t0, LONG_TTL_MS, &res[1], NULL),
        KS_OK);
    assert_int_equal(reserve(state, "t", 10000, "acme", -1, 300, t0,
                             LONG_TTL_MS, &res[2], NULL),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0, 0, 900);
    assert_int_equal(ks_budget_settle_many(redis_fixture_store(state), 3, res,
                                           actual, t0 + 1, errs),
                     KS_OK);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[2], KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 1, 350, 0);
    assert_state(state, "tenant", "acme", day0, t0 + 1, 350, 0);
    /* again, after the script cache is gone: counted once, and the
     * batch falls back to loading the script */
    assert_int_equal(redis_server_num(&srv, "SCRIPT FLUSH"), 0);
    assert_int_equal(ks_budget_settle_many(redis_fixture_store(state), 3, res,
                                           actual, t0 + 2, errs),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 2, 350, 0);
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

/* A garbage runtime limit on one tenant fails the batch's script call;
 * each request is then made the single way, so only the request naming
 * that tenant fails (KS_ERR_UPSTREAM, never a grant: fail closed) and the
 * others are decided as usual. */
static void budget_reserve_many_garbage_limit_fails_only_its_requests(
    void **state)
{
    struct ks_budget_owner o;
    struct ks_budget_request q[3] = {
        {"t", -1, "acme", -1, 100, LONG_TTL_MS},
        {"t", -1, "beta", -1, 100, LONG_TTL_MS}, /* beta's limit: garbage */
        {"t", -1, "", -1, 100, LONG_TTL_MS},
    };
    struct ks_budget_reservation res[3];
    const char *by[3];
    enum ks_err errs[3];

    ks_budget_owner_init(&o, 5000);
    assert_int_equal(
        redis_server_num(&srv, "SET " PREFIX "{budget}:limit:tenant:beta x"),
        0);
    assert_int_equal(ks_budget_reserve_many(redis_fixture_store(state), &o, 3,
                                            q, t0, res, by, errs),
                     KS_ERR_UPSTREAM);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[1], KS_ERR_UPSTREAM);
    assert_int_equal(errs[2], KS_OK);
    assert_true(res[1].id[0] == '\0');
    assert_state(state, "tier", "t", day0, t0, 0, 200);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS %s", bkey("tenant", "beta", day0, "")),
        0);
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

/* ---- many processes against one limit ----------------------------------- */

#define N_CHILDREN   8
#define N_ROUNDS     300
#define SHARED_LIMIT 1000000 /* $1.00 */

struct child_report {
    int64_t spent;  /* sum of the actual costs settled */
    int64_t errors; /* anything but KS_OK or KS_ERR_BUDGET */
    int64_t granted, refused;
};

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One worker process: reserve up to 5000, settle a random part of it, and
 * abandon one reservation in ten (a crash: it expires after 20 ms and is
 * charged at its worst case, the whole reservation). */
static void child_run(int wfd)
{
    struct redis_fixture *fx = redis_fixture_new(&srv, srv.port, PREFIX);
    struct child_report rep = {0};
    uint64_t rnd = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull | 1;
    int64_t start = ks_wall_ms();

    for (int i = 0; fx->rs && i < N_ROUNDS; i++) {
        struct ks_budget_reservation res;
        int64_t cost = 1 + (int64_t)(next_random(&rnd) % 5000);
        bool crash = next_random(&rnd) % 10 == 0;
        int64_t now = t0 + (ks_wall_ms() - start);
        enum ks_err err =
            ks_budget_reserve(fx->rs, NULL, "shared", SHARED_LIMIT, "", -1,
                              cost, now, crash ? 20 : LONG_TTL_MS, &res, NULL);

        if (err == KS_ERR_BUDGET) {
            rep.refused++;
        } else if (err != KS_OK) {
            rep.errors++;
        } else if (rep.granted++, crash) {
            rep.spent += cost;
        } else {
            int64_t actual =
                (int64_t)(next_random(&rnd) % (uint64_t)(cost + 1));

            if (ks_budget_settle(fx->rs, &res, actual, now) == KS_OK) {
                rep.spent += actual;
            } else {
                rep.errors++;
            }
        }
    }
    if (!fx->rs) {
        rep.errors++;
    }
    redis_fixture_destroy(fx);
    if (write(wfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep)) {
        _exit(2);
    }
    _exit(0); /* not exit(): the parent's cmocka and LSan state is not ours */
}

/* Polls spent and reserved until every child has exited; returns the
 * number of polls that saw spent + reserved above the limit. */
static int watch_children(const pid_t *pids, int *polls)
{
    int running = N_CHILDREN, bad = 0;
    const char *key = bkey("tier", "shared", day0, "");

    *polls = 0;
    while (running > 0) {
        redisReply *r = redisCommand(srv.c, "HMGET %s spent reserved", key);

        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            long long spent =
                r->element[0]->str ? strtoll(r->element[0]->str, NULL, 10) : 0;
            long long reserved =
                r->element[1]->str ? strtoll(r->element[1]->str, NULL, 10) : 0;

            bad += spent + reserved > SHARED_LIMIT || reserved < 0;
            (*polls)++;
        }
        if (r) {
            freeReplyObject(r);
        }
        running = 0;
        for (int i = 0; i < N_CHILDREN; i++) {
            running += pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == 0;
        }
    }
    return bad;
}

static void budget_concurrent_reservations_never_exceed_the_limit(void **state)
{
    pid_t pids[N_CHILDREN];
    int fds[N_CHILDREN][2], polls, bad;
    struct child_report total = {0}, rep;
    struct ks_budget_state st;

    fflush(NULL);
    for (int i = 0; i < N_CHILDREN; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[i][0]);
            child_run(fds[i][1]);
        }
        close(fds[i][1]);
    }
    bad = watch_children(pids, &polls);
    for (int i = 0; i < N_CHILDREN; i++) {
        ssize_t n = read(fds[i][0], &rep, sizeof(rep));

        close(fds[i][0]);
        assert_int_equal(n, sizeof(rep));
        total.spent += rep.spent;
        total.errors += rep.errors;
        total.granted += rep.granted;
        total.refused += rep.refused;
    }
    print_message("%d polls; %lld granted, %lld refused, spent %lld\n", polls,
                  (long long)total.granted, (long long)total.refused,
                  (long long)total.spent);
    assert_int_equal(bad, 0);
    assert_int_equal(total.errors, 0);
    assert_true(total.refused > 0); /* the limit was really reached */
    /* every abandoned reservation has expired and been charged */
    sleep_ms(50);
    assert_int_equal(ks_budget_read(redis_fixture_store(state), "tier",
                                    "shared", day0, SHARED_LIMIT, t0 + 60000,
                                    &st),
                     KS_OK);
    print_message("redis: spent %lld, of it expired %lld\n",
                  (long long)st.spent_micro, (long long)st.expired_micro);
    assert_int_equal(st.reserved_micro, 0);
    assert_int_equal(st.spent_micro, total.spent);
    assert_true(st.spent_micro <= SHARED_LIMIT);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(budget_day_is_the_utc_date),
        T(budget_reserve_refuses_when_limit_reached),
        T(budget_reserve_checks_tenant_and_tier_atomically),
        T(budget_settle_moves_reserved_to_spent_and_releases_the_rest),
        T(budget_settle_twice_counts_once),
        T(budget_expired_reservation_is_charged_at_worst_case),
        T(budget_expiry_is_timed_by_redis_not_the_caller),
        T(budget_late_settle_replaces_the_worst_case_once),
        T(budget_lapsed_owner_is_charged_and_released),
        T(budget_reserve_many_decides_each),
        T(budget_many_costs_redis_few_commands_per_call),
        T(budget_reserve_many_sweeps_a_budget_named_later),
        T(budget_reserve_many_grants_what_fits_in_order),
        T(budget_reserve_many_mixes_tenants),
        T(budget_settle_many_replaces_a_swept_charge_once),
        T(budget_many_after_script_flush),
        T(budget_settle_of_a_free_reservation_sets_the_ttl),
        T(budget_keys_made_again_get_the_ttl),
        T(budget_runtime_limit_overrides_config),
        T(budget_unlimited_budget_never_refuses),
        T(budget_day_keys_expire_two_days_after_their_day),
        T(budget_day_rollover_uses_a_fresh_budget),
        T(budget_reset_keeps_the_old_spend_in_reset_micro),
        T(budget_add_spent_adds),
        T(budget_reservation_ids_are_unique),
        T(budget_reserve_run_after_its_settle_makes_nothing),
        T(budget_script_flush_falls_back_to_eval),
        T(budget_settle_many_settles_each_once_in_one_batch),
        T(budget_settle_many_send_recv_with_commands_between),
        T(budget_settle_many_recv_after_a_broken_connection),
        T(budget_garbage_runtime_limit_fails_closed),
        T(budget_reserve_many_garbage_limit_fails_only_its_requests),
        T(budget_tenant_names_cannot_form_another_budgets_keys),
        T(budget_error_reply_is_not_redis_down),
        T(budget_redis_down_gives_retry),
        T(budget_concurrent_reservations_never_exceed_the_limit),
    };
#undef T
    return cmocka_run_group_tests_name("budget", tests, group_setup,
                                       redis_server_group_teardown);
}
