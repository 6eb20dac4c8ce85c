/*
 * test_config_refuse.c - the refusals of kascade.json: every refusal
 * names the file, the key and the reason (unknown keys, wrong types, bad
 * values, missing sections, text that is not JSON, a missing file), and
 * an error longer than errstr is cut to its size. Fixtures and helpers are
 * config_fixture.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config_fixture.h"

#include "base/banned.h"

/* ---- refusals ----------------------------------------------------------- */

static void config_refuses_unknown_top_level_key(void **state)
{
    (void)state;
    assert_refused("unknown_top_level_key.json", NULL, 0, "routeing",
                   "unknown key");
}

static void config_refuses_unknown_tier_key(void **state)
{
    (void)state;
    assert_refused("unknown_tier_key.json", NULL, 0, "tiers[1].max_inflite",
                   "unknown key");
}

static void config_refuses_string_where_number_expected(void **state)
{
    (void)state;
    assert_refused("wrong_type.json", NULL, 0, "topics.partitions",
                   "must be a number in [1, 10000]");
}

static void config_refuses_string_where_bool_expected(void **state)
{
    (void)state;
    assert_refused("local_not_bool.json", NULL, 0, "tiers[0].local",
                   "must be true or false");
}

static void config_refuses_max_inflight_zero(void **state)
{
    (void)state;
    assert_refused("max_inflight_zero.json", NULL, 0, "tiers[0].max_inflight",
                   "must be a number in [1, 65536]");
}

static void config_refuses_fractional_integer(void **state)
{
    static const char *const ov[] = {"topics.partitions=2.5"};

    (void)state;
    assert_refused("minimal.json", ov, N_OF(ov), "topics.partitions",
                   "must be a whole number");
}

static void config_refuses_duplicate_tier_names(void **state)
{
    (void)state;
    assert_refused("duplicate_tier.json", NULL, 0, "tiers[2]",
                   "duplicate tier name 'mid'");
}

static void config_refuses_tier_name_with_a_space(void **state)
{
    (void)state;
    assert_refused("tier_name_space.json", NULL, 0, "tiers[0].name",
                   "not [a-z0-9_-]{1,64}");
}

static void config_refuses_tier_name_with_uppercase(void **state)
{
    (void)state;
    assert_refused("tier_name_upper.json", NULL, 0, "tiers[1].name",
                   "not [a-z0-9_-]{1,64}");
}

static void config_refuses_task_type_naming_unknown_tier(void **state)
{
    (void)state;
    assert_refused("task_type_unknown_tier.json", NULL, 0,
                   "routing.task_types.summarize", "no tier named 'frontier'");
}

static void config_refuses_unknown_default_tier(void **state)
{
    (void)state;
    assert_refused("default_tier_unknown.json", NULL, 0, "routing.default_tier",
                   "no tier named 'cheap'");
}

static void config_refuses_missing_bootstrap_servers(void **state)
{
    (void)state;
    assert_refused("missing_bootstrap.json", NULL, 0, "kafka.bootstrap.servers",
                   "missing");
}

static void config_refuses_missing_kafka_section(void **state)
{
    (void)state;
    assert_refused("no_kafka.json", NULL, 0, "kafka.bootstrap.servers",
                   "KASCADE_BOOTSTRAP_SERVERS");
}

static void config_refuses_unknown_provider_kind(void **state)
{
    (void)state;
    assert_refused("provider_kind_unknown.json", NULL, 0,
                   "tiers[0].providers[1].kind",
                   "unknown provider kind 'gemini' (known: openai, "
                   "anthropic, classifier)");
}

static void config_refuses_circuit_failures_zero(void **state)
{
    static const char *const ov[] = {
        "tiers.mid.providers.0.circuit_failures=0"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov),
                   "tiers[1].providers[0].circuit_failures", "");
}

static void config_refuses_provider_without_base_url(void **state)
{
    (void)state;
    assert_refused("base_url_missing.json", NULL, 0,
                   "tiers[0].providers[0].base_url",
                   "missing or not an http(s) URL");
}

static void config_refuses_provider_without_model(void **state)
{
    (void)state;
    assert_refused("provider_without_model.json", NULL, 0,
                   "tiers[0].providers[0].model", "missing");
}

static void config_refuses_empty_tier_list(void **state)
{
    static const char *const ov[] = {"tiers=[]"};

    (void)state;
    assert_refused("minimal.json", ov, N_OF(ov), "tiers",
                   "must be a non-empty array");
}

static void config_refuses_unknown_log_level(void **state)
{
    static const char *const ov[] = {"log.level=verbose"};

    (void)state;
    assert_refused("minimal.json", ov, N_OF(ov), "log.level",
                   "must be error, warn, info or debug");
}

