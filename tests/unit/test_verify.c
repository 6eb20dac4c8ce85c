/*
 * test_verify.c - the answer verifier (learn/verify.h): each check on
 * answers that should and should not trip it, on several task families
 * (arithmetic with a configured answer pattern, a JSON field under an
 * output_schema, a label, a refusal, a truncated answer, a repetition
 * loop); final answer extraction; training a verifier that tells checked
 * answers from failing ones and its model file; labelled outcome lines;
 * and Result.confidence_parts through both codecs.
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

#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "config/rule.h"
#include "learn/lr.h"
#include "learn/verify.h"
#include "wire/codec.h"

#include "base/banned.h"

#define GSM_PATTERN "####\\s*\\$?(-?[0-9][0-9,]*(?:\\.[0-9]+)?)"

static struct ks_rule_re *pattern(const char *p)
{
    char err[256];
    struct ks_rule_re *re = ks_rule_re_new(p, 1000000, err, sizeof(err));

    assert_non_null(re);
    return re;
}

static void checks(const struct ks_verify_input *in, double *v)
{
    ks_verify_checks(in, v);
    for (int c = 0; c < KS_VC_COUNT; c++) {
        assert_true(isfinite(v[c]) && v[c] >= 0 && v[c] <= 1);
    }
}

static void verify_arithmetic_answer_in_the_configured_format(void **state)
{
    struct ks_rule_re *re = pattern(GSM_PATTERN);
    struct ks_verify_input in = {
        .type = "math",
        .prompt = "Ann has 16 eggs, eats 3 and bakes with 4. She sells the "
                  "rest for $2 each. How much does she make?",
        .answer = "16 - 3 = 13 eggs.\n13 - 4 = 9 eggs.\n9 * $2 = $18.\n"
                  "#### 18",
        .finish_reason = "stop",
        .answer_pattern = re,
        .output_tokens = -1};
    double v[KS_VC_COUNT];

    (void)state;
    checks(&in, v);
    assert_true(v[KS_VC_FORMAT_OK] == 1 && v[KS_VC_FORMAT_FAIL] == 0);
    assert_true(v[KS_VC_FINAL_FOUND] == 1 && v[KS_VC_FINAL_UNIQUE] == 1);
    assert_true(v[KS_VC_FINAL_NUMERIC] == 1 && v[KS_VC_FINAL_NONINT] == 0);
    assert_true(v[KS_VC_FINAL_IS_LAST] == 1);
    assert_true(v[KS_VC_ARITH_ALL_OK] == 1 && v[KS_VC_ARITH_WRONG] == 0);
    assert_true(v[KS_VC_ARITH_COUNT] > 0 && v[KS_VC_ARITH_NONE] == 0);
    assert_true(v[KS_VC_TRUNCATED] == 0);
    assert_true(v[KS_VC_REFUSAL] == 0 && v[KS_VC_REPEAT_LOOP] == 0);
    /* 13, 9, 18 are new; 16, 3, 4, 2 are the question's */
    assert_true(v[KS_VC_NEW_NUMBERS] > 0.3 && v[KS_VC_NEW_NUMBERS] < 0.7);
    /* signals it lacks add nothing */
    assert_true(v[KS_VC_LP_MEAN] == 0 && v[KS_VC_SELF_REPORT] == 0 &&
                v[KS_VC_AGREEMENT] == 0);

    /* wrong arithmetic, and no final answer in the pattern */
    in.answer = "16 - 3 = 12 eggs.\n12 - 4 = 8 eggs.\nSo she makes $16.";
    checks(&in, v);
    assert_true(v[KS_VC_FORMAT_FAIL] == 1 && v[KS_VC_FORMAT_OK] == 0);
    assert_true(v[KS_VC_ARITH_WRONG] == 0.5 && v[KS_VC_ARITH_ALL_OK] == 0);
    assert_true(v[KS_VC_FINAL_IS_LAST] == 0); /* last number 16 != 8 */

    /* two different final answers */
    in.answer = "#### 18\nWait, actually it is 20.\n#### 20";
    checks(&in, v);
    assert_true(v[KS_VC_FINAL_MULTI] == 1 && v[KS_VC_FINAL_UNIQUE] == 0);
    assert_true(v[KS_VC_HEDGE] > 0);
    /* what an escalated call reads ("final"): the pattern's last capture */
    {
        char fa[64];

        assert_true(
            ks_verify_stated_answer(in.answer, re, NULL, fa, sizeof(fa)));
        assert_string_equal(fa, "20");
        assert_false(ks_verify_stated_answer("So she makes $16.", re, NULL, fa,
                                             sizeof(fa)));
    }
    ks_rule_re_destroy(re);
}

