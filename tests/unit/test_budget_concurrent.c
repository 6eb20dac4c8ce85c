/*
 * test_budget_concurrent.c - many processes against one budget on a real
 * redis-server: forked workers reserving, settling and abandoning
 * reservations never push spent + reserved past the limit, and every
 * abandoned reservation ends charged at its worst case. The server, the
 * pinned time and the helpers are budget_fixture.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "base/util.h"
#include "budget_fixture.h"
#include "redis/budget.h"
#include "redis/store.h"

#include "base/banned.h"

/* ---- tests -------------------------------------------------------------- */

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
#define T(f)                                                                   \
    cmocka_unit_test_setup_teardown(f, budget_setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(budget_concurrent_reservations_never_exceed_the_limit),
    };
#undef T
    return cmocka_run_group_tests_name("budget_concurrent", tests,
                                       budget_group_setup,
                                       redis_server_group_teardown);
}
