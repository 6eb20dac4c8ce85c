/*
 * budget_fixture.h - what the budget test programs (test_budget_reserve,
 * test_budget_sweep, test_budget_batch, test_budget_concurrent) share: the
 * real redis-server of the group, the pinned time, and helpers that read
 * budget keys and reserve through the fixture's store.
 *
 * budget_group_setup() starts `redis-server` (from PATH, by
 * redis_server.h) on a free port in a temporary directory and
 * redis_server_group_teardown() kills it and removes the directory, also
 * when tests fail; the server dies with the test process
 * (PR_SET_PDEATHSIG) if the binary crashes. Without redis-server the
 * group setup fails with a message: a missing server is not a pass. Every
 * test starts from FLUSHALL with its own store (prefix "kt:",
 * budget_setup()).
 *
 * Times are pinned to noon UTC of today (t0) so that a test running across
 * midnight does not see two budget days.
 *
 * Ownership: srv, t0 and day0 belong to this fixture and are set by the
 * group setup; bkey() returns one of four static buffers (valid for the
 * next three calls). Single-threaded: call from the test's main thread;
 * forked children may read srv, t0 and day0.
 */
#ifndef KASCADE_TESTS_BUDGET_FIXTURE_H
#define KASCADE_TESTS_BUDGET_FIXTURE_H

#include <stdint.h>

#include "base/err.h"
#include "redis/budget.h"
#include "redis_server.h"

#define DAY_MS      (86400 * (int64_t)1000)
#define LONG_TTL_MS (10 * 60 * 1000)
#define PREFIX      "kt:"

/* The redis-server of the group. */
extern struct redis_server srv;

extern int64_t t0; /* noon UTC today */
extern char day0[9];

/* A cmocka group setup: pins t0 and day0, quiets the log, starts srv and
 * puts it in *state for redis_server_group_teardown. Returns 0, or -1
 * when redis-server did not start. */
int budget_group_setup(void **state);

/* A cmocka per-test setup: FLUSHALL and a fresh store with PREFIX.
 * Returns 0, or -1 when Redis or the store failed. */
int budget_setup(void **state);

/* The key of a budget: kind/name on day, with suffix ("", ":res", ...). */
const char *bkey(const char *kind,
                 const char *name,
                 const char *day,
                 const char *suffix);

/* Field f of the budget hash of kind/name on day0 (0 when missing). */
long long field(const char *kind, const char *name, const char *f);

/* ks_budget_reserve() through the fixture's store, with no owner. */
enum ks_err reserve(void **state,
                    const char *tier,
                    int64_t tier_limit,
                    const char *tenant,
                    int64_t tenant_limit,
                    int64_t cost,
                    int64_t now,
                    int64_t ttl_ms,
                    struct ks_budget_reservation *res,
                    const char **refused_by);

/* Fails the test unless ks_budget_read() of kind/name on day at now
 * gives spent and reserved. */
void assert_state(void **state,
                  const char *kind,
                  const char *name,
                  const char *day,
                  int64_t now,
                  int64_t spent,
                  int64_t reserved);

/* Sleeps ms milliseconds, through EINTR. */
void sleep_ms(long ms);

#endif
