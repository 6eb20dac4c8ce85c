/*
 * test_ctx.c - the escalation context: a document round trip keeps the
 * task and every attempt; an attempt of the same hop replaces the earlier
 * one (a redone call is not counted twice); the best attempt is the most
 * confident one with an output; a Result from the context carries the
 * whole path and the total cost; corrupt documents are refused by name.
 * Against a real redis-server: the key is derived from the task's tenant
 * and id with each part encoded, and a load refuses a missing key and a
 * context that holds another task or another tenant's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "base/log.h"
#include "redis/ctx.h"
#include "redis_server.h"

#include "base/banned.h"

#define PREFIX "kt:"

/* The redis-server of the "store" group. */
static struct redis_server srv = {.pid = -1};

static struct ks_task *task_of(const char *json)
{
    struct ks_codec_limits lim;
    struct ks_codec_error cerr;
    struct ks_task *task = NULL;

    ks_codec_limits_default(&lim);
    assert_int_equal(
        ks_task_decode(KS_FORMAT_JSON, json, strlen(json), &lim, &task, &cerr),
        KS_OK);
    return task;
}

static struct ks_ctx *ctx_two_attempts(void)
{
    struct ks_codec_limits lim;
    struct ks_task *task =
        task_of("{\"id\":\"t-1\",\"type\":\"answer\",\"tenant\":\"acme\","
                "\"input\":\"what is 2+2\",\"metadata\":{\"k\":\"v\"}}");
    struct ks_ctx *ctx;
    struct ks_ctx_attempt a0 = {.tier = "local",
                                .model = "small",
                                .hop = 0,
                                .output = "5",
                                .confidence = 0.3,
                                .confidence_source = "logprob",
                                .decision = "escalate",
                                .reason = "low_confidence",
                                .cost_micro = 12,
                                .latency_ms = 100,
                                .input_tokens = 10,
                                .output_tokens = 1};
    struct ks_ctx_attempt a1 = {.tier = "mid",
                                .model = "medium",
                                .hop = 1,
                                .output = NULL,
                                .confidence = -1,
                                .decision = "escalate",
                                .reason = "provider_failure",
                                .cost_micro = 0,
                                .latency_ms = 50};

    ks_codec_limits_default(&lim);
    ctx = ks_ctx_new(task, KS_FORMAT_PROTOBUF, &lim);
    ks_task_destroy(task);
    assert_non_null(ctx);
    ks_ctx_add(ctx, &a0);
    ks_ctx_add(ctx, &a1);
    return ctx;
}

static void ctx_round_trip_keeps_task_and_attempts(void **state)
{
    struct ks_codec_limits lim;
    struct ks_ctx *ctx = ctx_two_attempts(), *back = NULL;
    char *buf = NULL, err[256];
    size_t len = 0;

    (void)state;
    ks_codec_limits_default(&lim);
    assert_int_equal(ks_ctx_encode(ctx, &buf, &len), KS_OK);
    assert_int_equal(ks_ctx_decode(buf, len, &lim, &back, err, sizeof(err)),
                     KS_OK);
    assert_string_equal(back->task->id, "t-1");
    assert_string_equal(back->task->input, "what is 2+2");
    assert_int_equal(back->fmt, KS_FORMAT_PROTOBUF);
    assert_int_equal(back->n_attempts, 2);
    assert_string_equal(back->attempts[0].output, "5");
    assert_true(back->attempts[0].confidence > 0.29 &&
                back->attempts[0].confidence < 0.31);
    assert_null(back->attempts[1].output);
    assert_true(back->attempts[1].confidence < 0);
    assert_int_equal(back->attempts[1].hop, 1);
    assert_int_equal(back->cost_micro, 12);
    free(buf);
    ks_ctx_destroy(back);
    ks_ctx_destroy(ctx);
}

static void ctx_same_hop_replaces_and_is_not_counted_twice(void **state)
{
    struct ks_ctx *ctx = ctx_two_attempts();
    struct ks_ctx_attempt again = {.tier = "local",
                                   .hop = 0,
                                   .output = "4",
                                   .confidence = 0.4,
                                   .cost_micro = 20};

    (void)state;
    ks_ctx_add(ctx, &again);
    assert_int_equal(ctx->n_attempts, 2);
    assert_int_equal(ctx->cost_micro, 20);
    assert_string_equal(ctx->attempts[0].output, "4");
    ks_ctx_destroy(ctx);
}

