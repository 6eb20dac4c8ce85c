/*
 * budget_fixture.c - the shared server, times and helpers of the budget
 * test programs (see budget_fixture.h).
 */
#include "budget_fixture.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

/* The redis-server of the group. */
struct redis_server srv = {.pid = -1};

int64_t t0; /* noon UTC today */
char day0[9];

/* ---- the server --------------------------------------------------------- */

/* The group state is the server, for redis_server_group_teardown. */
int budget_group_setup(void **state)
{
    *state = &srv;
    t0 = ks_wall_ms() / DAY_MS * DAY_MS + DAY_MS / 2;
    ks_budget_day(t0, day0);
    ks_log_set_level("error");
    return redis_server_start(&srv, "budget") ? 0 : -1;
}

/* ---- fixtures and helpers ----------------------------------------------- */

int budget_setup(void **state)
{
    return redis_fixture_setup(&srv, PREFIX, state);
}

/* The key of a budget: kind/name on day, with suffix ("", ":res", ...). */
const char *bkey(const char *kind,
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

long long field(const char *kind, const char *name, const char *f)
{
    return redis_server_num(&srv, "HGET %s %s", bkey(kind, name, day0, ""), f);
}

enum ks_err reserve(void **state,
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

void assert_state(void **state,
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

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