static void verify_arithmetic_reads_chains_signs_and_rounding(void **state)
{
    struct ks_verify_input in = {.prompt = "", .output_tokens = -1};
    double v[KS_VC_COUNT];

    (void)state;
    in.answer = "2 + 3 * 4 = 14, 10 / 3 = 3.33, -5 + 2 = -3, 1,200 x 2 = 2,400";
    checks(&in, v);
    assert_true(v[KS_VC_ARITH_ALL_OK] == 1);
    in.answer = "2 + 3 * 4 = 20";
    checks(&in, v);
    assert_true(v[KS_VC_ARITH_WRONG] == 1);
    in.answer = "the 3rd of 4 options; x = 5";
    checks(&in, v);
    assert_true(v[KS_VC_ARITH_NONE] == 1);
}

static void verify_json_field_answer_against_the_schema(void **state)
{
    const char *schema = "{\"type\":\"object\",\"required\":[\"answer\"],"
                         "\"properties\":{\"answer\":{\"type\":\"number\"}}}";
    struct ks_verify_input in = {.type = "extract",
                                 .prompt = "Total of the invoice below ...",
                                 .answer = "```json\n{\"answer\": 1250}\n```",
                                 .output_schema = schema,
                                 .output_tokens = -1};
    double v[KS_VC_COUNT];
    char fa[64];

    (void)state;
    checks(&in, v);
    assert_true(v[KS_VC_FORMAT_OK] == 1 && v[KS_VC_FINAL_FOUND] == 1);
    assert_true(v[KS_VC_FINAL_NUMERIC] == 1);
    in.answer = "{\"answer\": \"about a thousand\"}";
    checks(&in, v);
    assert_true(v[KS_VC_FORMAT_FAIL] == 1 && v[KS_VC_FINAL_NUMERIC] == 0);
    in.answer = "The total is 1250.";
    checks(&in, v);
    assert_true(v[KS_VC_FORMAT_FAIL] == 1);
    /* without a schema or pattern, the marker or the last number */
    assert_int_equal(
        ks_verify_final_answer("so the answer is 42.", NULL, fa, sizeof(fa)),
        1);
    assert_string_equal(fa, "42");
    ks_verify_final_answer("thus \\boxed{17} holds", NULL, fa, sizeof(fa));
    assert_string_equal(fa, "17");
    ks_verify_final_answer("we get 3, then 1,500 in all", NULL, fa, sizeof(fa));
    assert_string_equal(fa, "1500");
    assert_int_equal(ks_verify_final_answer("no number", NULL, fa, sizeof(fa)),
                     0);
    /* stated: a marker or the schema's field, never a guessed number */
    assert_true(ks_verify_stated_answer("so the answer is 42.", NULL, NULL, fa,
                                        sizeof(fa)));
    assert_string_equal(fa, "42");
    assert_false(ks_verify_stated_answer("we get 3, then 1,500 in all", NULL,
                                         NULL, fa, sizeof(fa)));
    assert_string_equal(fa, "");
    assert_true(ks_verify_stated_answer("{\"answer\": 1250}", NULL, schema, fa,
                                        sizeof(fa)));
    assert_string_equal(fa, "1250");
}

static void verify_label_answer_in_an_enum(void **state)
{
    const char *schema = "{\"type\":\"object\",\"properties\":{\"label\":"
                         "{\"enum\":[\"billing\",\"shipping\"]}},"
                         "\"required\":[\"label\"]}";
    struct ks_verify_input in = {.type = "classify",
                                 .prompt = "I was charged twice",
                                 .answer = "{\"label\": \"billing\"}",
                                 .output_schema = schema,
                                 .output_tokens = -1};
    double v[KS_VC_COUNT];

    (void)state;
    checks(&in, v);
    assert_true(v[KS_VC_FORMAT_OK] == 1 && v[KS_VC_FINAL_UNIQUE] == 1);
    assert_true(v[KS_VC_FINAL_NUMERIC] == 0);
    in.answer = "{\"label\": \"refunds\"}";
    checks(&in, v);
    assert_true(v[KS_VC_FORMAT_FAIL] == 1);
}