static void ctx_best_is_most_confident_with_an_output(void **state)
{
    struct ks_ctx *ctx = ctx_two_attempts();
    struct ks_ctx_attempt a2 = {.tier = "frontier",
                                .hop = 2,
                                .output = "4",
                                .confidence = 0.2,
                                .cost_micro = 100};

    (void)state;
    assert_int_equal(ks_ctx_best(ctx), 0);
    ks_ctx_add(ctx, &a2);
    assert_int_equal(ks_ctx_best(ctx), 0);
    ctx->attempts[2].confidence = 0.3;
    assert_int_equal(ks_ctx_best(ctx), 2); /* a later hop wins a tie */
    ks_ctx_destroy(ctx);
}

static void ctx_result_has_path_total_cost_and_metadata(void **state)
{
    struct ks_ctx *ctx = ctx_two_attempts();
    struct ks_result *res =
        ks_ctx_result(ctx, 0, KS_STATUS_LOW_CONFIDENCE, NULL);

    (void)state;
    assert_string_equal(res->id, "t-1");
    assert_string_equal(res->tenant, "acme");
    assert_string_equal(res->output, "5");
    assert_string_equal(res->tier, "local");
    assert_int_equal(res->status, KS_STATUS_LOW_CONFIDENCE);
    assert_int_equal(res->n_path, 2);
    assert_string_equal(res->path[1].reason, "provider_failure");
    assert_int_equal(res->cost_micro, 12);
    assert_int_equal(res->latency_ms, 150);
    assert_int_equal(res->n_metadata, 1);
    assert_string_equal(res->metadata[0].value, "v");
    ks_result_destroy(res);
    ks_ctx_destroy(ctx);
}

static void ctx_decode_refuses_corrupt_documents_by_name(void **state)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"not json", "not a JSON object"},
        {"{\"attempts\":[]}", "'task' missing"},
        {"{\"task\":{\"id\":\"x\",\"type\":\"t\"},\"attempts\":[]}", "task:"},
        {"{\"task\":{\"id\":\"x\",\"type\":\"t\",\"input\":\"i\"}}",
         "'attempts'"},
        {"{\"task\":{\"id\":\"x\",\"type\":\"t\",\"input\":\"i\"},"
         "\"attempts\":[{\"tier\":\"a\",\"confidence\":3}]}",
         "'confidence'"},
        {"{\"task\":{\"id\":\"x\",\"type\":\"t\",\"input\":\"i\"},"
         "\"attempts\":[{\"model\":\"m\"}]}",
         "no 'tier'"},
    };
    struct ks_codec_limits lim;

    (void)state;
    ks_codec_limits_default(&lim);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ks_ctx *ctx = NULL;
        char err[256] = "";

        assert_int_equal(ks_ctx_decode(cases[i].doc, strlen(cases[i].doc), &lim,
                                       &ctx, err, sizeof(err)),
                         KS_ERR_INVALID);
        assert_null(ctx);
        assert_non_null(strstr(err, cases[i].want));
    }
}

/* ---- keys and Redis ------------------------------------------------------ */

static int group_setup(void **state)
{
    *state = &srv;
    ks_log_set_level("error");
    return redis_server_start(&srv, "ctx") ? 0 : -1;
}

static int setup(void **state)
{
    return redis_fixture_setup(&srv, PREFIX, state);
}

static void assert_key(void **state,
                       const char *tenant,
                       const char *id,
                       const char *want)
{
    char *key = ks_ctx_key(redis_fixture_store(state), tenant, id);

    assert_string_equal(key, want);
    free(key);
}

static void ctx_key_is_derived_from_tenant_and_id_encoded(void **state)
{
    assert_key(state, "acme", "t-1", PREFIX "ctx:acme:t-1");
    assert_key(state, NULL, "t-1", PREFIX "ctx:-:t-1");
    assert_key(state, "", "t-1", PREFIX "ctx:-:t-1");
    /* no id or tenant can spell another key's name */
    assert_key(state, "acme", "a:b", PREFIX "ctx:acme:a%3Ab");
    assert_key(state, "acme:x", "t-1", PREFIX "ctx:acme%3Ax:t-1");
    assert_key(state, NULL, "{*} \n", PREFIX "ctx:-:%7B%2A%7D%20%0A");
}

