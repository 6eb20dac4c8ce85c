/*
 * test_codec_reject_pb.c - the envelope codec's refusals of protobuf
 * input: every refusal names its field and DLQ code. Inputs are built byte
 * by byte with a small wire writer, so the tests do not share the
 * generated code with what they test. Cases run from a table, one named
 * cmocka test per case, against the tight limits of codec_fixture.h.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec_fixture.h"

#include "base/banned.h"

/* ---- protobuf wire writer ---- */

static void w_byte(struct wire *w, uint8_t b)
{
    assert_true(w->len < sizeof(w->buf));
    w->buf[w->len++] = b;
}

static void w_varint(struct wire *w, uint64_t v)
{
    for (; v >= 0x80; v >>= 7) {
        w_byte(w, (uint8_t)(v | 0x80));
    }
    w_byte(w, (uint8_t)v);
}

static void w_uint(struct wire *w, unsigned field, uint64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, v);
}

static void w_double(struct wire *w, unsigned field, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    w_varint(w, (uint64_t)field << 3 | 1);
    for (int i = 0; i < 8; i++) {
        w_byte(w, (uint8_t)(bits >> (8 * i)));
    }
}

static void w_bytes(struct wire *w, unsigned field, const void *p, size_t n)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    for (size_t i = 0; i < n; i++) {
        w_byte(w, ((const uint8_t *)p)[i]);
    }
}

static void w_str(struct wire *w, unsigned field, const char *s)
{
    w_bytes(w, field, s, strlen(s));
}

static void w_msg(struct wire *w, unsigned field, const struct wire *sub)
{
    w_bytes(w, field, sub->buf, sub->len);
}

#define PB_CASE(name_, kind_, build_, err_, code_, detail_)                    \
    {                                                                          \
#name_, run_reject, NULL, NULL,                                        \
            &(struct reject_case){kind_, NULL, build_, err_, code_, detail_ }, \
    }
#define PB_INVALID(name_, kind_, build_, detail_)                              \
    PB_CASE(name_, kind_, build_, KS_ERR_INVALID, "invalid", detail_)

/* Protobuf inputs: Task fields 1 id, 2 type, 4 input, 5 messages, 7
 * output_schema, 8 hints, 10 metadata; Result 1 id, 4 status, 10 cost_usd;
 * Escalation 1 id, 2 from_tier, 3 hop. */
static void pb_base_task(struct wire *w)
{
    w_str(w, 1, "t-1");
    w_str(w, 2, "x");
    w_str(w, 4, "hi");
}

static void pb_hints(struct wire *w, void (*fill)(struct wire *))
{
    struct wire sub = {.len = 0};

    pb_base_task(w);
    fill(&sub);
    w_msg(w, 8, &sub);
}

static void pb_garbage(struct wire *w)
{
    w_byte(w, 0xff);
    w_byte(w, 0xff);
    w_byte(w, 0xff);
}

static void pb_no_id(struct wire *w)
{
    w_str(w, 2, "x");
    w_str(w, 4, "hi");
}

static void pb_long_id(struct wire *w)
{
    w_str(w, 1, "t-0123456789abcde");
    w_str(w, 2, "x");
    w_str(w, 4, "hi");
}

static void pb_unknown_field(struct wire *w)
{
    pb_base_task(w);
    w_str(w, 99, "surprise");
}

static void fill_unknown(struct wire *w)
{
    w_uint(w, 12, 1);
}

static void fill_risk(struct wire *w)
{
    w_str(w, 4, "medium");
}

static void fill_nan_cost(struct wire *w)
{
    w_double(w, 6, NAN);
}

static void fill_tokens(struct wire *w)
{
    w_uint(w, 7, 1000001);
}

static void pb_unknown_hints_field(struct wire *w)
{
    pb_hints(w, fill_unknown);
}

static void pb_bad_risk(struct wire *w)
{
    pb_hints(w, fill_risk);
}

static void pb_nan_cost(struct wire *w)
{
    pb_hints(w, fill_nan_cost);
}

static void pb_many_tokens(struct wire *w)
{
    pb_hints(w, fill_tokens);
}

