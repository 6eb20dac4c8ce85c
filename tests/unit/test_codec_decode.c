/*
 * test_codec_decode.c - the envelope codec's default limits, format
 * detection, status names and money conversion, and strict decoding of
 * valid JSON (every field read, null as absent, caps at their edges).
 * Refusal tables are in test_codec_reject_json.c and test_codec_reject_pb.c;
 * fixtures are written with ' for " to stay readable (codec_fixture.h).
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

#include <cmocka.h>

#include "codec_fixture.h"

#include "base/banned.h"

/* ---- limits, detection, names, money ---- */

static void limits_default_match_the_header(void **state)
{
    struct ks_codec_limits lim;

    (void)state;
    ks_codec_limits_default(&lim);
    assert_int_equal(lim.max_message_bytes, 1024 * 1024);
    assert_int_equal(lim.max_id_bytes, 256);
    assert_int_equal(lim.max_text_bytes, 512 * 1024);
    assert_int_equal(lim.max_messages, 256);
    assert_int_equal(lim.max_metadata, 64);
    assert_int_equal(lim.max_path, 16);
    assert_int_equal(lim.max_depth, 32);
}

static void detect_picks_protobuf_from_content_type(void **state)
{
    static const char *types[] = {
        "application/x-protobuf",
        "Application/X-Protobuf",
        "application/x-protobuf; messageType=kascade.Task",
        "application/x-protobuf ;charset=binary",
    };
    struct ks_codec_error cerr;
    enum ks_format fmt;

    (void)state;
    for (size_t i = 0; i < N_OF(types); i++) {
        fmt = KS_FORMAT_JSON;
        assert_int_equal(ks_codec_detect(types[i], "{", 1, &fmt, &cerr), KS_OK);
        assert_int_equal(fmt, KS_FORMAT_PROTOBUF);
    }
}

static void detect_picks_json_from_first_non_blank_brace(void **state)
{
    struct ks_codec_error cerr;
    enum ks_format fmt = KS_FORMAT_PROTOBUF;

    (void)state;
    assert_int_equal(ks_codec_detect(NULL, " \r\n\t{}", 6, &fmt, &cerr), KS_OK);
    assert_int_equal(fmt, KS_FORMAT_JSON);
    fmt = KS_FORMAT_PROTOBUF;
    assert_int_equal(ks_codec_detect("application/json", "{}", 2, &fmt, &cerr),
                     KS_OK);
    assert_int_equal(fmt, KS_FORMAT_JSON);
}

static void detect_refuses_neither_as_decode(void **state)
{
    struct ks_codec_error cerr;
    enum ks_format fmt;

    (void)state;
    assert_int_equal(ks_codec_detect(NULL, "[1]", 3, &fmt, &cerr),
                     KS_ERR_INVALID);
    assert_detail(&cerr, "decode", "first byte 0x5b");
    assert_int_equal(ks_codec_detect(NULL, "  ", 2, &fmt, &cerr),
                     KS_ERR_INVALID);
    assert_detail(&cerr, "decode", "empty");
    assert_int_equal(ks_codec_detect("application/x-protobuffer", "\x08\x01", 2,
                                     &fmt, &cerr),
                     KS_ERR_INVALID);
    assert_detail(&cerr, "decode", "first byte 0x08");
}

static void status_names_round_trip_and_unknown_is_refused(void **state)
{
    static const char *names[] = {"ok", "low_confidence", "failed", "rejected",
                                  "budget_exceeded"};
    enum ks_status status;

    (void)state;
    for (size_t i = 0; i < N_OF(names); i++) {
        assert_int_equal(ks_status_parse(names[i], &status), 0);
        assert_int_equal(status, (enum ks_status)i);
        assert_string_equal(ks_status_str(status), names[i]);
    }
    assert_int_equal(ks_status_parse("OK", &status), -1);
    assert_int_equal(ks_status_parse("", &status), -1);
}