/* SET the key of (tenant, id) to doc. */
static void put_doc(void **state,
                    const char *tenant,
                    const char *id,
                    const char *doc)
{
    char *key = ks_ctx_key(redis_fixture_store(state), tenant, id);
    redisReply *r = redisCommand(srv.c, "SET %s %s", key, doc);

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    free(key);
}

static enum ks_err load(void **state,
                        const char *tenant,
                        const char *id,
                        struct ks_ctx **ctxp,
                        char *err,
                        size_t size)
{
    struct ks_codec_limits lim;

    ks_codec_limits_default(&lim);
    return ks_ctx_load(redis_fixture_store(state), tenant, id, &lim, ctxp, err,
                       size);
}

static void ctx_save_and_load_use_the_tasks_tenant_and_id(void **state)
{
    struct ks_ctx *ctx = ctx_two_attempts(), *back = NULL;
    char err[256] = "";

    assert_int_equal(ks_ctx_save(redis_fixture_store(state), ctx), KS_OK);
    assert_int_equal(redis_server_num(&srv, "EXISTS %s", PREFIX "ctx:acme:t-1"),
                     1);
    assert_int_equal(load(state, "acme", "t-1", &back, err, sizeof(err)),
                     KS_OK);
    assert_string_equal(back->task->id, "t-1");
    assert_int_equal(back->n_attempts, 2);
    ks_ctx_destroy(back);
    /* the same id under another tenant (or none) is another key */
    assert_int_equal(load(state, NULL, "t-1", &back, err, sizeof(err)),
                     KS_ERR_INVALID);
    assert_null(back);
    assert_non_null(strstr(err, "no such key"));
    ks_ctx_destroy(ctx);
}

static const char other_task[] =
    "{\"task\":{\"id\":\"t-2\",\"type\":\"x\",\"input\":\"i\"},"
    "\"format\":\"json\",\"attempts\":[]}";
static const char acme_task[] =
    "{\"task\":{\"id\":\"t-1\",\"type\":\"x\",\"tenant\":\"acme\","
    "\"input\":\"i\"},\"format\":\"json\",\"attempts\":[]}";

static void ctx_load_refuses_a_context_of_another_task(void **state)
{
    struct ks_ctx *ctx = (void *)1;
    char err[256] = "";

    put_doc(state, NULL, "t-1", other_task);
    assert_int_equal(load(state, NULL, "t-1", &ctx, err, sizeof(err)),
                     KS_ERR_INVALID);
    assert_null(ctx);
    assert_non_null(strstr(err, "holds another task"));
}

static void ctx_load_refuses_a_context_of_another_tenant(void **state)
{
    struct ks_ctx *ctx = (void *)1;
    char err[256] = "";

    put_doc(state, "globex", "t-1", acme_task);
    assert_int_equal(load(state, "globex", "t-1", &ctx, err, sizeof(err)),
                     KS_ERR_INVALID);
    assert_null(ctx);
    assert_non_null(strstr(err, "holds another task"));
    /* and a task with a tenant is not the tenant-less one */
    put_doc(state, NULL, "t-1", acme_task);
    assert_int_equal(load(state, NULL, "t-1", &ctx, err, sizeof(err)),
                     KS_ERR_INVALID);
    assert_null(ctx);
}

/* The batch forms: a save and two loads (one of a key that is missing) in
 * one round trip give what ks_ctx_save and ks_ctx_load give; before the
 * batch runs they answer KS_ERR_RETRY. */