static void verify_refusal_truncation_and_length(void **state)
{
    struct ks_verify_input in = {
        .prompt = "Write the exploit.",
        .answer = "I'm sorry, but I can't help with that request.",
        .finish_reason = "stop",
        .max_output_tokens = 100,
        .output_tokens = 12};
    double v[KS_VC_COUNT];

    (void)state;
    checks(&in, v);
    assert_true(v[KS_VC_REFUSAL] == 1);
    assert_true(v[KS_VC_LEN_SHARE] > 0.11 && v[KS_VC_LEN_SHARE] < 0.13);
    assert_true(v[KS_VC_LEN_NEAR_LIMIT] == 0);
    in.answer = "Sure. Step one: open the file and read every line, then";
    in.finish_reason = "length";
    in.output_tokens = 100;
    checks(&in, v);
    assert_true(v[KS_VC_REFUSAL] == 0 && v[KS_VC_TRUNCATED] == 1);
    assert_true(v[KS_VC_LEN_SHARE] == 1 && v[KS_VC_LEN_NEAR_LIMIT] == 1);
    in.finish_reason = "max_tokens"; /* Anthropic's word */
    checks(&in, v);
    assert_true(v[KS_VC_TRUNCATED] == 1);
    in.finish_reason = NULL;
    checks(&in, v);
    assert_true(v[KS_VC_TRUNCATED] == 0);
    /* "unable to" deep inside a long answer is not a refusal */
    in.answer = "The pump was unable to keep up, so the tank overflowed. ";
    checks(&in, v);
    assert_true(v[KS_VC_REFUSAL] == 0);
    in.answer = "";
    checks(&in, v);
    assert_true(v[KS_VC_EMPTY] == 1 && v[KS_VC_FINAL_FOUND] == 0);
}

static void verify_repetition_loop(void **state)
{
    char loop[2048] = "";
    struct ks_verify_input in = {.prompt = "Summarise.", .output_tokens = -1};
    double v[KS_VC_COUNT];

    (void)state;
    for (int i = 0; i < 20; i++) {
        strncat(loop, "the cat sat on the mat and then the cat sat again. ",
                sizeof(loop) - strlen(loop) - 1);
    }
    in.answer = loop;
    checks(&in, v);
    assert_true(v[KS_VC_REPEAT_LOOP] == 1 && v[KS_VC_REPEAT] > 0.8);
    in.answer = "The report covers sales in three regions, notes a fall in "
                "the north, a rise in the south, and a flat west; costs "
                "went up by a tenth and the outlook is cautious.";
    checks(&in, v);
    assert_true(v[KS_VC_REPEAT] == 0 && v[KS_VC_REPEAT_LOOP] == 0);
}

static void verify_logprobs_and_self_report(void **state)
{
    struct ks_verify_input in = {
        .prompt = "q", .answer = "a", .output_tokens = -1};
    double v[KS_VC_COUNT];

    (void)state;
    in.logprobs = (struct ks_logprob_stats){true, log(0.8), log(0.05), 0.25};
    in.has_self_report = true;
    in.self_report = 0.6;
    checks(&in, v);
    assert_true(v[KS_VC_AGREEMENT] == 0);
    in.has_agreement = true;
    in.agreement = 2.0 / 3;
    checks(&in, v);
    assert_true(v[KS_VC_AGREEMENT] == 2.0 / 3);
    assert_true(fabs(v[KS_VC_LP_MEAN] - 0.8) < 1e-9);
    assert_true(fabs(v[KS_VC_LP_MIN] - 0.05) < 1e-9);
    assert_true(v[KS_VC_LP_LOW_SHARE] == 0.25);
    assert_true(v[KS_VC_SELF_REPORT] == 0.6);
    in.logprobs.min = NAN; /* unknown: no feature */
    in.logprobs.share_low = NAN;
    checks(&in, v);
    assert_true(v[KS_VC_LP_MIN] == 0 && v[KS_VC_LP_LOW_SHARE] == 0);
    assert_string_equal(ks_verify_check_name(KS_VC_ARITH_WRONG), "arith_wrong");
}

/* A toy family: right answers follow the pattern and recompute; wrong
 * ones do not. */
