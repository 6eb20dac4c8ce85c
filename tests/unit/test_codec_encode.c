/*
 * test_codec_encode.c - the envelope codec's encoding, round trips
 * JSON -> memory -> protobuf -> memory that must lose nothing, the lent
 * decoding whose strings share one block, and allocation failure inside
 * cJSON. Fixtures are written with ' for " (codec_fixture.h).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "base/util.h"
#include "codec_fixture.h"

#include "base/banned.h"

/* ---- comparisons and re-decoding ---- */

static void assert_same_str(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
    } else {
        assert_string_equal(a, b);
    }
}

static void assert_same_kv(const struct ks_kv *a,
                           size_t na,
                           const struct ks_kv *b,
                           size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].key, b[i].key);
        assert_string_equal(a[i].value, b[i].value);
    }
}

static void assert_same_task(const struct ks_task *a, const struct ks_task *b)
{
    assert_same_str(a->id, b->id);
    assert_same_str(a->type, b->type);
    assert_same_str(a->tenant, b->tenant);
    assert_same_str(a->input, b->input);
    assert_int_equal(a->n_messages, b->n_messages);
    for (size_t i = 0; i < a->n_messages; i++) {
        assert_same_str(a->messages[i].role, b->messages[i].role);
        assert_same_str(a->messages[i].content, b->messages[i].content);
    }
    assert_same_str(a->instructions, b->instructions);
    assert_same_str(a->output_schema, b->output_schema);
    assert_same_str(a->hints.min_tier, b->hints.min_tier);
    assert_same_str(a->hints.max_tier, b->hints.max_tier);
    assert_int_equal(a->hints.local_only, b->hints.local_only);
    assert_int_equal(a->hints.risk, b->hints.risk);
    assert_int_equal(a->hints.latency, b->hints.latency);
    assert_int_equal(a->hints.max_cost_micro, b->hints.max_cost_micro);
    assert_int_equal(a->hints.max_output_tokens, b->hints.max_output_tokens);
    assert_same_str(a->reply_to, b->reply_to);
    assert_same_kv(a->metadata, a->n_metadata, b->metadata, b->n_metadata);
}

static void assert_same_result(const struct ks_result *a,
                               const struct ks_result *b)
{
    assert_same_str(a->id, b->id);
    assert_same_str(a->type, b->type);
    assert_same_str(a->tenant, b->tenant);
    assert_int_equal(a->status, b->status);
    assert_same_str(a->output, b->output);
    assert_same_str(a->tier, b->tier);
    assert_same_str(a->model, b->model);
    assert_same_double(a->confidence, b->confidence);
    assert_same_str(a->confidence_source, b->confidence_source);
    assert_int_equal(a->cost_micro, b->cost_micro);
    assert_int_equal(a->input_tokens, b->input_tokens);
    assert_int_equal(a->output_tokens, b->output_tokens);
    assert_int_equal(a->latency_ms, b->latency_ms);
    assert_int_equal(a->n_path, b->n_path);
    for (size_t i = 0; i < a->n_path; i++) {
        assert_same_str(a->path[i].tier, b->path[i].tier);
        assert_same_str(a->path[i].model, b->path[i].model);
        assert_same_double(a->path[i].confidence, b->path[i].confidence);
        assert_same_str(a->path[i].decision, b->path[i].decision);
        assert_same_str(a->path[i].reason, b->path[i].reason);
        assert_int_equal(a->path[i].cost_micro, b->path[i].cost_micro);
        assert_int_equal(a->path[i].latency_ms, b->path[i].latency_ms);
    }
    assert_same_str(a->error, b->error);
    assert_same_kv(a->metadata, a->n_metadata, b->metadata, b->n_metadata);
}

static void assert_same_escalation(const struct ks_escalation *a,
                                   const struct ks_escalation *b)
{
    assert_same_str(a->id, b->id);
    assert_same_str(a->tenant, b->tenant);
    assert_same_str(a->from_tier, b->from_tier);
    assert_int_equal(a->hop, b->hop);
    assert_same_str(a->reason, b->reason);
    assert_same_double(a->confidence, b->confidence);
    assert_same_str(a->context_key, b->context_key);
    assert_int_equal(a->cost_so_far_micro, b->cost_so_far_micro);
}

