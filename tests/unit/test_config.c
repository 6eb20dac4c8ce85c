/*
 * test_config.c - loading kascade.json: a valid file with its defaults
 * filled in, every refusal naming the file, the key and the reason, and
 * the precedence file < environment < -X overrides.
 *
 * Fixtures live in tests/fixtures/config/; their directory is
 * $KASCADE_FIXTURES (default: ../fixtures next to this source file, so the
 * binary runs from the repo root). Every test starts and ends with the
 * KASCADE_* variables config.c reads unset, so the caller's environment
 * cannot leak in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const env_vars[] = {
    "KASCADE_BOOTSTRAP_SERVERS", "KASCADE_REDIS_URL", "KASCADE_TOPICS_PREFIX",
    "KASCADE_METRICS_PORT",      "KASCADE_LOG_LEVEL",
};

static char errstr[512];

/* The path of fixture name; static buffer, valid until the next call. */
static const char *fixture(const char *name)
{
    static char path[1024];
    const char *dir = getenv("KASCADE_FIXTURES");

    if (dir && *dir) {
        snprintf(path, sizeof(path), "%s/config/%s", dir, name);
    } else {
        const char *file = __FILE__;
        const char *slash = strrchr(file, '/');
        int dirlen = slash ? (int)(slash - file) + 1 : 0;

        snprintf(path, sizeof(path), "%.*s../fixtures/config/%s", dirlen, file,
                 name);
    }
    return path;
}

static void clear_env(void)
{
    for (size_t i = 0; i < N_OF(env_vars); i++) {
        unsetenv(env_vars[i]);
    }
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    memset(errstr, 0, sizeof(errstr));
    return 0;
}

static int teardown(void **state)
{
    ks_config_destroy(*state);
    *state = NULL;
    clear_env();
    return 0;
}

/* Loads a fixture that must be valid; the config is freed by teardown. */
static struct ks_config *load_ok(void **state,
                                 const char *name,
                                 const char *const *overrides,
                                 size_t n)
{
    struct ks_config *cfg =
        ks_config_load(fixture(name), overrides, n, errstr, sizeof(errstr));

    if (!cfg) {
        fail_msg("%s did not load: %s", name, errstr);
    }
    *state = cfg;
    return cfg;
}

/* The value of librdkafka property key, or NULL. */
static const char *kafka_prop(const struct ks_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return cfg->kafka[i].value;
        }
    }
    return NULL;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) {
        fail_msg("\"%s\" lacks \"%s\"", haystack, needle);
    }
}

/* Loads a fixture that must be refused with "FILE: key 'KEY': ...REASON". */
static void assert_refused(const char *name,
                           const char *const *overrides,
                           size_t n,
                           const char *key,
                           const char *reason)
{
    char want[1100];
    struct ks_config *cfg;
    const char *path = fixture(name);

    cfg = ks_config_load(path, overrides, n, errstr, sizeof(errstr));
    if (cfg) {
        ks_config_destroy(cfg);
        fail_msg("%s loaded, expected a refusal of key '%s'", name,
                 key ? key : "(none)");
    }
    if (key) {
        snprintf(want, sizeof(want), "%s: key '%s': ", path, key);
    } else {
        snprintf(want, sizeof(want), "%s: ", path);
    }
    if (strncmp(errstr, want, strlen(want)) != 0) {
        fail_msg("\"%s\" does not start with \"%s\"", errstr, want);
    }
    assert_contains(errstr, reason);
}

/* ---- a valid file ------------------------------------------------------- */