static void toy(int i, int kind, char *prompt, char *answer, size_t size)
{
    int n = 3 + i % 50, m = 2 + (i * 7) % 40;

    snprintf(prompt, size,
             "A crate holds %d jars and %d more arrive "
             "(lot %d). How many jars?",
             n, m, i);
    if (kind == 0) {
        snprintf(answer, size, "%d + %d = %d\n#### %d", n, m, n + m, n + m);
    } else if (kind == 1) {
        snprintf(answer, size, "%d + %d = %d\n#### %d", n, m, n + m + 5,
                 n + m + 5);
    } else {
        snprintf(answer, size, "Probably around %d jars, I think.", n + m);
    }
}

static void verify_learns_checked_answers_and_round_trips(void **state)
{
    struct ks_rule_re *re = pattern(GSM_PATTERN);
    struct ks_lr_train_opts o;
    struct ks_lr_trainer *t;
    struct ks_lr_model *m, *m2;
    struct ks_lr_report rep;
    struct ks_verify_input in = {
        .type = "math", .answer_pattern = re, .output_tokens = -1};
    char prompt[160], answer[160], err[256], path[] = "/tmp/test_verify.XXXXXX";
    double right, wrong;
    int fd;

    (void)state;
    ks_lr_train_opts_init(&o);
    o.bits = 14;
    o.l2 = 1e-3;
    t = ks_verify_trainer_new(&o, err, sizeof(err));
    assert_non_null(t);
    assert_int_equal(ks_lr_trainer_add(t, "x", 1, "1", err, sizeof(err)), -1);
    for (int i = 0; i < 300; i++) {
        toy(i, i % 3, prompt, answer, sizeof(prompt));
        in.prompt = prompt;
        in.answer = answer;
        assert_int_equal(
            ks_verify_trainer_add(t, &in, i % 3 == 0, err, sizeof(err)), 0);
    }
    m = ks_lr_trainer_fit(t, &rep, err, sizeof(err));
    ks_lr_trainer_destroy(t);
    assert_non_null(m);
    assert_string_equal(ks_lr_kind(m), "verifier");
    toy(1000, 0, prompt, answer, sizeof(prompt));
    in.prompt = prompt;
    in.answer = answer;
    right = ks_verify_score(m, &in);
    toy(1000, 1, prompt, answer, sizeof(prompt));
    wrong = ks_verify_score(m, &in);
    assert_true(right > 0.7 && wrong < 0.3);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ks_lr_save(m, path, err, sizeof(err)), 0);
    m2 = ks_lr_load(path, err, sizeof(err));
    assert_non_null(m2);
    assert_string_equal(ks_lr_kind(m2), "verifier");
    assert_true(ks_verify_score(m2, &in) == wrong);
    unlink(path);
    /* Trained without them, the signals only a worker knows (a finish
     * reason, the output limit, logprobs, agreement) leave the score as
     * it is, also after a round trip through the file. */
    assert_int_equal(ks_verify_model_signals(m2), 0);
    {
        struct ks_verify_input serve = in;

        serve.finish_reason = "length";
        serve.max_output_tokens = 16;
        serve.output_tokens = 16;
        serve.logprobs.present = true;
        serve.logprobs.mean = -2;
        serve.logprobs.min = serve.logprobs.share_low = NAN;
        serve.has_agreement = true;
        serve.agreement = 0.34;
        assert_true(ks_verify_score(m2, &serve) == wrong);
        assert_true(ks_verify_score(m, &serve) == wrong);
    }
    /* a router trainer takes no answers */
    o.kind = "router";
    t = ks_lr_trainer_new(&o, err, sizeof(err));
    assert_int_equal(ks_verify_trainer_add(t, &in, true, err, sizeof(err)), -1);
    ks_lr_trainer_destroy(t);
    ks_lr_destroy(m2);
    ks_lr_destroy(m);
    ks_rule_re_destroy(re);
}