/* Encodes in fmt and decodes again with the default limits. */
static struct ks_task *task_again(enum ks_format fmt, const struct ks_task *in)
{
    struct ks_codec_error cerr;
    struct ks_task *out;
    size_t len;
    char *buf;

    assert_int_equal(ks_task_encode(fmt, in, &buf, &len), KS_OK);
    if (ks_task_decode(fmt, buf, len, NULL, &out, &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(buf);
    return out;
}

static struct ks_result *result_again(enum ks_format fmt,
                                      const struct ks_result *in)
{
    struct ks_codec_error cerr;
    struct ks_result *out;
    size_t len;
    char *buf;

    assert_int_equal(ks_result_encode(fmt, in, &buf, &len), KS_OK);
    if (ks_result_decode(fmt, buf, len, NULL, &out, &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(buf);
    return out;
}

static struct ks_escalation *escalation_again(enum ks_format fmt,
                                              const struct ks_escalation *in)
{
    struct ks_codec_error cerr;
    struct ks_escalation *out;
    size_t len;
    char *buf;

    assert_int_equal(ks_escalation_encode(fmt, in, &buf, &len), KS_OK);
    if (ks_escalation_decode(fmt, buf, len, NULL, &out, &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(buf);
    return out;
}

static char *result_json(const struct ks_result *result)
{
    size_t len;
    char *buf;

    assert_int_equal(ks_result_encode(KS_FORMAT_JSON, result, &buf, &len),
                     KS_OK);
    assert_int_equal(strlen(buf), len);
    return buf;
}

/* ---- encoding ---- */

static void task_encode_writes_only_present_fields(void **state)
{
    struct ks_task *task = task_from("{'id':'t-1','type':'x','input':'hi'}");
    size_t len;
    char *buf;

    (void)state;
    assert_int_equal(ks_task_encode(KS_FORMAT_JSON, task, &buf, &len), KS_OK);
    assert_string_equal(buf,
                        "{\"id\":\"t-1\",\"type\":\"x\",\"input\":\"hi\"}");
    assert_int_equal(len, strlen(buf));
    free(buf);
    task->hints.max_cost_micro = 50000;
    task->hints.risk = KS_RISK_LOW;
    assert_int_equal(ks_task_encode(KS_FORMAT_JSON, task, &buf, &len), KS_OK);
    assert_non_null(
        strstr(buf, "\"hints\":{\"risk\":\"low\",\"max_cost_usd\":0.05}"));
    free(buf);
    ks_task_destroy(task);
}

static void result_encode_writes_every_field_with_nulls(void **state)
{
    struct ks_result *result = ks_result_new();
    char *buf;

    (void)state;
    result->id = strdup("t-1");
    buf = result_json(result);
    assert_string_equal(
        buf, "{\"id\":\"t-1\",\"type\":null,\"tenant\":null,\"status\":\"ok\","
             "\"output\":null,\"tier\":null,\"model\":null,\"confidence\":null,"
             "\"confidence_source\":null,\"cost_usd\":0,\"usage\":{"
             "\"input_tokens\":0,\"output_tokens\":0},\"latency_ms\":0,"
             "\"path\":[],\"error\":null,\"metadata\":{}}");
    free(buf);
    ks_result_destroy(result);
}

static void result_encode_writes_cost_as_decimal_usd(void **state)
{
    static const struct {
        int64_t micro;
        const char *text;
    } cases[] = {
        {12, "\"cost_usd\":0.000012,"},          {0, "\"cost_usd\":0,"},
        {1, "\"cost_usd\":0.000001,"},           {50000, "\"cost_usd\":0.05,"},
        {1500000, "\"cost_usd\":1.5,"},          {7000000, "\"cost_usd\":7,"},
        {123456789, "\"cost_usd\":123.456789,"},
    };
    struct ks_result *result = result_from(full_result);
    char *buf;

    (void)state;
    for (size_t i = 0; i < N_OF(cases); i++) {
        result->cost_micro = cases[i].micro;
        buf = result_json(result);
        if (!strstr(buf, cases[i].text)) {
            fail_msg("%s lacks %s", buf, cases[i].text);
        }
        assert_non_null(strstr(buf, "\"cost_usd\":0.00001,\"latency_ms\":120"));
        free(buf);
    }
    ks_result_destroy(result);
}

static void escalation_encode_writes_every_field(void **state)
{
    struct ks_escalation *esc = escalation_from(full_escalation);
    size_t len;
    char *buf;

    (void)state;
    free(esc->reason);
    esc->reason = NULL;
    esc->confidence = -1;
    assert_int_equal(ks_escalation_encode(KS_FORMAT_JSON, esc, &buf, &len),
                     KS_OK);
    assert_string_equal(buf,
                        "{\"id\":\"t-42\",\"tenant\":\"acme\","
                        "\"from_tier\":\"local\",\"hop\":1,"
                        "\"reason\":null,\"confidence\":null,\"context_key\":"
                        "\"ctx:acme:t-42\",\"cost_so_far_usd\":0.00001}");
    free(buf);
    ks_escalation_destroy(esc);
}

/* ---- round trips: JSON -> memory -> protobuf -> memory ---- */

static void task_round_trips_json_and_protobuf(void **state)
{
    struct ks_task *task = task_from(full_task), *json, *pb;
    char *a, *b;
    size_t len;

    (void)state;
    json = task_again(KS_FORMAT_JSON, task);
    assert_same_task(task, json);
    pb = task_again(KS_FORMAT_PROTOBUF, json);
    assert_same_task(task, pb);
    assert_int_equal(ks_task_encode(KS_FORMAT_JSON, task, &a, &len), KS_OK);
    assert_int_equal(ks_task_encode(KS_FORMAT_JSON, pb, &b, &len), KS_OK);
    assert_string_equal(a, b);
    free(a);
    free(b);
    ks_task_destroy(pb);
    ks_task_destroy(json);
    ks_task_destroy(task);
}

static void task_round_trip_keeps_unset_markers(void **state)
{
    struct ks_task *task = task_from(
        "{'id':'t-1','type':'x','messages':[{'role':'user','content':''}],"
        "'hints':{'max_cost_usd':0}}");
    struct ks_task *json, *pb;

    (void)state;
    assert_int_equal(task->hints.max_cost_micro, 0); /* a $0 cap is a cap */
    json = task_again(KS_FORMAT_JSON, task);
    pb = task_again(KS_FORMAT_PROTOBUF, json);
    assert_same_task(task, pb);
    assert_null(pb->input);
    assert_int_equal(pb->hints.risk, KS_RISK_UNSET);
    assert_int_equal(pb->hints.latency, KS_LATENCY_UNSET);
    assert_int_equal(pb->hints.max_output_tokens, 0);
    pb->hints.max_cost_micro = -1;
    ks_task_destroy(json);
    json = task_again(KS_FORMAT_PROTOBUF, pb);
    assert_int_equal(json->hints.max_cost_micro, -1);
    ks_task_destroy(json);
    ks_task_destroy(pb);
    ks_task_destroy(task);
}

static void result_round_trips_json_and_protobuf(void **state)
{
    struct ks_result *result = result_from(full_result), *json, *pb;

    (void)state;
    result->confidence = 0.1 + 0.2; /* needs all 17 digits */
    result->error = strdup("upstream said \"no\"");
    json = result_again(KS_FORMAT_JSON, result);
    assert_same_result(result, json);
    pb = result_again(KS_FORMAT_PROTOBUF, json);
    assert_same_result(result, pb);
    ks_result_destroy(pb);
    ks_result_destroy(json);
    ks_result_destroy(result);
}

static bool in_block(const struct ks_task *t, const char *s)
{
    return s && s >= t->strings && s < t->strings + t->strings_len;
}

/* ks_task_decode_lent: the same task as ks_task_decode, its strings in one
 * block the task owns (freed once by ks_task_destroy; ASan checks), while
 * ks_task_decode's task owns a copy of each. */
static void task_decode_lent_points_into_one_block(void **state)
{
    char *text = json_text(full_task);
    struct ks_codec_error cerr = {0};
    struct ks_task *lent = NULL, *own = task_from(full_task);

    (void)state;
    assert_int_equal(ks_task_decode_lent(KS_FORMAT_JSON, text, strlen(text),
                                         NULL, &lent, &cerr),
                     KS_OK);
    assert_same_task(own, lent);
    assert_non_null(lent->strings);
    assert_true(in_block(lent, lent->id));
    assert_true(in_block(lent, lent->input));
    assert_true(in_block(lent, lent->hints.min_tier));
    assert_true(lent->n_messages > 0);
    assert_true(in_block(lent, lent->messages[0].content));
    assert_null(own->strings);
    /* a field the caller replaces (the lent one stays in the block) is
     * its own and freed as such */
    lent->tenant = ks_xstrdup("other");
    ks_task_destroy(lent);
    ks_task_destroy(own);
    free(text);
}

static void result_round_trip_keeps_absent_fields_absent(void **state)
{
    struct ks_result *result = result_from("{'id':'t-1','status':'failed'}");
    struct ks_result *json, *pb;

    (void)state;
    json = result_again(KS_FORMAT_JSON, result);
    pb = result_again(KS_FORMAT_PROTOBUF, json);
    assert_same_result(result, pb);
    assert_null(pb->output);
    assert_null(pb->error);
    assert_same_double(pb->confidence, -1);
    assert_int_equal(pb->status, KS_STATUS_FAILED);
    ks_result_destroy(pb);
    ks_result_destroy(json);
    ks_result_destroy(result);
}

static void escalation_round_trips_json_and_protobuf(void **state)
{
    struct ks_escalation *esc = escalation_from(full_escalation), *json, *pb;

    (void)state;
    esc->hop = UINT32_MAX;
    json = escalation_again(KS_FORMAT_JSON, esc);
    assert_same_escalation(esc, json);
    pb = escalation_again(KS_FORMAT_PROTOBUF, json);
    assert_same_escalation(esc, pb);
    ks_escalation_destroy(pb);
    ks_escalation_destroy(json);
    ks_escalation_destroy(esc);
}

/* ---- allocation failure inside cJSON ---- */

static int alloc_budget = -1; /* allocations left; -1 for no limit */

static void *budget_malloc(size_t size)
{
    if (alloc_budget == 0) {
        return NULL;
    }
    if (alloc_budget > 0) {
        alloc_budget--;
    }
    return malloc(size);
}

/* Every cJSON allocation failing in turn gives NOMEM (or, while parsing,
 * an error), never a crash, a leak or a half-made buffer. */
static void codec_survives_cjson_allocation_failure(void **state)
{
    cJSON_Hooks hooks = {budget_malloc, free};
    struct ks_result *result = result_from(full_result), *back;
    char *text = json_text(full_result), *buf;
    struct ks_codec_error cerr;
    enum ks_err err;
    size_t len;

    (void)state;
    cJSON_InitHooks(&hooks);
    for (int n = 0;; n++) {
        alloc_budget = n;
        buf = (char *)1;
        err = ks_result_encode(KS_FORMAT_JSON, result, &buf, &len);
        if (err == KS_OK) {
            free(buf);
            break;
        }
        assert_int_equal(err, KS_ERR_NOMEM);
        assert_null(buf);
    }
    for (int n = 0;; n++) {
        alloc_budget = n;
        err = ks_result_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &back,
                               &cerr);
        if (err == KS_OK) {
            ks_result_destroy(back);
            break;
        }
        assert_null(back);
    }
    alloc_budget = -1;
    cJSON_InitHooks(NULL);
    free(text);
    ks_result_destroy(result);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(task_encode_writes_only_present_fields),
        cmocka_unit_test(result_encode_writes_every_field_with_nulls),
        cmocka_unit_test(result_encode_writes_cost_as_decimal_usd),
        cmocka_unit_test(escalation_encode_writes_every_field),
        cmocka_unit_test(task_round_trips_json_and_protobuf),
        cmocka_unit_test(task_round_trip_keeps_unset_markers),
        cmocka_unit_test(task_decode_lent_points_into_one_block),
        cmocka_unit_test(result_round_trips_json_and_protobuf),
        cmocka_unit_test(result_round_trip_keeps_absent_fields_absent),
        cmocka_unit_test(escalation_round_trips_json_and_protobuf),
        cmocka_unit_test(codec_survives_cjson_allocation_failure),
    };
    int failed;

    failed = cmocka_run_group_tests_name("codec_encode", tests, NULL, NULL);
    return failed ? 1 : 0;
}