static void config_valid_file_keeps_tiers_in_order(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);

    assert_string_equal(cfg->path, fixture("valid.json"));
    assert_int_equal(cfg->n_tiers, 3);
    assert_string_equal(cfg->tiers[0].name, "local");
    assert_string_equal(cfg->tiers[1].name, "mid");
    assert_string_equal(cfg->tiers[2].name, "frontier");
    assert_true(cfg->tiers[0].local);
    assert_false(cfg->tiers[1].local);
    assert_false(cfg->tiers[2].local);
    assert_int_equal(ks_config_tier_index(cfg, "local"), 0);
    assert_int_equal(ks_config_tier_index(cfg, "frontier"), 2);
    assert_int_equal(ks_config_tier_index(cfg, "Frontier"), -1);
    assert_int_equal(ks_config_tier_index(cfg, "nope"), -1);
}

static void config_valid_file_reads_providers_and_prices(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);
    const struct ks_tier_cfg *mid = &cfg->tiers[1];
    const struct ks_provider_cfg *p = &mid->providers[0];

    assert_int_equal(mid->n_providers, 2);
    assert_string_equal(p->kind, "openai");
    assert_string_equal(p->base_url, "https://api.example.com/v1");
    assert_string_equal(p->model, "mid-model");
    assert_string_equal(p->api_key_env, "MID_API_KEY");
    assert_float_equal(p->price_in, 0.15, 1e-12);
    assert_float_equal(p->price_out, 0.6, 1e-12);
    assert_int_equal(p->context_window, 128000);
    assert_int_equal(p->timeout_ms, 30000);
    assert_int_equal(p->max_retries, 2);
    assert_string_equal(mid->providers[1].model, "mid-backup");
    assert_int_equal(mid->max_inflight, 16);
    assert_float_equal(mid->escalate_below, 0.7, 1e-12);
    assert_int_equal(mid->on_budget_exhausted, KS_BUDGET_DEFER);
    assert_float_equal(cfg->tiers[2].providers[0].price_in, 3, 1e-12);
    assert_float_equal(cfg->tiers[2].providers[0].price_out, 15, 1e-12);
    assert_int_equal(cfg->tiers[2].on_budget_exhausted, KS_BUDGET_REJECT);
    assert_int_equal(cfg->tiers[2].default_max_output_tokens, 2048);
}

static void config_budget_in_usd_becomes_micro_dollars(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);

    assert_int_equal(cfg->tiers[2].daily_budget_micro, 20000000);
    /* Absent: no limit. */
    assert_int_equal(cfg->tiers[0].daily_budget_micro, -1);
    assert_int_equal(cfg->tiers[1].daily_budget_micro, -1);
}

static void config_valid_file_fills_defaults(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);
    const struct ks_tier_cfg *local = &cfg->tiers[0];
    const struct ks_provider_cfg *p = &local->providers[0];
    struct ks_codec_limits lim;

    assert_string_equal(cfg->topic_prefix, "kascade.");
    assert_int_equal(cfg->partitions, 6);
    assert_int_equal(cfg->replication_factor, 1);
    assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6379");
    assert_int_equal(cfg->redis_timeout_ms, 500); /* given in the file */
    assert_string_equal(cfg->redis_prefix, "kascade:");
    assert_int_equal(cfg->done_ttl_s, 2 * 86400);
    assert_string_equal(cfg->metrics_host, "127.0.0.1");
    assert_int_equal(cfg->metrics_port, 9464);
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->drain_timeout_ms, 30000);
    assert_int_equal(cfg->max_hops, 2);
    /* Tier and provider defaults. */
    assert_int_equal(local->max_inflight, 64);
    assert_float_equal(local->escalate_below, 0, 0);
    assert_int_equal(local->on_budget_exhausted, KS_BUDGET_DOWNGRADE);
    assert_int_equal(local->default_max_output_tokens, 512);
    assert_int_equal(local->n_providers, 1);
    assert_string_equal(p->kind, "openai");
    assert_null(p->api_key_env);
    assert_float_equal(p->price_in, 0, 0);
    assert_float_equal(p->price_out, 0, 0);
    assert_int_equal(p->context_window, 8192);
    assert_int_equal(p->timeout_ms, 60000);
    assert_int_equal(p->max_retries, 3);
    assert_int_equal(p->rpm, 0);
    assert_int_equal(p->tpm, 0);
    assert_int_equal(p->circuit_failures, 5);
    assert_int_equal(p->circuit_cooldown_ms, 30000);
    /* Limits: the codec's defaults. */
    ks_codec_limits_default(&lim);
    assert_int_equal(cfg->limits.max_message_bytes, lim.max_message_bytes);
    assert_int_equal(cfg->limits.max_text_bytes, lim.max_text_bytes);
    assert_int_equal(cfg->limits.max_messages, lim.max_messages);
    assert_int_equal(cfg->limits.max_metadata, lim.max_metadata);
    assert_int_equal(cfg->limits.max_depth, lim.max_depth);
}