static void outcome_lines_parse_and_name_bad_fields(void **state)
{
    static const struct {
        const char *line, *want;
    } bad[] = {
        {"{\"tiers\": {\"a\": {}}}", "\"prompt\""},
        {"{\"prompt\": \"p\"}", "\"tiers\""},
        {"{\"prompt\": \"p\", \"tiers\": {\"a\": {\"correct\": \"yes\"}}}",
         "tiers.a: \"correct\""},
        {"{\"prompt\": \"p\", \"tiers\": {\"a\": {\"logprobs\": {\"min\": "
         "-1}}}}",
         "\"mean\""},
        {"{\"prompt\": \"p\", \"tiers\": {\"a\": {\"self_report\": 2}}}",
         "self_report"},
        {"{\"prompt\": \"p\", \"tiers\": {\"a\": {\"agreement\": 1.5}}}",
         "agreement"},
        {"{\"prompt\": \"p\", \"metadata\": {\"k\": 1}, \"tiers\": {\"a\": "
         "{}}}",
         "metadata.k"},
    };
    const char *good =
        "{\"id\": \"t1\", \"type\": \"math\", \"prompt\": \"2+2?\", "
        "\"max_output_tokens\": 64, \"metadata\": {\"team\": \"x\"}, "
        "\"output_schema\": {\"type\": \"object\"}, \"tiers\": {\"cheap\": "
        "{\"answer\": \"4\", \"correct\": true, \"output_tokens\": 3, "
        "\"finish_reason\": \"stop\", \"logprobs\": {\"mean\": -0.1}, "
        "\"cost_usd\": 0.001, \"latency_ms\": 20, \"self_report\": 0.9, "
        "\"agreement\": 0.5}, "
        "\"top\": {\"answer\": \"4\", \"correct\": 1}}}";
    struct ks_outcome o;
    struct ks_verify_input in;
    char err[256];
    cJSON *root;

    (void)state;
    root = cJSON_Parse(good);
    assert_int_equal(ks_outcome_parse(root, &o, err, sizeof(err)), 0);
    cJSON_Delete(root);
    assert_int_equal(o.n_tiers, 2);
    assert_string_equal(o.type, "math");
    assert_int_equal(o.max_output_tokens, 64);
    assert_non_null(o.output_schema);
    assert_non_null(ks_outcome_tier(&o, "top"));
    assert_null(ks_outcome_tier(&o, "mid"));
    assert_true(ks_outcome_tier(&o, "top")->correct);
    ks_verify_input_from_outcome(&o, &o.tiers[0], &in);
    assert_string_equal(in.answer, "4");
    assert_string_equal(in.finish_reason, "stop");
    assert_true(in.logprobs.present && isnan(in.logprobs.min));
    assert_true(in.has_self_report && in.self_report == 0.9);
    assert_true(in.has_agreement && in.agreement == 0.5);
    assert_int_equal(in.output_tokens, 3);
    ks_verify_input_from_outcome(&o, &o.tiers[1], &in);
    assert_false(in.has_agreement || in.has_self_report);
    ks_outcome_fini(&o);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        root = cJSON_Parse(bad[i].line);
        assert_non_null(root);
        err[0] = '\0';
        assert_int_equal(ks_outcome_parse(root, &o, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].want)) {
            print_error("line %zu: want '%s' in '%s'\n", i, bad[i].want, err);
        }
        assert_non_null(strstr(err, bad[i].want));
        cJSON_Delete(root);
    }
}

static void verify_agreement_votes_on_final_answers(void **state)
{
    struct ks_rule_re *re = pattern(GSM_PATTERN);
    const char *nums[] = {"2 + 2 = 4\n#### 4", "so #### 4.0", "#### 5",
                          "I get 4 in the end\n#### 4"};
    const char *labels[] = {"{\"label\": \"billing\"}",
                            "{\"label\": \"shipping\"}",
                            "```json\n{\"label\": \"billing\"}\n```"};
    const char *texts[] = {"Paris.", "paris", "Lyon"};
    const char *schema = "{\"type\":\"object\",\"properties\":{\"label\":"
                         "{\"enum\":[\"billing\",\"shipping\"]}}}";
    size_t maj = 99;

    (void)state;
    /* numbers: 4, 4.0 and 4 agree; 5 does not */
    assert_true(ks_verify_agreement(nums, 4, re, NULL, &maj) == 0.75);
    assert_int_equal(maj, 3);
    /* a JSON field under a schema: billing twice, fenced or not */
    assert_true(fabs(ks_verify_agreement(labels, 3, NULL, schema, &maj) -
                     2.0 / 3) < 1e-12);
    assert_int_equal(maj, 2);
    /* exact text, case and the final period aside */
    assert_true(fabs(ks_verify_agreement(texts, 3, NULL, NULL, &maj) -
                     2.0 / 3) < 1e-12);
    /* all different: the last one, share 1/k */
    assert_true(ks_verify_agreement(nums + 1, 2, re, NULL, &maj) == 0.5);
    assert_int_equal(maj, 1);
    assert_true(ks_verify_agreement(nums, 0, re, NULL, &maj) == 0);
    ks_rule_re_destroy(re);
}