static void usd_to_micro_rounds_to_nearest(void **state)
{
    (void)state;
    assert_int_equal(ks_usd_to_micro(0.05), 50000);
    assert_int_equal(ks_usd_to_micro(0.000012), 12);
    assert_int_equal(ks_usd_to_micro(0.0000124), 12);
    assert_int_equal(ks_usd_to_micro(0.0000126), 13);
    assert_int_equal(ks_usd_to_micro(-0.0000126), -13);
    assert_int_equal(ks_usd_to_micro(1234.567891), 1234567891);
    assert_int_equal(ks_usd_to_micro(NAN), 0);
    assert_int_equal(ks_usd_to_micro(INFINITY), INT64_MAX);
    assert_same_double(ks_micro_to_usd(50000), 0.05);
    assert_same_double(ks_micro_to_usd(12), 0.000012);
}

/* ---- decoding what is valid ---- */

static void task_decode_reads_every_field(void **state)
{
    struct ks_task *task = task_from(full_task);

    (void)state;
    assert_string_equal(task->id, "t-42");
    assert_string_equal(task->type, "classify_intent");
    assert_string_equal(task->tenant, "acme");
    assert_string_equal(task->input, "I was charged twice");
    assert_int_equal(task->n_messages, 2);
    assert_string_equal(task->messages[0].role, "system");
    assert_string_equal(task->messages[0].content, "be brief");
    assert_string_equal(task->messages[1].role, "user");
    assert_string_equal(task->messages[1].content, "line\nbreak \xc3\xa9");
    assert_string_equal(task->instructions, "answer with one label");
    assert_string_equal(task->output_schema,
                        "{\"type\":\"object\",\"required\":[\"label\"]}");
    assert_string_equal(task->hints.min_tier, "local");
    assert_string_equal(task->hints.max_tier, "frontier");
    assert_true(task->hints.local_only);
    assert_int_equal(task->hints.risk, KS_RISK_HIGH);
    assert_int_equal(task->hints.latency, KS_LATENCY_INTERACTIVE);
    assert_int_equal(task->hints.max_cost_micro, 50000);
    assert_int_equal(task->hints.max_output_tokens, 512);
    assert_string_equal(task->reply_to, "acme.results");
    assert_int_equal(task->n_metadata, 2);
    assert_string_equal(task->metadata[0].key, "trace");
    assert_string_equal(task->metadata[0].value, "abc");
    assert_string_equal(task->metadata[1].key, "team");
    assert_string_equal(task->metadata[1].value, "billing");
    ks_task_destroy(task);
}

static void task_decode_treats_null_as_absent(void **state)
{
    struct ks_task *task = task_from(
        "{'id':'t-1','type':'x','input':null,'tenant':null,"
        "'messages':[{'role':'user','content':'hi'}],'hints':{'risk':null,"
        "'max_cost_usd':null,'local_only':null},'metadata':null,"
        "'output_schema':null}");

    (void)state;
    assert_null(task->input);
    assert_null(task->tenant);
    assert_null(task->output_schema);
    assert_int_equal(task->n_messages, 1);
    assert_int_equal(task->hints.risk, KS_RISK_UNSET);
    assert_int_equal(task->hints.max_cost_micro, -1);
    assert_false(task->hints.local_only);
    assert_int_equal(task->n_metadata, 0);
    ks_task_destroy(task);
}

static void task_decode_reads_only_len_bytes(void **state)
{
    static const char text[] =
        "{\"id\":\"t-1\",\"type\":\"x\",\"input\":\"hi\"}";
    struct ks_codec_error cerr;
    struct ks_task *task;
    char *exact = malloc(sizeof(text) - 1); /* no NUL: ASan sees overreads */

    (void)state;
    memcpy(exact, text, sizeof(text) - 1);
    assert_int_equal(ks_task_decode(KS_FORMAT_JSON, exact, sizeof(text) - 1,
                                    &tight, &task, &cerr),
                     KS_OK);
    assert_string_equal(task->input, "hi");
    ks_task_destroy(task);
    free(exact);
}

static void task_decode_accepts_nesting_at_the_limit(void **state)
{
    char *text = json_text("{'id':'t-1','type':'x','input':'hi',"
                           "'output_schema':{'a':{'b':{'c':{'d':{}}}}}}");
    struct ks_codec_error cerr;
    struct ks_task *task;

    (void)state;
    assert_int_equal(ks_task_decode(KS_FORMAT_JSON, text, strlen(text), &tight,
                                    &task, &cerr),
                     KS_OK);
    assert_string_equal(task->output_schema,
                        "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}");
    ks_task_destroy(task);
    free(text);
}

