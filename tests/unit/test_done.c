/*
 * test_done.c - done records against a real redis-server: one record per
 * task under <prefix>done:<tenant>:<id>:<hop> (parts encoded, "-" for no
 * tenant), holding the task's digest; the same task reads its record
 * back, a different task under the same tenant and id is a conflict with
 * no value, another tenant's task with the same id finds nothing; the
 * pipelined get_many and put_many, and the batch form (add, then reply)
 * agree with the single calls. A Redis that answers BUSY (a slow script
 * running; LOADING after a restart is the same kind) is Redis down for
 * the moment, KS_ERR_RETRY, never a permanent error reply that would
 * dead-letter the task.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/log.h"
#include "base/util.h"
#include "redis/done.h"
#include "redis/store.h"
#include "redis_server.h"
#include "wire/codec.h"

#include "base/banned.h"

#define PREFIX "kt:"

static struct redis_server srv = {.pid = -1};

static int group_setup(void **state)
{
    *state = &srv;
    ks_log_set_level("error");
    return redis_server_start(&srv, "done") ? 0 : -1;
}

static int setup(void **state)
{
    return redis_fixture_setup(&srv, PREFIX, state);
}

static struct ks_task *task_new(const char *json)
{
    struct ks_codec_limits lim;
    struct ks_codec_error cerr = {0};
    struct ks_task *task = NULL;

    ks_codec_limits_default(&lim);
    if (ks_task_decode(KS_FORMAT_JSON, json, strlen(json), &lim, &task,
                       &cerr) != KS_OK) {
        fail_msg("decode: %s", cerr.detail);
    }
    return task;
}

/* Looks task up; returns the value (caller frees) and sets *conflict. */
static char *get(void **state, const struct ks_task *task, bool *conflict)
{
    char *value = NULL;
    size_t len = 0;

    assert_int_equal(ks_store_done_get(redis_fixture_store(state), task, 0,
                                       &value, &len, conflict),
                     KS_OK);
    return value;
}

static void done_record_is_keyed_by_tenant_and_id_encoded(void **state)
{
    struct ks_task *a = task_new(
        "{\"id\":\"x:1\",\"type\":\"t\",\"tenant\":\"acme\",\"input\":\"q\"}");
    struct ks_task *b =
        task_new("{\"id\":\"x:1\",\"type\":\"t\",\"input\":\"q\"}");

    /* The codec refuses such a tenant; the key is encoded all the same. */
    free(a->tenant);
    a->tenant = ks_xstrdup("ac:me");

    assert_int_equal(
        ks_store_done_put(redis_fixture_store(state), a, 0, "Rone", 4), KS_OK);
    assert_int_equal(
        ks_store_done_put(redis_fixture_store(state), b, 2, "Rtwo", 4), KS_OK);
    assert_int_equal(
        redis_server_num(&srv, "EXISTS " PREFIX "done:ac%%3Ame:x%%3A1:0"), 1);
    assert_int_equal(redis_server_num(&srv, "EXISTS " PREFIX "done:-:x%%3A1:2"),
                     1);
    ks_task_destroy(b);
    ks_task_destroy(a);
}

static void done_same_task_reads_its_record_back(void **state)
{
    struct ks_task *a = task_new(
        "{\"id\":\"t1\",\"type\":\"t\",\"tenant\":\"acme\",\"input\":\"q\"}");
    struct ks_task *again = task_new(
        "{\"id\":\"t1\",\"type\":\"t\",\"tenant\":\"acme\",\"input\":\"q\","
        "\"metadata\":{\"try\":\"2\"}}");
    bool conflict = true;
    char *v;

    assert_int_equal(
        ks_store_done_put(redis_fixture_store(state), a, 0, "Rans", 4), KS_OK);
    v = get(state, again, &conflict);
    assert_false(conflict);
    assert_non_null(v);
    assert_string_equal(v, "Rans");
    free(v);
    ks_task_destroy(again);
    ks_task_destroy(a);
}