static struct ks_result *parts_result(void)
{
    struct ks_result *r = ks_result_new();

    r->id = strdup("t-1");
    r->type = strdup("math");
    r->tier = strdup("local");
    r->status = KS_STATUS_OK;
    r->confidence = 0.8;
    r->confidence_source = strdup("combined");
    r->confidence_parts = calloc(2, sizeof(*r->confidence_parts));
    r->confidence_parts[0].source = strdup("logprob");
    r->confidence_parts[0].value = 0.9;
    r->confidence_parts[1].source = strdup("verifier");
    r->confidence_parts[1].value = 0.25;
    r->n_confidence_parts = 2;
    return r;
}

static void confidence_parts_round_trip_in_both_formats(void **state)
{
    struct ks_codec_limits lim;
    enum ks_format fmts[] = {KS_FORMAT_JSON, KS_FORMAT_PROTOBUF};

    (void)state;
    ks_codec_limits_default(&lim);
    for (size_t f = 0; f < 2; f++) {
        struct ks_result *r = parts_result(), *back = NULL;
        struct ks_codec_error cerr;
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(ks_result_encode(fmts[f], r, &buf, &len), KS_OK);
        assert_int_equal(
            ks_result_decode(fmts[f], buf, len, &lim, &back, &cerr), KS_OK);
        assert_int_equal(back->n_confidence_parts, 2);
        assert_string_equal(back->confidence_parts[0].source, "logprob");
        assert_true(back->confidence_parts[0].value == 0.9);
        assert_string_equal(back->confidence_parts[1].source, "verifier");
        assert_true(back->confidence_parts[1].value == 0.25);
        assert_string_equal(back->confidence_source, "combined");
        free(buf);
        ks_result_destroy(back);
        /* a part that is not a signal, or out of range, is refused */
        free(r->confidence_parts[1].source);
        r->confidence_parts[1].source = strdup("combined");
        assert_int_equal(ks_result_encode(fmts[f], r, &buf, &len), KS_OK);
        assert_int_equal(
            ks_result_decode(fmts[f], buf, len, &lim, &back, &cerr),
            KS_ERR_INVALID);
        assert_non_null(strstr(cerr.detail, "confidence_parts"));
        free(buf);
        free(r->confidence_parts[1].source);
        r->confidence_parts[1].source = strdup("verifier");
        r->confidence_parts[1].value = 1.5;
        assert_int_equal(ks_result_encode(fmts[f], r, &buf, &len), KS_OK);
        assert_int_equal(
            ks_result_decode(fmts[f], buf, len, &lim, &back, &cerr),
            KS_ERR_INVALID);
        free(buf);
        ks_result_destroy(r);
    }
}

static void result_without_parts_has_no_parts_field(void **state)
{
    struct ks_result *r = parts_result();
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    r->n_confidence_parts = 0; /* the array is still freed by destroy */
    assert_int_equal(ks_result_encode(KS_FORMAT_JSON, r, &buf, &len), KS_OK);
    assert_null(strstr(buf, "confidence_parts"));
    free(buf);
    for (size_t i = 0; i < 2; i++) {
        free(r->confidence_parts[i].source);
    }
    free(r->confidence_parts);
    r->confidence_parts = NULL;
    ks_result_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verify_arithmetic_answer_in_the_configured_format),
        cmocka_unit_test(verify_arithmetic_reads_chains_signs_and_rounding),
        cmocka_unit_test(verify_json_field_answer_against_the_schema),
        cmocka_unit_test(verify_label_answer_in_an_enum),
        cmocka_unit_test(verify_refusal_truncation_and_length),
        cmocka_unit_test(verify_repetition_loop),
        cmocka_unit_test(verify_logprobs_and_self_report),
        cmocka_unit_test(verify_learns_checked_answers_and_round_trips),
        cmocka_unit_test(outcome_lines_parse_and_name_bad_fields),
        cmocka_unit_test(verify_agreement_votes_on_final_answers),
        cmocka_unit_test(confidence_parts_round_trip_in_both_formats),
        cmocka_unit_test(result_without_parts_has_no_parts_field),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