static void config_kafka_properties_pass_through_as_strings(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);

    assert_int_equal(cfg->n_kafka, 3);
    assert_string_equal(cfg->kafka[0].key, "bootstrap.servers");
    assert_string_equal(cfg->kafka[0].value, "127.0.0.1:9092");
    assert_string_equal(cfg->kafka[1].key, "linger.ms");
    assert_string_equal(cfg->kafka[1].value, "5");
    assert_string_equal(cfg->kafka[2].key, "enable.idempotence");
    assert_string_equal(cfg->kafka[2].value, "true");
}

static void config_minimal_file_defaults_routing_to_the_first_tier(void **state)
{
    struct ks_config *cfg = load_ok(state, "minimal.json", NULL, 0);

    assert_int_equal(cfg->n_tiers, 1);
    assert_int_equal(cfg->default_tier, 0);
    assert_int_equal(cfg->n_routes, 0);
    assert_int_equal(cfg->max_hops, 3);
    assert_int_equal(cfg->metrics_port, 0); /* not served */
    assert_int_equal(ks_config_route_type(cfg, "anything"), 0);
}

/* ---- routing table and topics ------------------------------------------ */

static void config_route_type_maps_known_types(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);

    assert_int_equal(cfg->n_routes, 3);
    assert_int_equal(ks_config_route_type(cfg, "classify_intent"), 0);
    assert_int_equal(ks_config_route_type(cfg, "summarize"), 1);
    assert_int_equal(ks_config_route_type(cfg, "legal_review"), 2);
}

static void config_route_type_sends_unknown_types_to_default_tier(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);

    assert_int_equal(cfg->default_tier, 1);
    assert_int_equal(ks_config_route_type(cfg, "poetry"), 1);
    assert_int_equal(ks_config_route_type(cfg, ""), 1);
    /* Types match exactly. */
    assert_int_equal(ks_config_route_type(cfg, "Legal_review"), 1);
}

static void config_topic_joins_prefix_and_suffix(void **state)
{
    struct ks_config *cfg = load_ok(state, "valid.json", NULL, 0);
    char buf[64];
    char small[8];

    ks_config_topic(cfg, "tier.local", buf, sizeof(buf));
    assert_string_equal(buf, "kascade.tier.local");
    ks_config_topic(cfg, "tier.local", small, sizeof(small));
    assert_string_equal(small, "kascade");
}

static void config_topic_uses_the_configured_prefix(void **state)
{
    static const char *const ov[] = {"topics.prefix=acme.kascade."};
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));
    char buf[64];

    ks_config_topic(cfg, "results", buf, sizeof(buf));
    assert_string_equal(buf, "acme.kascade.results");
}

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

