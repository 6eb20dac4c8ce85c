/*
 * test_answer.c - the confidence of an answer and the output_schema check:
 * an "escalate": true answer scores 0; with a schema, a non-JSON answer or
 * one that fails the schema scores 0 (source schema); a reported
 * confidence is taken as is; else logprobs give exp(mean); else no signal.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llm/answer.h"
#include "wire/schema.h"

#include "base/banned.h"

static void judge(const char *schema,
                  const char *content,
                  bool logprobs,
                  struct ks_answer *a)
{
    struct ks_task task = {
        .id = "t", .type = "x", .input = "q", .output_schema = (char *)schema};
    struct ks_model_reply reply = {.content = (char *)content,
                                   .has_logprobs = logprobs,
                                   .mean_logprob = -0.5};

    ks_answer_judge(&task, &reply, a);
}

static void answer_escalate_flag_scores_zero(void **state)
{
    struct ks_answer a;

    (void)state;
    judge(NULL, "  {\"escalate\": true} ", true, &a);
    assert_true(a.confidence == 0);
    assert_string_equal(a.reason, "escalate_flag");
    ks_answer_fini(&a);
}

static void answer_self_report_wins_over_logprobs(void **state)
{
    struct ks_answer a;

    (void)state;
    judge(NULL, "{\"answer\": \"billing\", \"confidence\": 0.8}", true, &a);
    assert_true(fabs(a.confidence - 0.8) < 1e-12);
    assert_string_equal(a.source, "self_report");
    assert_string_equal(a.output, "billing"); /* the answer field */
    ks_answer_fini(&a);
}

static void answer_logprobs_give_mean_token_probability(void **state)
{
    struct ks_answer a;

    (void)state;
    judge(NULL, "plain text", true, &a);
    assert_true(fabs(a.confidence - exp(-0.5)) < 1e-12);
    assert_string_equal(a.source, "logprob");
    assert_string_equal(a.output, "plain text");
    ks_answer_fini(&a);
}

static void answer_without_signal_has_none(void **state)
{
    struct ks_answer a;

    (void)state;
    judge(NULL, "plain text", false, &a);
    assert_true(a.confidence < 0);
    assert_null(a.source);
    ks_answer_fini(&a);
}

static void answer_not_json_under_a_schema_scores_zero(void **state)
{
    struct ks_answer a;

    (void)state;
    judge("{\"type\":\"object\"}", "billing", true, &a);
    assert_true(a.confidence == 0);
    assert_string_equal(a.source, "schema");
    assert_string_equal(a.reason, "not_json");
    ks_answer_fini(&a);
}

static void answer_failing_the_schema_scores_zero(void **state)
{
    struct ks_answer a;

    (void)state;
    judge("{\"type\":\"object\",\"required\":[\"label\"]}",
          "{\"answer\": \"x\", \"confidence\": 0.9}", true, &a);
    assert_true(a.confidence == 0);
    assert_string_equal(a.reason, "schema");
    ks_answer_fini(&a);
}

static void answer_passing_the_schema_keeps_the_fenced_json(void **state)
{
    struct ks_answer a;

    (void)state;
    judge("{\"type\":\"object\",\"required\":[\"label\"]}",
          "```json\n{\"label\": \"refund\", \"confidence\": 0.7}\n```", false,
          &a);
    assert_true(fabs(a.confidence - 0.7) < 1e-12);
    assert_string_equal(a.output,
                        "{\"label\": \"refund\", \"confidence\": 0.7}");
    ks_answer_fini(&a);
}

static int schema_of(const char *schema, const char *value, char *why)
{
    cJSON *s = cJSON_Parse(schema), *v = cJSON_Parse(value);
    int rc = ks_schema_check(s, v, why, 256);

    cJSON_Delete(s);
    cJSON_Delete(v);
    return rc;
}

static void schema_checks_types_enums_bounds_and_nesting(void **state)
{
    static const struct {
        const char *schema, *value;
        int rc;
        const char *why;
    } cases[] = {
        {"{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}", "\"a\"", 0, ""},
        {"{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}", "\"c\"", -1, "enum"},
        {"{\"type\":[\"integer\",\"null\"]}", "null", 0, ""},
        {"{\"type\":\"integer\"}", "1.5", -1, "wrong type"},
        {"{\"type\":\"number\",\"minimum\":0,\"maximum\":1}", "2", -1,
         "maximum"},
        {"{\"type\":\"string\",\"maxLength\":2}", "\"abc\"", -1, "maxLength"},
        {"{\"properties\":{\"a\":{\"type\":\"array\",\"items\":{\"type\":"
         "\"string\"}}}}",
         "{\"a\":[\"x\",3]}", -1, "$.a[1]"},
        {"{\"additionalProperties\":false,\"properties\":{\"a\":{}}}",
         "{\"a\":1,\"b\":2}", -1, "$.b: not allowed"},
        {"{\"required\":[\"a\"]}", "{}", -1, "missing required 'a'"},
    };
    char why[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        assert_int_equal(schema_of(cases[i].schema, cases[i].value, why),
                         cases[i].rc);
        assert_non_null(strstr(why, cases[i].why));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answer_escalate_flag_scores_zero),
        cmocka_unit_test(answer_self_report_wins_over_logprobs),
        cmocka_unit_test(answer_logprobs_give_mean_token_probability),
        cmocka_unit_test(answer_without_signal_has_none),
        cmocka_unit_test(answer_not_json_under_a_schema_scores_zero),
        cmocka_unit_test(answer_failing_the_schema_scores_zero),
        cmocka_unit_test(answer_passing_the_schema_keeps_the_fenced_json),
        cmocka_unit_test(schema_checks_types_enums_bounds_and_nesting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