static void done_reused_id_is_a_conflict_and_another_tenant_finds_none(
    void **state)
{
    struct ks_task *a = task_new(
        "{\"id\":\"t1\",\"type\":\"t\",\"tenant\":\"acme\",\"input\":\"q\"}");
    struct ks_task *other = task_new(
        "{\"id\":\"t1\",\"type\":\"t\",\"tenant\":\"acme\",\"input\":\"q2\"}");
    struct ks_task *globex = task_new(
        "{\"id\":\"t1\",\"type\":\"t\",\"tenant\":\"globex\",\"input\":\"q\"}");
    bool conflict = false;
    char *v;

    assert_int_equal(
        ks_store_done_put(redis_fixture_store(state), a, 0, "Rans", 4), KS_OK);
    v = get(state, other, &conflict);
    assert_null(v);
    assert_true(conflict);
    v = get(state, globex, &conflict);
    assert_null(v);
    assert_false(conflict);
    ks_task_destroy(globex);
    ks_task_destroy(other);
    ks_task_destroy(a);
}

static void done_many_agree_with_single_calls(void **state)
{
    struct ks_task *t[3] = {
        task_new("{\"id\":\"m1\",\"type\":\"t\",\"input\":\"a\"}"),
        task_new(
            "{\"id\":\"m2\",\"type\":\"t\",\"tenant\":\"b\",\"input\":\"b\"}"),
        task_new("{\"id\":\"m1\",\"type\":\"t\",\"input\":\"other\"}"),
    };
    const struct ks_task *tasks[3] = {t[0], t[1], t[2]};
    const char *values[2] = {"Ra", "Rb"};
    size_t lens[3] = {2, 2, 0};
    uint32_t hops[3] = {0, 0, 0};
    enum ks_err errs[2];
    char *got[3];
    bool conflicts[3];

    assert_int_equal(ks_store_done_put_many(redis_fixture_store(state), 2,
                                            tasks, hops, values, lens, errs),
                     KS_OK);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[1], KS_OK);
    assert_int_equal(ks_store_done_get_many(redis_fixture_store(state), 3,
                                            tasks, hops, got, lens, conflicts),
                     KS_OK);
    assert_string_equal(got[0], "Ra");
    assert_string_equal(got[1], "Rb");
    assert_null(got[2]);
    assert_false(conflicts[0]);
    assert_true(conflicts[2]);
    free(got[0]);
    free(got[1]);
    for (size_t i = 0; i < 3; i++) {
        ks_task_destroy(t[i]);
    }
}

/* The batch form: look-ups of several tasks appended to one batch with
 * a command of another module, one round trip, the same answers as the
 * single calls; a batch that never ran answers KS_ERR_RETRY. */
static void done_batch_add_and_reply_agree_with_single_calls(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_task *a =
        task_new("{\"id\":\"b1\",\"type\":\"t\",\"input\":\"a\"}");
    struct ks_task *b =
        task_new("{\"id\":\"b2\",\"type\":\"t\",\"input\":\"b\"}");
    struct ks_task *a2 =
        task_new("{\"id\":\"b1\",\"type\":\"t\",\"input\":\"other\"}");
    struct ks_store_batch *bt = ks_store_batch_new();
    const char *ping[] = {"PING"};
    size_t ping_len[] = {4}, ia, ib, ia2, ip;
    char *value = NULL;
    size_t len = 0;
    bool conflict = true;

    assert_int_equal(ks_store_done_put(rs, a, 1, "Rone", 4), KS_OK);
    assert_int_equal(ks_store_done_get_add(rs, bt, a, 1, &ia), KS_OK);
    ip = ks_store_batch_add(bt, 1, ping, ping_len);
    assert_int_equal(ks_store_done_get_add(rs, bt, b, 1, &ib), KS_OK);
    assert_int_equal(ks_store_done_get_add(rs, bt, a2, 1, &ia2), KS_OK);
    assert_int_equal(ks_store_batch_len(bt), 4);
    /* not run yet: every answer is "Redis unreachable" */
    assert_int_equal(
        ks_store_done_get_reply(rs, bt, ia, a, &value, &len, &conflict),
        KS_ERR_RETRY);
    assert_null(value);
    assert_int_equal(ks_store_batch_run(rs, bt), KS_OK);
    assert_non_null(ks_store_batch_reply(bt, ip));
    assert_int_equal(
        ks_store_done_get_reply(rs, bt, ia, a, &value, &len, &conflict), KS_OK);
    assert_string_equal(value, "Rone");
    assert_int_equal(len, 4);
    assert_false(conflict);
    free(value);
    assert_int_equal(
        ks_store_done_get_reply(rs, bt, ib, b, &value, &len, &conflict), KS_OK);
    assert_null(value);
    assert_false(conflict);
    assert_int_equal(
        ks_store_done_get_reply(rs, bt, ia2, a2, &value, &len, &conflict),
        KS_OK);
    assert_null(value);
    assert_true(conflict);
    ks_store_batch_destroy(bt);
    ks_task_destroy(a);
    ks_task_destroy(b);
    ks_task_destroy(a2);
}

