/*
 * test_done.c - done records against a real redis-server: one record per
 * task under <prefix>done:<tenant>:<id>:<hop> (parts encoded, "-" for no
 * tenant), holding the task's digest; the same task reads its record
 * back, a different task under the same tenant and id is a conflict with
 * no value, another tenant's task with the same id finds nothing; the
 * pipelined get_many and put_many agree with the single calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, redis_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(done_record_is_keyed_by_tenant_and_id_encoded),
        T(done_same_task_reads_its_record_back),
        T(done_reused_id_is_a_conflict_and_another_tenant_finds_none),
        T(done_many_agree_with_single_calls),
    };
#undef T
    return cmocka_run_group_tests_name("done", tests, group_setup,
                                       redis_server_group_teardown);
}
