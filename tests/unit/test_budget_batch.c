/*
 * test_budget_batch.c - budgets against a real redis-server, many at a
 * time: ks_budget_reserve_many deciding each request as a single reserve
 * would, in order and across tenants; ks_budget_settle_many settling each
 * once, also after a sweep, a SCRIPT FLUSH or a broken connection, and
 * split into send and recv; what a batch costs Redis in commands. The
 * server, the pinned time and the helpers are budget_fixture.h's.
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

int main(void)
{
#define T(f)                                                                   \
    cmocka_unit_test_setup_teardown(f, budget_setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(budget_reserve_many_decides_each),
        T(budget_many_costs_redis_few_commands_per_call),
        T(budget_reserve_many_sweeps_a_budget_named_later),
        T(budget_reserve_many_grants_what_fits_in_order),
        T(budget_reserve_many_mixes_tenants),
        T(budget_settle_many_replaces_a_swept_charge_once),
        T(budget_many_after_script_flush),
        T(budget_settle_many_settles_each_once_in_one_batch),
        T(budget_settle_many_send_recv_with_commands_between),
        T(budget_settle_many_recv_after_a_broken_connection),
        T(budget_reserve_many_garbage_limit_fails_only_its_requests),
    };
#undef T
    return cmocka_run_group_tests_name(
        "budget_batch", tests, budget_group_setup, redis_server_group_teardown);
}
