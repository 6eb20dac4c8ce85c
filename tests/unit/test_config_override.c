/*
 * test_config_override.c - the precedence file < environment < -X
 * overrides: KASCADE_* variables over the file, -X key=value over both,
 * how an override addresses tiers and providers, what it parses, and the
 * overrides it refuses. Fixtures and helpers are config_fixture.h's.
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

/* ---- environment -------------------------------------------------------- */

static void config_environment_overrides_the_file(void **state)
{
    struct ks_config *cfg;

    setenv("KASCADE_BOOTSTRAP_SERVERS", "env-broker:9092", 1);
    setenv("KASCADE_REDIS_URL", "redis://env-redis:6380", 1);
    setenv("KASCADE_METRICS_PORT", "9100", 1);
    cfg = load_ok(state, "valid.json", NULL, 0);
    assert_int_equal(cfg->n_kafka, 3);
    assert_string_equal(kafka_prop(cfg, "bootstrap.servers"),
                        "env-broker:9092");
    assert_string_equal(kafka_prop(cfg, "linger.ms"), "5");
    assert_string_equal(cfg->redis_url, "redis://env-redis:6380");
    assert_int_equal(cfg->metrics_port, 9100);
}

static void config_environment_supplies_missing_bootstrap_servers(void **state)
{
    struct ks_config *cfg;

    setenv("KASCADE_BOOTSTRAP_SERVERS", "env-broker:9092", 1);
    cfg = load_ok(state, "no_kafka.json", NULL, 0);
    assert_int_equal(cfg->n_kafka, 1);
    assert_string_equal(cfg->kafka[0].key, "bootstrap.servers");
    assert_string_equal(cfg->kafka[0].value, "env-broker:9092");
}

static void config_empty_environment_variable_is_ignored(void **state)
{
    struct ks_config *cfg;

    setenv("KASCADE_REDIS_URL", "", 1);
    cfg = load_ok(state, "valid.json", NULL, 0);
    assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6379");
}

static void config_invalid_environment_value_names_the_key(void **state)
{
    (void)state;
    setenv("KASCADE_METRICS_PORT", "http", 1);
    assert_refused("valid.json", NULL, 0, "metrics.port",
                   "must be a number in [0, 65535]");
}

static void config_unset_environment_leaves_the_file_alone(void **state)
{
    struct ks_config *cfg;

    setenv("KASCADE_REDIS_URL", "redis://env-redis:6380", 1);
    unsetenv("KASCADE_REDIS_URL");
    cfg = load_ok(state, "valid.json", NULL, 0);
    assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(kafka_prop(cfg, "bootstrap.servers"), "127.0.0.1:9092");
}

static void config_override_wins_over_environment(void **state)
{
    static const char *const ov[] = {"kafka.bootstrap.servers=h:1",
                                     "redis.url=redis://x:1"};
    struct ks_config *cfg;

    setenv("KASCADE_BOOTSTRAP_SERVERS", "env-broker:9092", 1);
    setenv("KASCADE_REDIS_URL", "redis://env-redis:6380", 1);
    cfg = load_ok(state, "valid.json", ov, N_OF(ov));
    assert_string_equal(kafka_prop(cfg, "bootstrap.servers"), "h:1");
    assert_string_equal(cfg->redis_url, "redis://x:1");
}

/* ---- -X overrides ------------------------------------------------------- */

