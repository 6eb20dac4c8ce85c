/*
 * test_ratelimit.c - fleet-wide rpm/tpm limits against a real
 * redis-server: a sliding one-minute window that admits up to rpm calls
 * and refuses the next with the exact wait, counts tokens against tpm,
 * lets calls in again as older ones leave the window, keeps tiers and
 * providers apart, expires its keys, holds under many processes at once,
 * and gives KS_ERR_RETRY when Redis is down.
 *
 * The server is the one of redis_server.h (shared with test_budget.c):
 * `redis-server` from PATH on a free port in a temporary directory, killed
 * by the group teardown (and with this process, PR_SET_PDEATHSIG). Without
 * redis-server the group
 * setup fails with a message: a missing server is not a pass. Every test
 * starts from FLUSHALL with its own store (prefix "kt:"). Times are made
 * up (t0 plus offsets), except in the test of the server's clock.
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
#include "redis/ratelimit.h"
#include "redis/store.h"
#include "redis_server.h"

#include "base/banned.h"

#define PREFIX "kt:"
#define WIN    KS_RATELIMIT_WINDOW_MS

/* The redis-server of the group. */
static struct redis_server srv = {.pid = -1};

static int64_t t0; /* made-up times start here */

/* ---- the server --------------------------------------------------------- */

/* The group state is the server, for redis_server_group_teardown. */
static int group_setup(void **state)
{
    *state = &srv;
    t0 = ks_wall_ms();
    ks_log_set_level("error");
    return redis_server_start(&srv, "ratelimit") ? 0 : -1;
}

/* ---- fixtures and helpers ----------------------------------------------- */

static int setup(void **state)
{
    return redis_fixture_setup(&srv, PREFIX, state);
}

/* One admission; fails the test on a Redis error. Returns admitted. */
static bool admit(void **state,
                  const char *tier,
                  int prov,
                  int64_t rpm,
                  int64_t tpm,
                  int64_t tokens,
                  int64_t now,
                  int64_t *wait)
{
    bool ok = false;
    int64_t w = -1;

    assert_int_equal(ks_ratelimit_admit(redis_fixture_store(state), tier, prov,
                                        rpm, tpm, tokens, now, &ok, &w, NULL),
                     KS_OK);
    if (wait) {
        *wait = w;
    }
    if (ok) {
        assert_int_equal(w, 0);
    } else {
        assert_true(w > 0);
    }
    return ok;
}

static void ratelimit_admits_up_to_rpm_then_refuses_with_the_wait(void **state)
{
    int64_t wait;

    for (int i = 0; i < 5; i++) {
        assert_true(admit(state, "mid", 0, 5, 0, 10, t0 + i * 100, NULL));
    }
    assert_false(admit(state, "mid", 0, 5, 0, 10, t0 + 1000, &wait));
    /* The oldest call (t0) leaves the window at t0 + 60 s. */
    assert_int_equal(wait, t0 + WIN - (t0 + 1000));
    assert_false(admit(state, "mid", 0, 5, 0, 10, t0 + WIN - 1, &wait));
    assert_int_equal(wait, 1);
    /* A refusal records nothing: still 5 calls in the window. */
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 5);
}

static void ratelimit_window_slides_as_old_calls_leave(void **state)
{
    int64_t wait;

    for (int i = 0; i < 3; i++) {
        assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + i * 1000, NULL));
    }
    assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + WIN, NULL));
    assert_false(admit(state, "mid", 0, 3, 0, 1, t0 + WIN, &wait));
    assert_int_equal(wait, 1000); /* the second call leaves next */
    assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + WIN + 1000, NULL));
    assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + WIN + 2000, NULL));
    /* No 60 s interval ever held more than rpm calls. */
    assert_false(admit(state, "mid", 0, 3, 0, 1, t0 + WIN + 2001, &wait));
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 3);
}

static void ratelimit_counts_tokens_against_tpm(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 0, 1000, 400, t0, NULL));
    assert_true(admit(state, "mid", 0, 0, 1000, 400, t0 + 10, NULL));
    assert_false(admit(state, "mid", 0, 0, 1000, 300, t0 + 20, &wait));
    /* 100 tokens too many: the first call's 400 must leave first. */
    assert_int_equal(wait, t0 + WIN - (t0 + 20));
    assert_true(admit(state, "mid", 0, 0, 1000, 200, t0 + 30, NULL));
    assert_int_equal(redis_server_num(&srv, "GET " PREFIX "rate:{mid:0}:sum"),
                     1000);
    assert_false(admit(state, "mid", 0, 0, 1000, 1, t0 + 40, &wait));
    assert_true(admit(state, "mid", 0, 0, 1000, 300, t0 + WIN, NULL));
    assert_int_equal(redis_server_num(&srv, "GET " PREFIX "rate:{mid:0}:sum"),
                     900);
}