static void pb_schema_array(struct wire *w)
{
    pb_base_task(w);
    w_str(w, 7, "[1]");
}

static void pb_schema_not_json(struct wire *w)
{
    pb_base_task(w);
    w_str(w, 7, "{type: object}");
}

static void pb_schema_deep(struct wire *w)
{
    pb_base_task(w);
    w_str(w, 7, "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{}}}}}}");
}

static void pb_message(struct wire *w, const char *role, const char *content)
{
    struct wire sub = {.len = 0};

    if (role) {
        w_str(&sub, 1, role);
    }
    w_str(&sub, 2, content);
    w_msg(w, 5, &sub);
}

static void pb_many_messages(struct wire *w)
{
    pb_base_task(w);
    for (int i = 0; i < 3; i++) {
        pb_message(w, "user", "a");
    }
}

static void pb_no_role(struct wire *w)
{
    pb_base_task(w);
    pb_message(w, NULL, "a");
}

static void pb_metadata_twice(struct wire *w)
{
    struct wire entry = {.len = 0};

    pb_base_task(w);
    w_str(&entry, 1, "a");
    w_str(&entry, 2, "1");
    w_msg(w, 10, &entry);
    w_msg(w, 10, &entry);
}

static void pb_result_bad_status(struct wire *w)
{
    w_str(w, 1, "t-1");
    w_str(w, 4, "done");
}

static void pb_result_infinite_cost(struct wire *w)
{
    w_str(w, 1, "t-1");
    w_str(w, 4, "ok");
    w_double(w, 10, INFINITY);
}

static void pb_escalation_no_hop(struct wire *w)
{
    w_str(w, 1, "t-1");
    w_str(w, 2, "local");
}

/* Task field 3 and Escalation field 8: tenant. */
static void pb_task_bad_tenant(struct wire *w)
{
    pb_base_task(w);
    w_str(w, 3, "acme:res");
}

static void pb_task_empty_tenant(struct wire *w)
{
    pb_base_task(w);
    w_str(w, 3, "");
}

static void pb_result_bad_tenant(struct wire *w)
{
    w_str(w, 1, "t-1");
    w_str(w, 3, "a/b");
    w_str(w, 4, "ok");
}

static void pb_escalation_bad_tenant(struct wire *w)
{
    w_str(w, 1, "t-1");
    w_str(w, 2, "local");
    w_uint(w, 3, 0);
    w_str(w, 8, "a b");
}

/* NUL bytes inside protobuf strings, which protobuf-c's C strings would
 * cut: at the top, in a nested message, in a map entry. */
static void pb_task_nul_in_id(struct wire *w)
{
    w_bytes(w, 1, "b\0evil", 6);
    w_str(w, 2, "x");
    w_str(w, 4, "hi");
}

static void fill_nul_tier(struct wire *w)
{
    w_bytes(w, 1, "local\0x", 7);
}

static void pb_task_nul_in_hints(struct wire *w)
{
    pb_hints(w, fill_nul_tier);
}

static void pb_task_nul_in_metadata(struct wire *w)
{
    struct wire entry = {.len = 0};

    pb_base_task(w);
    w_str(&entry, 1, "k");
    w_bytes(&entry, 2, "v\0w", 3);
    w_msg(w, 10, &entry);
}

static void pb_escalation_nul_in_reason(struct wire *w)
{
    w_str(w, 1, "t-1");
    w_str(w, 2, "local");
    w_uint(w, 3, 0);
    w_bytes(w, 4, "low\0", 4);
}