static void config_override_keeps_dotted_kafka_key_whole(void **state)
{
    static const char *const ov[] = {"kafka.bootstrap.servers=h:1"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    /* Replaced, not split into kafka.bootstrap = {servers: ...}. */
    assert_int_equal(cfg->n_kafka, 3);
    assert_null(kafka_prop(cfg, "bootstrap"));
    assert_string_equal(kafka_prop(cfg, "bootstrap.servers"), "h:1");
    assert_string_equal(kafka_prop(cfg, "linger.ms"), "5");
}

static void config_override_adds_a_new_kafka_property(void **state)
{
    static const char *const ov[] = {"kafka.client.id=router-1"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_int_equal(cfg->n_kafka, 4);
    assert_string_equal(cfg->kafka[3].key, "client.id");
    assert_string_equal(cfg->kafka[3].value, "router-1");
}

static void config_override_sets_a_type_threshold(void **state)
{
    static const char *const ov[] = {"tiers.mid.escalate_below_types.math=0.3",
                                     "tiers.mid.escalate_context=none"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    /* an -X value is a string until a typed getter reads it */
    assert_true(ks_config_escalate_below(&cfg->tiers[1], "math") == 0.3);
    assert_int_equal(cfg->tiers[1].escalate_context, KS_ESC_CTX_NONE);
    /* the default: the stated final answer */
    assert_int_equal(cfg->tiers[0].escalate_context, KS_ESC_CTX_FINAL);
}

static void config_override_addresses_tier_by_name(void **state)
{
    static const char *const ov[] = {"tiers.mid.max_inflight=7"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_int_equal(cfg->tiers[1].max_inflight, 7);
    assert_int_equal(cfg->tiers[0].max_inflight, 64);
    assert_int_equal(cfg->tiers[2].max_inflight, 64);
}

static void config_override_addresses_provider_by_index(void **state)
{
    static const char *const ov[] = {"tiers.mid.providers.0.model=x"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_string_equal(cfg->tiers[1].providers[0].model, "x");
    assert_string_equal(cfg->tiers[1].providers[1].model, "mid-backup");
    assert_string_equal(cfg->tiers[0].providers[0].model, "qwen2.5-0.5b");
}

static void config_override_addresses_tier_by_index(void **state)
{
    static const char *const ov[] = {"tiers.2.daily_budget_usd=1.5"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_int_equal(cfg->tiers[2].daily_budget_micro, 1500000);
}

static void config_override_parses_numbers(void **state)
{
    static const char *const ov[] = {"metrics.port=9999"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_int_equal(cfg->metrics_port, 9999);
}

static void config_override_creates_a_missing_section(void **state)
{
    static const char *const ov[] = {"topics.partitions=12", "log.level=debug"};
    struct ks_config *cfg = load_ok(state, "minimal.json", ov, N_OF(ov));

    assert_int_equal(cfg->partitions, 12);
    assert_string_equal(cfg->log_level, "debug");
    assert_string_equal(cfg->topic_prefix, "kascade.");
}

static void config_later_override_wins(void **state)
{
    static const char *const ov[] = {"metrics.port=1", "metrics.port=2"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_int_equal(cfg->metrics_port, 2);
}

static void config_override_invalid_value_names_the_key(void **state)
{
    static const char *const ov[] = {"tiers.mid.max_inflight=abc"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "tiers[1].max_inflight",
                   "must be a number in [1, 65536]");
}

static void config_override_of_unknown_key_is_refused(void **state)
{
    static const char *const ov[] = {"metrics.prot=9999"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "metrics.prot", "unknown key");
}

static void config_override_naming_unknown_tier_is_refused(void **state)
{
    static const char *const ov[] = {"tiers.huge.max_inflight=1"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "tiers.huge.max_inflight",
                   "no such object 'huge'");
}

static void config_override_through_a_scalar_is_refused(void **state)
{
    static const char *const ov[] = {"metrics.port.number=1"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "metrics.port.number",
                   "no such object 'port'");
}

static void config_override_without_equals_is_refused(void **state)
{
    static const char *const ov[] = {"metrics.port"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "metrics.port",
                   "an override must be key=value");
}

static void config_override_with_empty_key_is_refused(void **state)
{
    static const char *const ov[] = {"=5"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "=5",
                   "an override must be key=value");
}

static void config_override_keeps_kafka_values_as_written(void **state)
{
    static const char *const ov[] = {"kafka.client.id=007",
                                     "kafka.transactional.id=1e3"};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_string_equal(kafka_prop(cfg, "client.id"), "007");
    assert_string_equal(kafka_prop(cfg, "transactional.id"), "1e3");
}

static void config_override_takes_numeric_looking_text_as_text(void **state)
{
    static const char *const ov[] = {"topics.prefix=2024."};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));

    assert_string_equal(cfg->topic_prefix, "2024.");
}

static void config_override_null_does_not_restore_the_default(void **state)
{
    static const char *const ov[] = {"redis.url=null"};

    (void)state;
    assert_refused("valid.json", ov, N_OF(ov), "redis.url",
                   "must start with redis://");
}

#define T(f) cmocka_unit_test_setup_teardown(f, config_setup, config_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(config_override_keeps_kafka_values_as_written),
        T(config_override_takes_numeric_looking_text_as_text),
        T(config_override_null_does_not_restore_the_default),
        T(config_environment_overrides_the_file),
        T(config_override_sets_a_type_threshold),
        T(config_environment_supplies_missing_bootstrap_servers),
        T(config_empty_environment_variable_is_ignored),
        T(config_invalid_environment_value_names_the_key),
        T(config_unset_environment_leaves_the_file_alone),
        T(config_override_keeps_dotted_kafka_key_whole),
        T(config_override_adds_a_new_kafka_property),
        T(config_override_wins_over_environment),
        T(config_override_addresses_tier_by_name),
        T(config_override_addresses_provider_by_index),
        T(config_override_addresses_tier_by_index),
        T(config_override_parses_numbers),
        T(config_override_creates_a_missing_section),
        T(config_later_override_wins),
        T(config_override_invalid_value_names_the_key),
        T(config_override_of_unknown_key_is_refused),
        T(config_override_naming_unknown_tier_is_refused),
        T(config_override_through_a_scalar_is_refused),
        T(config_override_without_equals_is_refused),
        T(config_override_with_empty_key_is_refused),
    };

    return cmocka_run_group_tests_name("config_override", tests, NULL, NULL);
}