static void ratelimit_call_over_tpm_waits_for_an_empty_window(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 0, 100, 10, t0, NULL));
    assert_false(admit(state, "mid", 0, 0, 100, 500, t0 + 1, &wait));
    assert_int_equal(wait, WIN - 1);
    assert_true(admit(state, "mid", 0, 0, 100, 500, t0 + WIN, NULL));
    assert_false(admit(state, "mid", 0, 0, 100, 1, t0 + WIN + 1, &wait));
}

static void ratelimit_rpm_and_tpm_both_apply(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 2, 100, 90, t0, NULL));
    /* rpm has room, tpm does not. */
    assert_false(admit(state, "mid", 0, 2, 100, 20, t0 + 5, &wait));
    assert_int_equal(wait, WIN - 5);
    assert_true(admit(state, "mid", 0, 2, 100, 10, t0 + 6, NULL));
    /* tpm is full and so is rpm. */
    assert_false(admit(state, "mid", 0, 2, 100, 0, t0 + 7, &wait));
    assert_int_equal(wait, WIN - 7);
}

static void ratelimit_keeps_tiers_and_providers_apart(void **state)
{
    assert_true(admit(state, "mid", 0, 1, 0, 1, t0, NULL));
    assert_true(admit(state, "mid", 1, 1, 0, 1, t0, NULL));
    assert_true(admit(state, "frontier", 0, 1, 0, 1, t0, NULL));
    assert_false(admit(state, "mid", 0, 1, 0, 1, t0 + 1, NULL));
    assert_false(admit(state, "mid", 1, 1, 0, 1, t0 + 1, NULL));
}

/* The tier name goes into the key encoded: "a:b" is "a%3Ab". */
static void ratelimit_tier_name_is_encoded_in_the_key(void **state)
{
    assert_true(admit(state, "a:b", 0, 1, 0, 1, t0, NULL));
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{a%%3Ab:0}"),
                     1);
    assert_int_equal(redis_server_num(&srv, "EXISTS " PREFIX "rate:{a:b:0}"),
                     0);
}

/* An error reply is not "Redis down" (KS_ERR_RETRY): KS_ERR_UPSTREAM. */
static void ratelimit_error_reply_is_not_redis_down(void **state)
{
    bool ok = true;
    int64_t wait = 0;

    assert_int_equal(redis_server_num(&srv, "SET " PREFIX "rate:{mid:0} x"), 0);
    assert_int_equal(ks_ratelimit_admit(redis_fixture_store(state), "mid", 0,
                                        10, 0, 1, t0, &ok, &wait, NULL),
                     KS_ERR_UPSTREAM);
    assert_false(ok);
}

static void ratelimit_keys_expire_after_two_windows(void **state)
{
    long long ttl;

    assert_true(admit(state, "mid", 0, 10, 100, 1, t0, NULL));
    ttl = redis_server_num(&srv, "PTTL " PREFIX "rate:{mid:0}");
    assert_true(ttl > 0 && ttl <= 2 * WIN);
    ttl = redis_server_num(&srv, "PTTL " PREFIX "rate:{mid:0}:tok");
    assert_true(ttl > 0 && ttl <= 2 * WIN);
    ttl = redis_server_num(&srv, "PTTL " PREFIX "rate:{mid:0}:sum");
    assert_true(ttl > 0 && ttl <= 2 * WIN);
    /* Calls that left the window are swept from the set and the hash. */
    assert_true(admit(state, "mid", 0, 10, 100, 1, t0 + WIN, NULL));
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 1);
    assert_int_equal(redis_server_num(&srv, "HLEN " PREFIX "rate:{mid:0}:tok"),
                     1);
}

static void ratelimit_zero_now_uses_the_server_clock(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 2, 0, 1, 0, NULL));
    assert_true(admit(state, "mid", 0, 2, 0, 1, 0, NULL));
    assert_false(admit(state, "mid", 0, 2, 0, 1, 0, &wait));
    assert_true(wait > WIN - 5000 && wait <= WIN);
}

