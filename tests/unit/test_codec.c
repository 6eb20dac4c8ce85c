/*
 * test_codec.c - the envelope codec: format detection, strict decoding of
 * both formats (every refusal names its field and DLQ code), encoding, and
 * round trips JSON -> memory -> protobuf -> memory that must lose nothing.
 *
 * JSON fixtures are written with ' for " to stay readable. Protobuf inputs
 * are built byte by byte with a small wire writer, so the tests do not
 * share the generated code with what they test. Refusal cases run from
 * tables, one named cmocka test per case, against tight limits.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "base/util.h"
#include "wire/codec.h"

#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Small caps, so refusals fit in a readable line. */
static const struct ks_codec_limits tight = {
    .max_message_bytes = 4096,
    .max_id_bytes = 16,
    .max_text_bytes = 64,
    .max_messages = 2,
    .max_metadata = 2,
    .max_path = 2,
    .max_depth = 6,
};

/* JSON text from a readable literal: ' stands for ". Caller frees. */
static char *json_text(const char *readable)
{
    char *s = strdup(readable);

    for (char *p = s; *p; p++) {
        *p = *p == '\'' ? '"' : *p;
    }
    return s;
}

static void assert_detail(const struct ks_codec_error *cerr,
                          const char *code,
                          const char *detail)
{
    assert_non_null(cerr->code);
    assert_string_equal(cerr->code, code);
    if (!strstr(cerr->detail, detail)) {
        fail_msg("detail \"%s\" lacks \"%s\"", cerr->detail, detail);
    }
}

static void assert_same_str(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
    } else {
        assert_string_equal(a, b);
    }
}

static void assert_same_double(double a, double b)
{
    if (a != b) {
        fail_msg("%.17g != %.17g", a, b);
    }
}

/* ---- protobuf wire writer ---- */

struct wire {
    uint8_t buf[8192];
    size_t len;
};

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

/* ---- refusal tables ---- */

enum kind {
    TASK,
    RESULT,
    ESCALATION,
};

struct reject_case {
    enum kind kind;
    const char *json;             /* readable JSON, or NULL */
    void (*build)(struct wire *); /* protobuf bytes, when json is NULL */
    enum ks_err err;
    const char *code;
    const char *detail; /* must occur in cerr.detail */
};

/* Decodes with the tight limits; returns the error, checks *out is NULL. */
static enum ks_err decode_kind(enum kind kind,
                               enum ks_format fmt,
                               const void *buf,
                               size_t len,
                               const struct ks_codec_limits *lim,
                               struct ks_codec_error *cerr)
{
    struct ks_task *task = (void *)1;
    struct ks_result *result = (void *)1;
    struct ks_escalation *esc = (void *)1;
    enum ks_err err;

    if (kind == TASK) {
        err = ks_task_decode(fmt, buf, len, lim, &task, cerr);
        assert_true(err == KS_OK || task == NULL);
        ks_task_destroy(task);
    } else if (kind == RESULT) {
        err = ks_result_decode(fmt, buf, len, lim, &result, cerr);
        assert_true(err == KS_OK || result == NULL);
        ks_result_destroy(result);
    } else {
        err = ks_escalation_decode(fmt, buf, len, lim, &esc, cerr);
        assert_true(err == KS_OK || esc == NULL);
        ks_escalation_destroy(esc);
    }
    return err;
}

static void run_reject(void **state)
{
    const struct reject_case *rc = *state;
    struct ks_codec_error cerr;
    struct wire w = {.len = 0};
    enum ks_err err;
    char *text;

    if (rc->json) {
        text = json_text(rc->json);
        err = decode_kind(rc->kind, KS_FORMAT_JSON, text, strlen(text), &tight,
                          &cerr);
        free(text);
    } else {
        rc->build(&w);
        err = decode_kind(rc->kind, KS_FORMAT_PROTOBUF, w.buf, w.len, &tight,
                          &cerr);
    }
    assert_int_equal(err, rc->err);
    assert_detail(&cerr, rc->code, rc->detail);
}

#define CASE(name_, kind_, json_, err_, code_, detail_)                        \
    {                                                                          \
#name_, run_reject, NULL, NULL,                                        \
            &(struct reject_case){kind_, json_, NULL, err_, code_, detail_ },  \
    }
#define INVALID(name_, kind_, json_, detail_)                                  \
    CASE(name_, kind_, json_, KS_ERR_INVALID, "invalid", detail_)
#define TOO_LARGE(name_, kind_, json_, detail_)                                \
    CASE(name_, kind_, json_, KS_ERR_TOO_LARGE, "too_large", detail_)