/* cJSON itself stops at 1000 levels with a bare syntax error; deep input
 * is still over our cap, not undecodable. */
static void task_decode_refuses_nesting_past_cjson_own_limit(void **state)
{
    static const char head[] = "{\"id\":\"t-1\",\"type\":\"x\",\"input\":";
    size_t depth = 3000, len = sizeof(head) - 1;
    char *text = malloc(len + 2 * depth + 1);
    struct ks_codec_error cerr;

    (void)state;
    memcpy(text, head, len);
    for (size_t i = 0; i < depth; i++) {
        text[len++] = '[';
    }
    for (size_t i = 0; i < depth; i++) {
        text[len++] = ']';
    }
    text[len++] = '}';
    assert_int_equal(decode_kind(TASK, KS_FORMAT_JSON, text, len, NULL, &cerr),
                     KS_ERR_TOO_LARGE);
    assert_detail(&cerr, "too_large", "nested deeper than 32");
    free(text);
}

static void task_decode_refuses_oversized_message(void **state)
{
    size_t len = tight.max_message_bytes + 1;
    char *text = malloc(len);
    struct ks_codec_error cerr;

    (void)state;
    memset(text, ' ', len);
    text[0] = '{';
    text[len - 1] = '}';
    assert_int_equal(
        decode_kind(TASK, KS_FORMAT_JSON, text, len, &tight, &cerr),
        KS_ERR_TOO_LARGE);
    assert_detail(&cerr, "too_large", "message of 4097 bytes, cap 4096");
    assert_int_equal(
        decode_kind(RESULT, KS_FORMAT_PROTOBUF, text, len, &tight, &cerr),
        KS_ERR_TOO_LARGE);
    assert_detail(&cerr, "too_large", "message of 4097 bytes");
    free(text);
}

/* The tenant rule is its own cap, below the id cap: 128 bytes pass,
 * 129 are refused as invalid (not too_large) under the default limits. */
static void task_decode_takes_a_tenant_of_128_bytes_and_no_more(void **state)
{
    static const char head[] = "{\"id\":\"t-1\",\"type\":\"x\","
                               "\"input\":\"hi\",\"tenant\":\"";
    char text[512], name[130];
    struct ks_codec_error cerr;
    struct ks_task *task;

    (void)state;
    memset(name, 'a', sizeof(name));
    name[128] = '\0';
    snprintf(text, sizeof(text), "%s%s\"}", head, name);
    assert_int_equal(
        ks_task_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &task, &cerr),
        KS_OK);
    assert_int_equal(strlen(task->tenant), 128);
    ks_task_destroy(task);
    name[128] = 'a';
    name[129] = '\0';
    snprintf(text, sizeof(text), "%s%s\"}", head, name);
    assert_int_equal(
        decode_kind(TASK, KS_FORMAT_JSON, text, strlen(text), NULL, &cerr),
        KS_ERR_INVALID);
    assert_detail(&cerr, "invalid", "field 'tenant': 129 bytes, over 128");
}

/* A raw NUL byte inside a JSON string would cut the string in cJSON (an
 * id "b\0evil" read as "b"): refused like the \u0000 escape. */
static void task_decode_rejects_a_raw_nul_byte_in_a_string(void **state)
{
    static const char id[] = "{\"id\":\"b\0evil\",\"type\":\"x\","
                             "\"input\":\"hi\"}";
    static const char input[] = "{\"id\":\"b\",\"type\":\"x\","
                                "\"input\":\"a\0b\"}";
    static const char reason[] = "{\"id\":\"b\",\"from_tier\":\"x\","
                                 "\"hop\":0,\"reason\":\"a\0b\"}";
    struct ks_codec_error cerr;

    (void)state;
    assert_int_equal(
        decode_kind(TASK, KS_FORMAT_JSON, id, sizeof(id) - 1, NULL, &cerr),
        KS_ERR_INVALID);
    assert_detail(&cerr, "invalid", "a string holds a NUL byte");
    assert_int_equal(decode_kind(ESCALATION, KS_FORMAT_JSON, reason,
                                 sizeof(reason) - 1, NULL, &cerr),
                     KS_ERR_INVALID);
    assert_detail(&cerr, "invalid", "a string holds a NUL byte");
    assert_int_equal(decode_kind(TASK, KS_FORMAT_JSON, input, sizeof(input) - 1,
                                 NULL, &cerr),
                     KS_ERR_INVALID);
    assert_detail(&cerr, "invalid", "a string holds a NUL byte");
}