/* An error reply (WRONGTYPE) answers that one look-up KS_ERR_UPSTREAM, the
 * others of the same batch are unaffected. */
static void done_batch_error_reply_is_upstream_for_that_task_alone(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_task *a =
        task_new("{\"id\":\"w1\",\"type\":\"t\",\"input\":\"a\"}");
    struct ks_task *b =
        task_new("{\"id\":\"w2\",\"type\":\"t\",\"input\":\"b\"}");
    struct ks_store_batch *bt = ks_store_batch_new();
    size_t ia, ib;
    char *value = NULL;
    size_t len = 0;
    bool conflict = false;

    assert_int_equal(redis_server_num(&srv, "RPUSH %s x", PREFIX "done:-:w1:0"),
                     1);
    assert_int_equal(ks_store_done_get_add(rs, bt, a, 0, &ia), KS_OK);
    assert_int_equal(ks_store_done_get_add(rs, bt, b, 0, &ib), KS_OK);
    assert_int_equal(ks_store_batch_run(rs, bt), KS_OK);
    assert_int_equal(
        ks_store_done_get_reply(rs, bt, ia, a, &value, &len, &conflict),
        KS_ERR_UPSTREAM);
    assert_null(value);
    assert_int_equal(
        ks_store_done_get_reply(rs, bt, ib, b, &value, &len, &conflict), KS_OK);
    assert_null(value);
    ks_store_batch_destroy(bt);
    ks_task_destroy(a);
    ks_task_destroy(b);
}

/* A child runs a script that keeps Redis busy for about a second; past
 * busy-reply-threshold every other client gets "BUSY ...". */
static pid_t busy_redis(int port)
{
    static const char script[] =
        "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] "
        "while true do t = redis.call('TIME') "
        "if t[1] * 1e6 + t[2] - s > 1000000 then break end end return 1";
    pid_t pid = fork();

    if (pid == 0) {
        redisContext *c = redisConnect("127.0.0.1", port);
        redisReply *r =
            c && !c->err ? redisCommand(c, "EVAL %s 0", script) : NULL;

        _exit(r && r->type == REDIS_REPLY_INTEGER ? 0 : 1);
    }
    return pid;
}

static void done_busy_redis_is_retry_not_an_error(void **state)
{
    struct redis_fixture *fx = *state;
    redisReply *r = redisCommand(srv.c, "CONFIG SET lua-time-limit 50");
    char *value = NULL;
    size_t len = 0;
    enum ks_err err = KS_OK;
    int status = -1;
    pid_t pid;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    pid = busy_redis(srv.port);
    assert_true(pid > 0);
    /* Well past the threshold, well before the script ends. */
    for (int i = 0; i < 40 && err != KS_ERR_RETRY; i++) {
        usleep(20000);
        err = ks_store_get(fx->rs, PREFIX "busy", &value, &len);
    }
    assert_int_equal(err, KS_ERR_RETRY);
    assert_null(value);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* And Redis serves again through the same store. */
    assert_int_equal(ks_store_get(fx->rs, PREFIX "busy", &value, &len), KS_OK);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(done_record_is_keyed_by_tenant_and_id_encoded),
        T(done_same_task_reads_its_record_back),
        T(done_reused_id_is_a_conflict_and_another_tenant_finds_none),
        T(done_many_agree_with_single_calls),
        T(done_batch_add_and_reply_agree_with_single_calls),
        T(done_batch_error_reply_is_upstream_for_that_task_alone),
        T(done_busy_redis_is_retry_not_an_error),
    };
#undef T
    return cmocka_run_group_tests_name("done", tests, group_setup,
                                       redis_server_group_teardown);
}