#define PB_CASE(name_, kind_, build_, err_, code_, detail_)                    \
    {                                                                          \
#name_, run_reject, NULL, NULL,                                        \
            &(struct reject_case){kind_, NULL, build_, err_, code_, detail_ }, \
    }
#define PB_INVALID(name_, kind_, build_, detail_)                              \
    PB_CASE(name_, kind_, build_, KS_ERR_INVALID, "invalid", detail_)

#define T "{'id':'t-1','type':'x','input':'hi',"
#define R "{'id':'t-1','status':'ok',"
#define E "{'id':'t-1','from_tier':'local','hop':1,"

static const struct CMUnitTest json_rejects[] = {
    CASE(task_decode_reports_unparseable_json_as_decode,
         TASK,
         "{'id':",
         KS_ERR_INVALID,
         "decode",
         "not JSON"),
    CASE(task_decode_reports_trailing_bytes_as_decode,
         TASK,
         "{'id':'t-1','type':'x','input':'hi'} x",
         KS_ERR_INVALID,
         "decode",
         "not JSON"),
    INVALID(task_decode_rejects_a_non_object_envelope,
            TASK,
            "['t-1']",
            "must be a JSON object"),
    /* cJSON read a \u escape with a non-hex digit as U+0000 and cut the
     * string there: "a\u00zzb" became "a", accepted. */
    CASE(task_decode_refuses_a_u_escape_with_a_non_hex_digit,
         TASK,
         T "'instructions':'a\\u00zzb'}",
         KS_ERR_INVALID,
         "decode",
         "not JSON: syntax error at byte 53"),
    CASE(task_decode_names_the_byte_of_a_syntax_error,
         TASK,
         T "'hints':{'risk' 'low'}}",
         KS_ERR_INVALID,
         "decode",
         "not JSON: syntax error at byte 52"),
    TOO_LARGE(task_decode_refuses_deep_nesting_before_a_syntax_error,
              TASK,
              "{'id': [[[[[[[[ x",
              "nested deeper than 6"),
    TOO_LARGE(task_decode_refuses_deep_nesting,
              TASK,
              T "'output_schema':{'a':{'b':{'c':{'d':{'e':{}}}}}}}",
              "nested deeper than 6"),
    INVALID(task_decode_rejects_unknown_field,
            TASK,
            T "'colour':'red'}",
            "field 'colour': unknown"),
    INVALID(task_decode_rejects_a_field_given_twice,
            TASK,
            T "'id':'t-2'}",
            "field 'id': given twice"),
    INVALID(task_decode_rejects_unknown_hints_field,
            TASK,
            T "'hints':{'speed':1}}",
            "field 'hints.speed': unknown"),
    INVALID(task_decode_rejects_unknown_message_field,
            TASK,
            T "'messages':[{'role':'user','content':'a','name':'b'}]}",
            "field 'messages[0].name': unknown"),
    INVALID(task_decode_names_missing_id,
            TASK,
            "{'type':'x','input':'hi'}",
            "field 'id': missing"),
    INVALID(task_decode_names_missing_type,
            TASK,
            "{'id':'t-1','input':'hi'}",
            "field 'type': missing"),
    INVALID(task_decode_rejects_empty_id,
            TASK,
            "{'id':'','type':'x','input':'hi'}",
            "field 'id': must not be empty"),
    INVALID(task_decode_rejects_empty_type,
            TASK,
            "{'id':'t-1','type':'','input':'hi'}",
            "field 'type': must not be empty"),
    INVALID(task_decode_rejects_a_number_for_id,
            TASK,
            "{'id':42,'type':'x','input':'hi'}",
            "field 'id': must be a string"),
    INVALID(task_decode_requires_input_or_messages,
            TASK,
            "{'id':'t-1','type':'x','messages':[]}",
            "field 'input': missing"),
    INVALID(task_decode_rejects_messages_that_are_not_an_array,
            TASK,
            T "'messages':'hi'}",
            "field 'messages': must be an array"),
    INVALID(task_decode_rejects_a_message_that_is_not_an_object,
            TASK,
            T "'messages':['hi']}",
            "field 'messages[0]': must be an object"),
    INVALID(task_decode_names_missing_role,
            TASK,
            T "'messages':[{'content':'a'}]}",
            "field 'messages[0].role': missing"),
    INVALID(task_decode_names_missing_content,
            TASK,
            T "'messages':[{'role':'user'}]}",
            "field 'messages[0].content': missing"),
    INVALID(task_decode_rejects_unknown_role,
            TASK,
            T "'messages':[{'role':'user','content':'a'},"
              "{'role':'robot','content':'b'}]}",
            "field 'messages[1].role': must be \"system\", \"user\" or "
            "\"assistant\""),
    INVALID(task_decode_rejects_non_string_content,
            TASK,
            T "'messages':[{'role':'user','content':5}]}",
            "field 'messages[0].content': must be a string"),
    TOO_LARGE(task_decode_refuses_long_id,
              TASK,
              "{'id':'t-0123456789abcde','type':'x','input':'hi'}",
              "field 'id': 17 bytes, cap 16"),
    TOO_LARGE(task_decode_refuses_long_type,
              TASK,
              "{'id':'t-1','type':'x0123456789abcdef','input':'hi'}",
              "field 'type': 17 bytes, cap 16"),
    TOO_LARGE(task_decode_refuses_long_tenant,
              TASK,
              T "'tenant':'acme-0123456789ab'}",
              "field 'tenant': 17 bytes"),
    TOO_LARGE(task_decode_refuses_long_tier_name,
              TASK,
              T "'hints':{'min_tier':'local-0123456789a'}}",
              "field 'hints.min_tier': 17 bytes"),
    TOO_LARGE(task_decode_refuses_long_input,
              TASK,
              "{'id':'t-1','type':'x','input':'0123456789012345678901234567"
              "89012345678901234567890123456789abcde'}",
              "field 'input': 65 bytes, cap 64"),
    TOO_LARGE(task_decode_refuses_long_message_content,
              TASK,
              T "'messages':[{'role':'user','content':'01234567890123456789"
                "012345678901234567890123456789012345678901234'}]}",
              "field 'messages[0].content': 65 bytes"),
    TOO_LARGE(task_decode_refuses_too_many_messages,
              TASK,
              T "'messages':[{'role':'user','content':'a'},"
                "{'role':'user','content':'b'},{'role':'user','content':'c'}]}",
              "field 'messages': 3 entries, cap 2"),
    TOO_LARGE(task_decode_refuses_too_many_metadata_entries,
              TASK,
              T "'metadata':{'a':'1','b':'2','c':'3'}}",
              "field 'metadata': 3 entries, cap 2"),
    INVALID(task_decode_rejects_non_string_metadata_value,
            TASK,
            T "'metadata':{'a':1}}",
            "field 'metadata.a': must be a string"),
    INVALID(task_decode_rejects_duplicate_metadata_key,
            TASK,
            T "'metadata':{'a':'1','a':'2'}}",
            "field 'metadata.a': duplicate key"),
    INVALID(task_decode_rejects_metadata_that_is_not_an_object,
            TASK,
            T "'metadata':['a']}",
            "field 'metadata': must be an object"),
    CASE(task_decode_rejects_unknown_risk,
         TASK,
         T "'hints':{'risk':'medium'}}",
         KS_ERR_INVALID,
         "invalid",
         "field 'hints.risk': must be \"low\" or \"high\""),
    INVALID(task_decode_rejects_unknown_latency,
            TASK,
            T "'hints':{'latency':'soon'}}",
            "field 'hints.latency': must be \"batch\" or \"interactive\""),
    INVALID(task_decode_rejects_a_number_for_risk,
            TASK,
            T "'hints':{'risk':1}}",
            "field 'hints.risk': must be a string"),
    INVALID(task_decode_rejects_negative_max_cost,
            TASK,
            T "'hints':{'max_cost_usd':-0.01}}",
            "field 'hints.max_cost_usd': must not be negative"),
    INVALID(task_decode_rejects_infinite_max_cost,
            TASK,
            T "'hints':{'max_cost_usd':1e999}}",
            "field 'hints.max_cost_usd': must be a finite number"),
    INVALID(task_decode_rejects_max_cost_given_as_string,
            TASK,
            T "'hints':{'max_cost_usd':'0.05'}}",
            "field 'hints.max_cost_usd': must be a number"),
    INVALID(task_decode_rejects_fractional_max_output_tokens,
            TASK,
            T "'hints':{'max_output_tokens':1.5}}",
            "field 'hints.max_output_tokens': must be an integer from 0 to "
            "1000000"),
    INVALID(task_decode_rejects_negative_max_output_tokens,
            TASK,
            T "'hints':{'max_output_tokens':-1}}",
            "field 'hints.max_output_tokens'"),
    INVALID(task_decode_rejects_max_output_tokens_over_a_million,
            TASK,
            T "'hints':{'max_output_tokens':1000001}}",
            "field 'hints.max_output_tokens'"),
    INVALID(task_decode_rejects_non_boolean_local_only,
            TASK,
            T "'hints':{'local_only':'yes'}}",
            "field 'hints.local_only': must be true or false"),
    INVALID(task_decode_rejects_hints_that_are_not_an_object,
            TASK,
            T "'hints':[]}",
            "field 'hints': must be an object"),
    INVALID(task_decode_rejects_output_schema_that_is_not_an_object,
            TASK,
            T "'output_schema':'{}'}",
            "field 'output_schema': must be an object"),
    INVALID(task_decode_rejects_nul_inside_a_string,
            TASK,
            "{'id':'t-1','type':'x','input':'a\\u0000b'}",
            "\\u0000"),
    INVALID(result_decode_names_missing_id,
            RESULT,
            "{'status':'ok'}",
            "field 'id': missing"),
    INVALID(result_decode_names_missing_status,
            RESULT,
            "{'id':'t-1'}",
            "field 'status': missing"),
    INVALID(result_decode_rejects_unknown_status,
            RESULT,
            "{'id':'t-1','status':'done'}",
            "field 'status': must be one of ok, low_confidence"),
    INVALID(result_decode_rejects_unknown_field,
            RESULT,
            R "'colour':1}",
            "field 'colour': unknown"),
    INVALID(result_decode_rejects_unknown_usage_field,
            RESULT,
            R "'usage':{'total':3}}",
            "field 'usage.total': unknown"),
    INVALID(result_decode_rejects_fractional_token_count,
            RESULT,
            R "'usage':{'input_tokens':1.5}}",
            "field 'usage.input_tokens': must be an integer"),
    INVALID(result_decode_rejects_negative_latency,
            RESULT,
            R "'latency_ms':-1}",
            "field 'latency_ms': must be an integer"),
    INVALID(result_decode_rejects_unknown_path_field,
            RESULT,
            R "'path':[{'tier':'local','colour':1}]}",
            "field 'path[0].colour': unknown"),
    INVALID(result_decode_rejects_path_that_is_not_an_array,
            RESULT,
            R "'path':{}}",
            "field 'path': must be an array"),
    TOO_LARGE(result_decode_refuses_too_many_path_entries,
              RESULT,
              R "'path':[{},{},{}]}",
              "field 'path': 3 entries, cap 2"),
    INVALID(result_decode_rejects_negative_cost,
            RESULT,
            R "'cost_usd':-1}",
            "field 'cost_usd': must not be negative"),
    INVALID(result_decode_rejects_negative_path_cost,
            RESULT,
            R "'path':[{'cost_usd':-0.5}]}",
            "field 'path[0].cost_usd': must not be negative"),
    INVALID(result_decode_rejects_confidence_above_one,
            RESULT,
            R "'confidence':1.5}",
            "field 'confidence': must be a number from 0"),
    INVALID(result_decode_rejects_unknown_confidence_source,
            RESULT,
            R "'confidence_source':'vibes'}",
            "field 'confidence_source': must be one of"),
    INVALID(result_decode_rejects_non_string_output,
            RESULT,
            R "'output':{'label':'x'}}",
            "field 'output': must be a string"),
    TOO_LARGE(result_decode_refuses_long_output,
              RESULT,
              R "'output':'01234567890123456789012345678901234567890123456789"
                "0123456789abcde'}",
              "field 'output': 65 bytes"),
    INVALID(escalation_decode_names_missing_id,
            ESCALATION,
            "{'from_tier':'local','hop':1}",
            "field 'id': missing"),
    INVALID(escalation_decode_names_missing_from_tier,
            ESCALATION,
            "{'id':'t-1','hop':1}",
            "field 'from_tier': missing"),
    INVALID(escalation_decode_names_missing_hop,
            ESCALATION,
            "{'id':'t-1','from_tier':'local'}",
            "field 'hop': missing"),
    INVALID(escalation_decode_rejects_negative_hop,
            ESCALATION,
            "{'id':'t-1','from_tier':'local','hop':-1}",
            "field 'hop': must be an integer from 0 to 4294967295"),
    INVALID(escalation_decode_rejects_unknown_field,
            ESCALATION,
            E "'colour':1}",
            "field 'colour': unknown"),
    INVALID(escalation_decode_rejects_negative_cost_so_far,
            ESCALATION,
            E "'cost_so_far_usd':-1}",
            "field 'cost_so_far_usd': must not be negative"),
    /* Tenants: 1-128 bytes of [A-Za-z0-9._-], a letter or digit first
     * (docs/design.md section 4), so a tenant can never spell another
     * key's name or the "-" that stands for no tenant in a key. */
    INVALID(task_decode_rejects_empty_tenant,
            TASK,
            T "'tenant':''}",
            "field 'tenant': must not be empty"),
    INVALID(task_decode_rejects_a_colon_in_tenant,
            TASK,
            T "'tenant':'acme:res'}",
            "field 'tenant': byte 0x3A at offset 4 is not one of "
            "[A-Za-z0-9._-]"),
    INVALID(task_decode_rejects_a_space_in_tenant,
            TASK,
            T "'tenant':'ac me'}",
            "field 'tenant': byte 0x20 at offset 2"),
    INVALID(task_decode_rejects_a_brace_in_tenant,
            TASK,
            T "'tenant':'{acme}'}",
            "field 'tenant': byte 0x7B at offset 0"),
    INVALID(task_decode_rejects_non_ascii_tenant,
            TASK,
            T "'tenant':'t\u00ebn'}",
            "field 'tenant': byte 0xC3 at offset 1"),
    INVALID(task_decode_rejects_a_tenant_starting_with_a_dash,
            TASK,
            T "'tenant':'-'}",
            "field 'tenant': must start with a letter or digit"),
    INVALID(task_decode_rejects_a_tenant_starting_with_a_dot,
            TASK,
            T "'tenant':'..'}",
            "field 'tenant': must start with a letter or digit"),
    INVALID(task_decode_rejects_a_number_for_tenant,
            TASK,
            T "'tenant':7}",
            "field 'tenant': must be a string"),
    INVALID(result_decode_rejects_a_colon_in_tenant,
            RESULT,
            R "'tenant':'acme:res'}",
            "field 'tenant': byte 0x3A at offset 4"),
    INVALID(escalation_decode_rejects_a_colon_in_tenant,
            ESCALATION,
            E "'tenant':'acme:res'}",
            "field 'tenant': byte 0x3A at offset 4"),
    INVALID(escalation_decode_rejects_empty_tenant,
            ESCALATION,
            E "'tenant':''}",
            "field 'tenant': must not be empty"),
};

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