static void ratelimit_script_flush_falls_back_to_eval(void **state)
{
    redisReply *r;

    assert_true(admit(state, "mid", 0, 2, 0, 1, t0, NULL));
    r = redisCommand(srv.c, "SCRIPT FLUSH");
    assert_non_null(r);
    freeReplyObject(r);
    assert_true(admit(state, "mid", 0, 2, 0, 1, t0 + 1, NULL));
    assert_false(admit(state, "mid", 0, 2, 0, 1, t0 + 2, NULL));
}

static void ratelimit_rejects_bad_arguments(void **state)
{
    bool ok = true;
    int64_t wait = 5;

    assert_int_equal(ks_ratelimit_admit(redis_fixture_store(state), "", 0, 1, 0,
                                        1, t0, &ok, &wait, NULL),
                     KS_ERR_INVALID);
    assert_false(ok);
    assert_int_equal(ks_ratelimit_admit(redis_fixture_store(state), "mid", -1,
                                        1, 0, 1, t0, &ok, &wait, NULL),
                     KS_ERR_INVALID);
    assert_int_equal(ks_ratelimit_admit(redis_fixture_store(state), "mid", 0,
                                        -1, 0, 1, t0, &ok, &wait, NULL),
                     KS_ERR_INVALID);
}

static void ratelimit_redis_down_gives_retry(void **state)
{
    struct redis_fixture *fx =
        redis_fixture_new(&srv, redis_server_free_port(), PREFIX);
    bool ok = true;
    int64_t wait = 0;

    (void)state;
    assert_non_null(fx->rs);
    assert_int_equal(
        ks_ratelimit_admit(fx->rs, "mid", 0, 10, 0, 1, t0, &ok, &wait, NULL),
        KS_ERR_RETRY);
    assert_false(ok);
    redis_fixture_destroy(fx);
}

#define PROCS      4
#define TRIES      40
#define SHARED_RPM 50

/* An admitted call that does not start gives its slot back: the request
 * and its tokens no longer count, and giving it back twice is harmless. */
static void ratelimit_release_gives_the_slot_back(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    char member[KS_RATELIMIT_MEMBER_MAX];
    bool ok = false;
    int64_t wait = 0;

    assert_int_equal(
        ks_ratelimit_admit(rs, "mid", 0, 1, 100, 40, 0, &ok, &wait, member),
        KS_OK);
    assert_true(ok);
    assert_true(member[0] != '\0');
    assert_false(admit(state, "mid", 0, 1, 100, 40, 0, NULL));
    assert_int_equal(ks_ratelimit_release(rs, "mid", 0, member), KS_OK);
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 0);
    assert_int_equal(redis_server_num(&srv, "GET " PREFIX "rate:{mid:0}:sum"),
                     0);
    assert_int_equal(ks_ratelimit_release(rs, "mid", 0, member), KS_OK);
    assert_true(admit(state, "mid", 0, 1, 100, 40, 0, NULL));
    assert_int_equal(ks_ratelimit_release(rs, "mid", 0, ""), KS_ERR_INVALID);
}

/* Many admissions in one round trip: each decided as a single one, in
 * order, against one window. */
static void ratelimit_admit_many_decides_each_in_order(void **state)
{
    struct ks_ratelimit_request q[4] = {{"mid", 0, 2, 0, 1},
                                        {"mid", 0, 2, 0, 1},
                                        {"mid", 0, 2, 0, 1},
                                        {"", 0, 2, 0, 1}};
    struct ks_ratelimit_answer a[4];
    redisReply *r;

    r = redisCommand(srv.c, "CONFIG RESETSTAT");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(
        ks_ratelimit_admit_many(redis_fixture_store(state), 4, q, a),
        KS_ERR_INVALID);
    assert_int_equal(a[0].err, KS_OK);
    assert_true(a[0].admitted && a[1].admitted);
    assert_string_not_equal(a[0].member, a[1].member);
    assert_int_equal(a[2].err, KS_OK);
    assert_false(a[2].admitted);
    assert_true(a[2].wait_ms > 0);
    assert_int_equal(a[3].err, KS_ERR_INVALID);
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 2);
    /* answered by the pipeline itself, not by single calls after errors */
    r = redisCommand(srv.c, "INFO stats");
    assert_non_null(r);
    assert_non_null(strstr(r->str, "total_error_replies:0\r\n"));
    freeReplyObject(r);
}

/* Agreement's k calls in flight together are admitted at once and each
 * counts against rpm (the tokens once); released together; more calls
 * than rpm only into an empty window. */