static void task_decode_accepts_every_tenant_character(void **state)
{
    struct ks_task *task = task_from("{'id':'t-1','type':'x','input':'hi',"
                                     "'tenant':'Az09._-zA'}");

    (void)state;
    assert_string_equal(task->tenant, "Az09._-zA");
    ks_task_destroy(task);
}

static void result_decode_reads_the_design_example(void **state)
{
    struct ks_result *result = result_from(full_result);

    (void)state;
    assert_string_equal(result->id, "t-42");
    assert_int_equal(result->status, KS_STATUS_LOW_CONFIDENCE);
    assert_string_equal(result->output, "billing");
    assert_same_double(result->confidence, 0.93);
    assert_string_equal(result->confidence_source, "logprob");
    assert_int_equal(result->cost_micro, 12);
    assert_int_equal(result->input_tokens, 41);
    assert_int_equal(result->output_tokens, 3);
    assert_int_equal(result->latency_ms, 182);
    assert_int_equal(result->n_path, 2);
    assert_string_equal(result->path[0].decision, "escalate");
    assert_same_double(result->path[0].confidence, 0.41);
    assert_int_equal(result->path[0].cost_micro, 10);
    assert_int_equal(result->path[0].latency_ms, 120);
    assert_same_double(result->path[1].confidence, -1);
    assert_null(result->path[1].reason);
    assert_int_equal(result->path[1].cost_micro, 2000);
    assert_null(result->error);
    assert_int_equal(result->n_metadata, 1);
    ks_result_destroy(result);
}

static void escalation_decode_reads_every_field(void **state)
{
    struct ks_escalation *esc = escalation_from(full_escalation);

    (void)state;
    assert_string_equal(esc->id, "t-42");
    assert_string_equal(esc->tenant, "acme");
    assert_string_equal(esc->from_tier, "local");
    assert_int_equal(esc->hop, 1);
    assert_string_equal(esc->reason, "low_confidence");
    assert_same_double(esc->confidence, 0.41);
    assert_string_equal(esc->context_key, "ctx:acme:t-42");
    assert_int_equal(esc->cost_so_far_micro, 10);
    ks_escalation_destroy(esc);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limits_default_match_the_header),
        cmocka_unit_test(detect_picks_protobuf_from_content_type),
        cmocka_unit_test(detect_picks_json_from_first_non_blank_brace),
        cmocka_unit_test(detect_refuses_neither_as_decode),
        cmocka_unit_test(status_names_round_trip_and_unknown_is_refused),
        cmocka_unit_test(usd_to_micro_rounds_to_nearest),
        cmocka_unit_test(task_decode_reads_every_field),
        cmocka_unit_test(task_decode_treats_null_as_absent),
        cmocka_unit_test(task_decode_reads_only_len_bytes),
        cmocka_unit_test(task_decode_accepts_nesting_at_the_limit),
        cmocka_unit_test(task_decode_refuses_nesting_past_cjson_own_limit),
        cmocka_unit_test(task_decode_refuses_oversized_message),
        cmocka_unit_test(task_decode_takes_a_tenant_of_128_bytes_and_no_more),
        cmocka_unit_test(task_decode_accepts_every_tenant_character),
        cmocka_unit_test(task_decode_rejects_a_raw_nul_byte_in_a_string),
        cmocka_unit_test(result_decode_reads_the_design_example),
        cmocka_unit_test(escalation_decode_reads_every_field),
    };
    int failed;

    failed = cmocka_run_group_tests_name("codec_decode", tests, NULL, NULL);
    return failed ? 1 : 0;
}