/* ---- fixtures and comparisons ---- */

static const char full_task[] =
    "{'id':'t-42','type':'classify_intent','tenant':'acme',"
    "'input':'I was charged twice',"
    "'messages':[{'role':'system','content':'be brief'},"
    "{'role':'user','content':'line\\nbreak \\u00e9'}],"
    "'instructions':'answer with one label',"
    "'output_schema':{ 'type' : 'object', 'required' : ['label'] },"
    "'hints':{'min_tier':'local','max_tier':'frontier','local_only':true,"
    "'risk':'high','latency':'interactive','max_cost_usd':0.05,"
    "'max_output_tokens':512},"
    "'reply_to':'acme.results','metadata':{'trace':'abc','team':'billing'}}";

static const char full_result[] =
    "{'id':'t-42','type':'classify_intent','tenant':'acme',"
    "'status':'low_confidence','output':'billing','tier':'local',"
    "'model':'smollm2-135m','confidence':0.93,'confidence_source':'logprob',"
    "'cost_usd':0.000012,'usage':{'input_tokens':41,'output_tokens':3},"
    "'latency_ms':182,"
    "'path':[{'tier':'local','model':'smollm2-135m','confidence':0.41,"
    "'decision':'escalate','reason':'low_confidence','cost_usd':0.00001,"
    "'latency_ms':120},"
    "{'tier':'frontier','model':'big','confidence':null,'decision':'answer',"
    "'reason':null,'cost_usd':0.002,'latency_ms':900}],"
    "'error':null,'metadata':{'trace':'abc'}}";

