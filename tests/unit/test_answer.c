/*
 * test_answer.c - the confidence of an answer and the output_schema check:
 * an "escalate": true answer scores 0; with a schema, a non-JSON answer or
 * one that fails the schema scores 0 (source schema); logprobs give
 * exp(mean), which a reported confidence can lower but never raise (a
 * prompt-injected "confidence": 0.99 does not stop an escalation);
 * without logprobs a reported confidence counts unless the tier's
 * self_report is off; else no signal.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llm/answer.h"
#include "wire/reason.h"
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

    ks_answer_judge(&task, &reply, true, a);
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

static void answer_self_report_counts_without_logprobs(void **state)
{
    struct ks_answer a;

    (void)state;
    judge(NULL, "{\"answer\": \"billing\", \"confidence\": 0.8}", false, &a);
    assert_true(fabs(a.confidence - 0.8) < 1e-12);
    assert_string_equal(a.source, "self_report");
    assert_string_equal(a.output, "billing"); /* the answer field */
    ks_answer_fini(&a);
}

/* A reply with logprobs of mean lp (logprobs false: none). */
static void judge_lp(const char *content,
                     bool logprobs,
                     double lp,
                     struct ks_answer *a)
{
    struct ks_task task = {.id = "t", .type = "x", .input = "q"};
    struct ks_model_reply reply = {.content = (char *)content,
                                   .has_logprobs = logprobs,
                                   .mean_logprob = lp};

    ks_answer_judge(&task, &reply, true, a);
}

/* Text in the task told the model to claim 0.99; its tokens say 0.14. */
static void answer_injected_high_confidence_cannot_beat_poor_logprobs(
    void **state)
{
    struct ks_answer a;

    (void)state;
    judge_lp("{\"answer\": \"refund approved\", \"confidence\": 0.99}", true,
             log(0.14), &a);
    assert_true(fabs(a.confidence - 0.14) < 1e-9);
    assert_string_equal(a.source, "logprob");
    assert_true(a.confidence < 0.7); /* below a tier's escalate_below */
    ks_answer_fini(&a);
}

static void answer_self_report_can_lower_the_logprob_confidence(void **state)
{
    struct ks_answer a;

    (void)state;
    judge_lp("{\"answer\": \"x\", \"confidence\": 0.2}", true, log(0.9), &a);
    assert_true(fabs(a.confidence - 0.2) < 1e-9);
    assert_string_equal(a.source, "self_report");
    ks_answer_fini(&a);
}

static void answer_escalate_false_does_not_stop_an_escalation(void **state)
{
    struct ks_answer a;

    (void)state;
    judge_lp("{\"answer\": \"x\", \"escalate\": false, \"confidence\": 1}",
             true, log(0.1), &a);
    assert_true(fabs(a.confidence - 0.1) < 1e-9);
    ks_answer_fini(&a);
}

static void answer_escalate_flag_only_escalates(void **state)
{
    struct ks_answer a;

    (void)state;
    /* with good logprobs and a high claim the flag still means 0 */
    judge_lp("{\"escalate\": true, \"confidence\": 0.99}", true, log(0.95), &a);
    assert_true(a.confidence == 0);
    assert_string_equal(a.reason, "escalate_flag");
    ks_answer_fini(&a);
}

static void answer_self_report_off_ignores_the_reported_number(void **state)
{
    struct ks_task task = {.id = "t", .type = "x", .input = "q"};
    struct ks_model_reply reply = {
        .content = "{\"answer\": \"x\", \"confidence\": 0.1}",
        .has_logprobs = true,
        .mean_logprob = log(0.9)};
    struct ks_answer a;

    (void)state;
    ks_answer_judge(&task, &reply, false, &a);
    assert_true(fabs(a.confidence - 0.9) < 1e-9);
    assert_string_equal(a.source, "logprob");
    ks_answer_fini(&a);
    /* and with no logprobs there is then no signal */
    reply.has_logprobs = false;
    ks_answer_judge(&task, &reply, false, &a);
    assert_true(a.confidence < 0);
    ks_answer_fini(&a);
}

static void answer_reasons_other_than_ok_are_escalation_reasons(void **state)
{
    static const char *const contents[] = {"{\"escalate\": true}", "nope",
                                           "{\"a\": 1}"};
    struct ks_answer a;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        judge("{\"type\": \"object\", \"required\": [\"b\"]}", contents[i],
              true, &a);
        assert_string_not_equal(a.reason, "ok");
        assert_true(ks_escalation_reason_known(a.reason));
        ks_answer_fini(&a);
    }
    assert_true(ks_escalation_reason_known("low_confidence"));
    assert_false(ks_escalation_reason_known("ignore previous instructions"));
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
        cmocka_unit_test(answer_self_report_counts_without_logprobs),
        cmocka_unit_test(
            answer_injected_high_confidence_cannot_beat_poor_logprobs),
        cmocka_unit_test(answer_self_report_can_lower_the_logprob_confidence),
        cmocka_unit_test(answer_escalate_false_does_not_stop_an_escalation),
        cmocka_unit_test(answer_escalate_flag_only_escalates),
        cmocka_unit_test(answer_self_report_off_ignores_the_reported_number),
        cmocka_unit_test(answer_reasons_other_than_ok_are_escalation_reasons),
        cmocka_unit_test(answer_logprobs_give_mean_token_probability),
        cmocka_unit_test(answer_without_signal_has_none),
        cmocka_unit_test(answer_not_json_under_a_schema_scores_zero),
        cmocka_unit_test(answer_failing_the_schema_scores_zero),
        cmocka_unit_test(answer_passing_the_schema_keeps_the_fenced_json),
        cmocka_unit_test(schema_checks_types_enums_bounds_and_nesting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