static const struct CMUnitTest pb_rejects[] = {
    PB_CASE(pb_task_decode_reports_garbage_as_decode,
            TASK,
            pb_garbage,
            KS_ERR_INVALID,
            "decode",
            "not a protobuf Task"),
    PB_INVALID(
        pb_task_decode_names_missing_id, TASK, pb_no_id, "field 'id': missing"),
    PB_CASE(pb_task_decode_refuses_long_id,
            TASK,
            pb_long_id,
            KS_ERR_TOO_LARGE,
            "too_large",
            "field 'id': 17 bytes, cap 16"),
    PB_INVALID(pb_task_decode_rejects_unknown_field,
               TASK,
               pb_unknown_field,
               "field '#99': unknown"),
    PB_INVALID(pb_task_decode_rejects_unknown_hints_field,
               TASK,
               pb_unknown_hints_field,
               "field 'hints.#12': unknown"),
    PB_INVALID(pb_task_decode_rejects_unknown_risk,
               TASK,
               pb_bad_risk,
               "field 'hints.risk': must be \"low\" or \"high\""),
    PB_INVALID(pb_task_decode_rejects_nan_max_cost,
               TASK,
               pb_nan_cost,
               "field 'hints.max_cost_usd': must be a finite number"),
    PB_INVALID(pb_task_decode_rejects_max_output_tokens_over_a_million,
               TASK,
               pb_many_tokens,
               "field 'hints.max_output_tokens'"),
    PB_INVALID(pb_task_decode_rejects_output_schema_that_is_not_an_object,
               TASK,
               pb_schema_array,
               "field 'output_schema': must be an object"),
    PB_INVALID(pb_task_decode_rejects_output_schema_that_is_not_json,
               TASK,
               pb_schema_not_json,
               "field 'output_schema': not JSON"),
    PB_CASE(pb_task_decode_refuses_deep_output_schema,
            TASK,
            pb_schema_deep,
            KS_ERR_TOO_LARGE,
            "too_large",
            "field 'output_schema': JSON nested"),
    PB_CASE(pb_task_decode_refuses_too_many_messages,
            TASK,
            pb_many_messages,
            KS_ERR_TOO_LARGE,
            "too_large",
            "field 'messages': 3 entries"),
    PB_INVALID(pb_task_decode_names_missing_role,
               TASK,
               pb_no_role,
               "field 'messages[0].role': missing"),
    PB_INVALID(pb_task_decode_rejects_duplicate_metadata_key,
               TASK,
               pb_metadata_twice,
               "field 'metadata.a': duplicate key"),
    PB_INVALID(pb_result_decode_rejects_unknown_status,
               RESULT,
               pb_result_bad_status,
               "field 'status': must be one of"),
    PB_INVALID(pb_result_decode_rejects_infinite_cost,
               RESULT,
               pb_result_infinite_cost,
               "field 'cost_usd': must be a finite"),
    PB_INVALID(pb_escalation_decode_names_missing_hop,
               ESCALATION,
               pb_escalation_no_hop,
               "field 'hop': missing"),
    PB_INVALID(pb_task_decode_rejects_a_colon_in_tenant,
               TASK,
               pb_task_bad_tenant,
               "field 'tenant': byte 0x3A at offset 4"),
    PB_INVALID(pb_task_decode_rejects_empty_tenant,
               TASK,
               pb_task_empty_tenant,
               "field 'tenant': must not be empty"),
    PB_INVALID(pb_result_decode_rejects_a_slash_in_tenant,
               RESULT,
               pb_result_bad_tenant,
               "field 'tenant': byte 0x2F at offset 1"),
    PB_INVALID(pb_escalation_decode_rejects_a_space_in_tenant,
               ESCALATION,
               pb_escalation_bad_tenant,
               "field 'tenant': byte 0x20 at offset 1"),
    PB_INVALID(pb_task_decode_rejects_a_nul_byte_in_a_string,
               TASK,
               pb_task_nul_in_id,
               "a string holds a NUL byte"),
    PB_INVALID(pb_task_decode_rejects_a_nul_byte_in_a_hint,
               TASK,
               pb_task_nul_in_hints,
               "a string holds a NUL byte"),
    PB_INVALID(pb_task_decode_rejects_a_nul_byte_in_metadata,
               TASK,
               pb_task_nul_in_metadata,
               "a string holds a NUL byte"),
    PB_INVALID(pb_escalation_decode_rejects_a_nul_byte_in_a_string,
               ESCALATION,
               pb_escalation_nul_in_reason,
               "a string holds a NUL byte"),
};

int main(void)
{
    int failed =
        cmocka_run_group_tests_name("pb_rejects", pb_rejects, NULL, NULL);

    return failed ? 1 : 0;
}