static const char full_escalation[] =
    "{'id':'t-42','tenant':'acme','from_tier':'local','hop':1,"
    "'reason':'low_confidence','confidence':0.41,"
    "'context_key':'ctx:acme:t-42','cost_so_far_usd':0.00001}";

static struct ks_task *task_from(const char *readable)
{
    char *text = json_text(readable);
    struct ks_codec_error cerr;
    struct ks_task *task;

    if (ks_task_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &task,
                       &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(text);
    return task;
}

static struct ks_result *result_from(const char *readable)
{
    char *text = json_text(readable);
    struct ks_codec_error cerr;
    struct ks_result *result;

    if (ks_result_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &result,
                         &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(text);
    return result;
}

static struct ks_escalation *escalation_from(const char *readable)
{
    char *text = json_text(readable);
    struct ks_codec_error cerr;
    struct ks_escalation *esc;

    if (ks_escalation_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &esc,
                             &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(text);
    return esc;
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
    int failed = 0;

    failed += cmocka_run_group_tests_name("codec", tests, NULL, NULL);
    failed +=
        cmocka_run_group_tests_name("json_rejects", json_rejects, NULL, NULL);
    failed += cmocka_run_group_tests_name("pb_rejects", pb_rejects, NULL, NULL);
    return failed ? 1 : 0;
}