static void config_reads_anthropic_kind_and_provider_limits(void **state)
{
    static const char *const ov[] = {
        "tiers.mid.providers.0.kind=anthropic",
        "tiers.mid.providers.0.rpm=60",
        "tiers.mid.providers.0.tpm=100000",
        "tiers.mid.providers.0.circuit_failures=2",
        "tiers.mid.providers.0.circuit_cooldown_ms=500",
    };
    struct ks_config *cfg = load_ok(state, "valid.json", ov, N_OF(ov));
    const struct ks_provider_cfg *p = &cfg->tiers[1].providers[0];

    assert_string_equal(p->kind, "anthropic");
    assert_int_equal(p->rpm, 60);
    assert_int_equal(p->tpm, 100000);
    assert_int_equal(p->circuit_failures, 2);
    assert_int_equal(p->circuit_cooldown_ms, 500);
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

/* ---- topics.reply_to_allow (reply.c) ----------------------------------- */

static void config_reply_to_refused_unless_configured(void **state)
{
    struct ks_config *cfg = load_ok(state, "minimal.json", NULL, 0);

    assert_int_equal(cfg->n_reply_to_allow, 0);
    assert_null(ks_config_reply_to_refusal(cfg, NULL));
    assert_contains(ks_config_reply_to_refusal(cfg, "replies"),
                    "not in topics.reply_to_allow");
}

static void config_reply_to_allows_exact_names_and_prefixes(void **state)
{
    static const char *const ov[] = {"topics.reply_to_allow=replies,team-a.*"};
    struct ks_config *cfg = load_ok(state, "minimal.json", ov, N_OF(ov));

    assert_int_equal(cfg->n_reply_to_allow, 2);
    assert_null(ks_config_reply_to_refusal(cfg, "replies"));
    assert_null(ks_config_reply_to_refusal(cfg, "team-a.out"));
    assert_null(ks_config_reply_to_refusal(cfg, "team-a."));
    assert_non_null(ks_config_reply_to_refusal(cfg, "replies2"));
    assert_non_null(ks_config_reply_to_refusal(cfg, "team-b.out"));
    assert_non_null(ks_config_reply_to_refusal(cfg, "team-a"));
}

static void config_reply_to_never_allows_kascade_topics(void **state)
{
    static const char *const ov[] = {
        "topics.reply_to_allow=kascade.tasks,kascade.*,k*"};
    static const char *const own[] = {
        "kascade.tasks",     "kascade.tier.local", "kascade.escalations",
        "kascade.results",   "kascade.dlq",        "kascade.deferred",
        "kascade.tasks.acme"};
    struct ks_config *cfg = load_ok(state, "minimal.json", ov, N_OF(ov));

    for (size_t i = 0; i < N_OF(own); i++) {
        assert_contains(ks_config_reply_to_refusal(cfg, own[i]),
                        "kascade's own topics");
    }
    assert_null(ks_config_reply_to_refusal(cfg, "kascadex"));
}

static void config_reply_to_never_allows_own_names_with_empty_prefix(
    void **state)
{
    static const char *const ov[] = {"topics.prefix=",
                                     "topics.reply_to_allow=t*,d*,r*,e*"};
    struct ks_config *cfg = load_ok(state, "minimal.json", ov, N_OF(ov));

    assert_non_null(ks_config_reply_to_refusal(cfg, "tasks"));
    assert_non_null(ks_config_reply_to_refusal(cfg, "tier.local"));
    assert_non_null(ks_config_reply_to_refusal(cfg, "dlq"));
    assert_non_null(ks_config_reply_to_refusal(cfg, "results"));
    assert_non_null(ks_config_reply_to_refusal(cfg, "escalations"));
    assert_null(ks_config_reply_to_refusal(cfg, "team-replies"));
}

static void config_reply_to_refuses_what_kafka_would_refuse(void **state)
{
    static const char *const ov[] = {"topics.reply_to_allow=r*,...*"};
    static const char *const bad[] = {
        "", ".", "..", "r a", "r\nb", "r/x", "r\xc3\xa9", "r:1", "r\x1b[2J",
    };
    char long_name[260];
    struct ks_config *cfg = load_ok(state, "minimal.json", ov, N_OF(ov));

    for (size_t i = 0; i < N_OF(bad); i++) {
        assert_contains(ks_config_reply_to_refusal(cfg, bad[i]),
                        "not a Kafka topic name");
    }
    memset(long_name, 'r', sizeof(long_name));
    long_name[249] = '\0';
    assert_null(ks_config_reply_to_refusal(cfg, long_name));
    long_name[249] = 'r';
    long_name[250] = '\0';
    assert_non_null(ks_config_reply_to_refusal(cfg, long_name));
    assert_null(ks_config_reply_to_refusal(cfg, "..."));
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

static void config_tier_self_report_defaults_on_and_can_be_switched_off(
    void **state)
{
    static const char *const ov[] = {"tiers.only.self_report=false"};
    struct ks_config *cfg = load_ok(state, "minimal.json", NULL, 0);

    assert_true(cfg->tiers[0].self_report);
    ks_config_destroy(cfg);
    cfg = load_ok(state, "minimal.json", ov, N_OF(ov));
    assert_false(cfg->tiers[0].self_report);
}

static void config_destroy_accepts_null(void **state)
{
    (void)state;
    ks_config_destroy(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* Issue 11: answer_patterns, a tier's verifier model files and samples. */
static void config_reads_answer_patterns_verifiers_and_samples(void **state)
{
    const char *const ov[] = {
        "answer_patterns.math=####\\s*(-?[0-9]+)",
        "tiers.local.verifier_model=/m/all.lrm",
        "tiers.local.verifier_models.math=/m/math.lrm",
        "tiers.mid.samples=3",
        "tiers.mid.providers.0.supports_n=true",
    };
    struct ks_config *cfg = load_ok(state, "valid.json", ov, 5);
    size_t s, e;

    assert_non_null(ks_config_answer_pattern(cfg, "math"));
    assert_null(ks_config_answer_pattern(cfg, "chat"));
    assert_int_equal(ks_rule_re_find(ks_config_answer_pattern(cfg, "math"),
                                     "so #### 42", 10, &s, &e),
                     KS_RULE_MATCH);
    assert_int_equal(s, 8);
    assert_int_equal(e, 10);
    assert_string_equal(ks_config_verifier_model(&cfg->tiers[0], "math"),
                        "/m/math.lrm");
    assert_string_equal(ks_config_verifier_model(&cfg->tiers[0], "chat"),
                        "/m/all.lrm");
    assert_null(ks_config_verifier_model(&cfg->tiers[1], "math"));
    assert_int_equal(cfg->tiers[0].samples, 1);
    assert_int_equal(cfg->tiers[1].samples, 3);
    assert_false(cfg->tiers[0].providers[0].supports_n);
    assert_true(cfg->tiers[1].providers[0].supports_n);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(config_reads_answer_patterns_verifiers_and_samples),
        T(config_refuses_bad_answer_pattern_and_samples),
        T(config_valid_file_keeps_tiers_in_order),
        T(config_reply_to_refused_unless_configured),
        T(config_reply_to_allows_exact_names_and_prefixes),
        T(config_reply_to_never_allows_kascade_topics),
        T(config_reply_to_never_allows_own_names_with_empty_prefix),
        T(config_reply_to_refuses_what_kafka_would_refuse),
        T(config_refuses_reply_to_allow_entry_that_is_no_topic),
        T(config_tier_self_report_defaults_on_and_can_be_switched_off),
        T(config_override_keeps_kafka_values_as_written),
        T(config_override_takes_numeric_looking_text_as_text),
        T(config_override_null_does_not_restore_the_default),
        T(config_refuses_a_key_given_twice),
        T(config_refuses_negative_budget),
        T(config_valid_file_reads_providers_and_prices),
        T(config_budget_in_usd_becomes_micro_dollars),
        T(config_valid_file_fills_defaults),
        T(config_kafka_properties_pass_through_as_strings),
        T(config_minimal_file_defaults_routing_to_the_first_tier),
        T(config_route_type_maps_known_types),
        T(config_route_type_sends_unknown_types_to_default_tier),
        T(config_topic_joins_prefix_and_suffix),
        T(config_topic_uses_the_configured_prefix),
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
        T(config_reads_anthropic_kind_and_provider_limits),
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
        T(config_destroy_accepts_null),
    };

    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