static void ratelimit_calls_together_each_count(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_ratelimit_request three = {"mid", 0, 5, 0, 30, 3};
    struct ks_ratelimit_request six = {"mid", 0, 5, 0, 60, 6};
    struct ks_ratelimit_answer a;

    assert_int_equal(ks_ratelimit_admit_many(rs, 1, &three, &a), KS_OK);
    assert_true(a.admitted);
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 3);
    assert_int_equal(redis_server_num(&srv, "GET " PREFIX "rate:{mid:0}:sum"),
                     30);
    /* 3 + 3 > 5: refused, with the wait of the oldest call */
    assert_int_equal(ks_ratelimit_admit_many(rs, 1, &three, &a), KS_OK);
    assert_false(a.admitted);
    assert_true(a.wait_ms > 0);
    /* 3 + 2 fit */
    assert_true(admit(state, "mid", 0, 5, 0, 1, 0, NULL));
    assert_true(admit(state, "mid", 0, 5, 0, 1, 0, NULL));
    assert_false(admit(state, "mid", 0, 5, 0, 1, 0, NULL));
    assert_int_equal(redis_server_num(&srv, "DEL " PREFIX "rate:{mid:0} " PREFIX
                                            "rate:{mid:0}:tok " PREFIX
                                            "rate:{mid:0}:sum"),
                     3);
    assert_int_equal(ks_ratelimit_admit_many(rs, 1, &three, &a), KS_OK);
    assert_true(a.admitted);
    assert_int_equal(ks_ratelimit_release(rs, "mid", 0, a.member), KS_OK);
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 0);
    assert_int_equal(redis_server_num(&srv, "HLEN " PREFIX "rate:{mid:0}:tok"),
                     0);
    /* 6 calls against rpm 5: an empty window takes them, then nothing */
    assert_int_equal(ks_ratelimit_admit_many(rs, 1, &six, &a), KS_OK);
    assert_true(a.admitted);
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"), 6);
    assert_false(admit(state, "mid", 0, 5, 0, 1, 0, NULL));
    six.calls = KS_RATELIMIT_CALLS_MAX + 1;
    assert_int_equal(ks_ratelimit_admit_many(rs, 1, &six, &a), KS_ERR_INVALID);
}

/* Many processes at once never get more than rpm calls admitted. */
static void ratelimit_concurrent_processes_never_exceed_rpm(void **state)
{
    pid_t pids[PROCS];
    int total = 0;

    (void)state;
    fflush(NULL);
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct redis_fixture *fx =
                redis_fixture_new(&srv, srv.port, PREFIX);
            int n = 0;

            for (int i = 0; i < TRIES && fx->rs; i++) {
                bool ok = false;
                int64_t wait;

                if (ks_ratelimit_admit(fx->rs, "mid", 0, SHARED_RPM, 0, 1,
                                       t0 + i, &ok, &wait, NULL) != KS_OK) {
                    _exit(255);
                }
                n += ok;
            }
            _exit(fx->rs ? n : 255);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;

        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_true(WEXITSTATUS(status) != 255);
        total += WEXITSTATUS(status);
    }
    assert_int_equal(total, SHARED_RPM);
    assert_int_equal(redis_server_num(&srv, "ZCARD " PREFIX "rate:{mid:0}"),
                     SHARED_RPM);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(ratelimit_admits_up_to_rpm_then_refuses_with_the_wait),
        T(ratelimit_window_slides_as_old_calls_leave),
        T(ratelimit_counts_tokens_against_tpm),
        T(ratelimit_call_over_tpm_waits_for_an_empty_window),
        T(ratelimit_rpm_and_tpm_both_apply),
        T(ratelimit_keeps_tiers_and_providers_apart),
        T(ratelimit_tier_name_is_encoded_in_the_key),
        T(ratelimit_error_reply_is_not_redis_down),
        T(ratelimit_keys_expire_after_two_windows),
        T(ratelimit_zero_now_uses_the_server_clock),
        T(ratelimit_script_flush_falls_back_to_eval),
        T(ratelimit_rejects_bad_arguments),
        T(ratelimit_release_gives_the_slot_back),
        T(ratelimit_admit_many_decides_each_in_order),
        T(ratelimit_calls_together_each_count),
        T(ratelimit_redis_down_gives_retry),
        T(ratelimit_concurrent_processes_never_exceed_rpm),
    };
#undef T
    return cmocka_run_group_tests_name("ratelimit", tests, group_setup,
                                       redis_server_group_teardown);
}