static void ctx_batch_save_and_load_agree_with_single_calls(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_ctx *ctx = ctx_two_attempts(), *back = NULL;
    struct ks_store_batch *b = ks_store_batch_new();
    struct ks_codec_limits lim;
    char err[256] = "";
    size_t is, il, im;

    ks_codec_limits_default(&lim);
    assert_int_equal(ks_ctx_save_add(rs, b, ctx, &is), KS_OK);
    ks_ctx_load_add(rs, b, "acme", "t-1", &il);
    ks_ctx_load_add(rs, b, "acme", "t-9", &im);
    assert_int_equal(ks_ctx_save_reply(b, is), KS_ERR_RETRY);
    assert_int_equal(ks_ctx_load_reply(rs, b, il, "acme", "t-1", &lim, &back,
                                       err, sizeof(err)),
                     KS_ERR_RETRY);
    assert_int_equal(ks_store_batch_run(rs, b), KS_OK);
    assert_int_equal(ks_ctx_save_reply(b, is), KS_OK);
    assert_int_equal(
        redis_server_num(&srv, "TTL %s", PREFIX "ctx:acme:t-1") > 0, 1);
    /* the load was sent after the save in the same pipeline: it sees it */
    assert_int_equal(ks_ctx_load_reply(rs, b, il, "acme", "t-1", &lim, &back,
                                       err, sizeof(err)),
                     KS_OK);
    assert_int_equal(back->n_attempts, 2);
    ks_ctx_destroy(back);
    back = NULL;
    assert_int_equal(ks_ctx_load_reply(rs, b, im, "acme", "t-9", &lim, &back,
                                       err, sizeof(err)),
                     KS_ERR_INVALID);
    assert_null(back);
    assert_non_null(strstr(err, "no such key"));
    ks_store_batch_destroy(b);
    ks_ctx_destroy(ctx);
}

/* A load of a context of another task is refused in the batch form too,
 * and an error reply is KS_ERR_UPSTREAM. */
static void ctx_batch_load_refuses_another_task_and_error_replies(void **state)
{
    struct ks_store *rs = redis_fixture_store(state);
    struct ks_store_batch *b = ks_store_batch_new();
    struct ks_ctx *ctx = (void *)1;
    struct ks_codec_limits lim;
    char err[256] = "";
    size_t i1, i2;

    ks_codec_limits_default(&lim);
    put_doc(state, NULL, "t-1", other_task);
    assert_int_equal(redis_server_num(&srv, "RPUSH %s x", PREFIX "ctx:-:t-3"),
                     1);
    ks_ctx_load_add(rs, b, NULL, "t-1", &i1);
    ks_ctx_load_add(rs, b, NULL, "t-3", &i2);
    assert_int_equal(ks_store_batch_run(rs, b), KS_OK);
    assert_int_equal(
        ks_ctx_load_reply(rs, b, i1, NULL, "t-1", &lim, &ctx, err, sizeof(err)),
        KS_ERR_INVALID);
    assert_null(ctx);
    assert_non_null(strstr(err, "holds another task"));
    assert_int_equal(
        ks_ctx_load_reply(rs, b, i2, NULL, "t-3", &lim, &ctx, err, sizeof(err)),
        KS_ERR_UPSTREAM);
    assert_non_null(strstr(err, "WRONGTYPE"));
    ks_store_batch_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ctx_round_trip_keeps_task_and_attempts),
        cmocka_unit_test(ctx_same_hop_replaces_and_is_not_counted_twice),
        cmocka_unit_test(ctx_best_is_most_confident_with_an_output),
        cmocka_unit_test(ctx_result_has_path_total_cost_and_metadata),
        cmocka_unit_test(ctx_decode_refuses_corrupt_documents_by_name),
    };

    const struct CMUnitTest store_tests[] = {
        cmocka_unit_test_setup_teardown(
            ctx_key_is_derived_from_tenant_and_id_encoded, setup,
            redis_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            ctx_save_and_load_use_the_tasks_tenant_and_id, setup,
            redis_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            ctx_load_refuses_a_context_of_another_task, setup,
            redis_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            ctx_load_refuses_a_context_of_another_tenant, setup,
            redis_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            ctx_batch_save_and_load_agree_with_single_calls, setup,
            redis_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            ctx_batch_load_refuses_another_task_and_error_replies, setup,
            redis_fixture_teardown),
    };
    int failed = cmocka_run_group_tests_name("ctx", tests, NULL, NULL);

    failed += cmocka_run_group_tests_name("store", store_tests, group_setup,
                                          redis_server_group_teardown);
    return failed ? 1 : 0;
}