static void config_refuses_redis_url_without_scheme(void **state)
{
    static const char *const ov[] = {"redis.url=127.0.0.1:6379"};

    (void)state;
    assert_refused("minimal.json", ov, N_OF(ov), "redis.url",
                   "must start with redis://");
}

static void config_refuses_text_that_is_not_json_with_its_line(void **state)
{
    (void)state;
    assert_refused("not_json.json", NULL, 0, NULL,
                   "not valid JSON (near line 4)");
}

static void config_refuses_top_level_array(void **state)
{
    (void)state;
    assert_refused("top_level_array.json", NULL, 0, NULL,
                   "the top level must be an object");
}

static void config_refuses_missing_file(void **state)
{
    (void)state;
    assert_refused("no_such_file.json", NULL, 0, NULL,
                   "cannot open: No such file or directory");
}

static void config_error_is_truncated_to_errstr_size(void **state)
{
    char small[16];
    struct ks_config *cfg;

    (void)state;
    memset(small, 'x', sizeof(small));
    cfg = ks_config_load(fixture("max_inflight_zero.json"), NULL, 0, small,
                         sizeof(small));
    assert_null(cfg);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void config_refuses_a_key_given_twice(void **state)
{
    (void)state;
    assert_refused("duplicate_key.json", NULL, 0, "metrics.port",
                   "given twice");
}

static void config_refuses_negative_budget(void **state)
{
    static const char *const ov[] = {"tiers.2.daily_budget_usd=-0.5"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "tiers[2].daily_budget_usd",
                   "must be a number in [0,");
}

static void config_refuses_reply_to_allow_entry_that_is_no_topic(void **state)
{
    static const char *const star[] = {"topics.reply_to_allow=*"};
    static const char *const space[] = {"topics.reply_to_allow=a b"};
    static const char *const mid[] = {"topics.reply_to_allow=a*b"};

    (void)state;
    assert_refused("minimal.json", star, 1, "topics.reply_to_allow",
                   "not a topic name");
    assert_refused("minimal.json", space, 1, "topics.reply_to_allow",
                   "not a topic name");
    assert_refused("minimal.json", mid, 1, "topics.reply_to_allow",
                   "not a topic name");
}

static void config_refuses_bad_answer_pattern_and_samples(void **state)
{
    const char *const bad_re[] = {"answer_patterns.math=(unclosed"};
    const char *const bad_k[] = {"tiers.mid.samples=17"};
    const char *const bad_path[] = {"tiers.local.verifier_models.math="};
    const char *const bad_n[] = {"tiers.mid.providers.0.kind=anthropic",
                                 "tiers.mid.providers.0.supports_n=true"};

    (void)state;
    assert_refused("valid.json", bad_re, 1, "answer_patterns.math",
                   "missing closing parenthesis");
    assert_refused("valid.json", bad_k, 1, "tiers[1].samples",
                   "must be a number in [1, 16]");
    assert_refused("valid.json", bad_path, 1, "tiers[0].verifier_models.math",
                   "must be the path of a verifier model file");
    assert_refused("valid.json", bad_n, 2, "tiers[1].providers[0].supports_n",
                   "only an openai provider takes \"n\"");
}

#define T(f) cmocka_unit_test_setup_teardown(f, config_setup, config_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(config_refuses_bad_answer_pattern_and_samples),
        T(config_refuses_reply_to_allow_entry_that_is_no_topic),
        T(config_refuses_a_key_given_twice),
        T(config_refuses_negative_budget),
        T(config_refuses_unknown_top_level_key),
        T(config_refuses_unknown_tier_key),
        T(config_refuses_string_where_number_expected),
        T(config_refuses_string_where_bool_expected),
        T(config_refuses_max_inflight_zero),
        T(config_refuses_fractional_integer),
        T(config_refuses_duplicate_tier_names),
        T(config_refuses_tier_name_with_a_space),
        T(config_refuses_tier_name_with_uppercase),
        T(config_refuses_task_type_naming_unknown_tier),
        T(config_refuses_unknown_default_tier),
        T(config_refuses_missing_bootstrap_servers),
        T(config_refuses_missing_kafka_section),
        T(config_refuses_unknown_provider_kind),
        T(config_refuses_circuit_failures_zero),
        T(config_refuses_provider_without_base_url),
        T(config_refuses_provider_without_model),
        T(config_refuses_empty_tier_list),
        T(config_refuses_unknown_log_level),
        T(config_refuses_redis_url_without_scheme),
        T(config_refuses_text_that_is_not_json_with_its_line),
        T(config_refuses_top_level_array),
        T(config_refuses_missing_file),
        T(config_error_is_truncated_to_errstr_size),
    };

    return cmocka_run_group_tests_name("config_refuse", tests, NULL, NULL);
}
