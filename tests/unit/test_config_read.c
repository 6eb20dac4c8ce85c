/*
 * test_config_read.c - loading a valid kascade.json: tiers in order,
 * providers and prices, defaults filled in, Kafka properties passed
 * through, routing by task type, topic names, the reply_to_allow policy,
 * answer patterns and verifier models. Fixtures and helpers are
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

/* ---- answer patterns, verifiers, destroy --------------------------------- */

static void config_destroy_accepts_null(void **state)
{
    (void)state;
    ks_config_destroy(NULL);
}

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

#define T(f) cmocka_unit_test_setup_teardown(f, config_setup, config_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(config_reads_answer_patterns_verifiers_and_samples),
        T(config_valid_file_keeps_tiers_in_order),
        T(config_reply_to_refused_unless_configured),
        T(config_reply_to_allows_exact_names_and_prefixes),
        T(config_reply_to_never_allows_kascade_topics),
        T(config_reply_to_never_allows_own_names_with_empty_prefix),
        T(config_reply_to_refuses_what_kafka_would_refuse),
        T(config_tier_self_report_defaults_on_and_can_be_switched_off),
        T(config_valid_file_reads_providers_and_prices),
        T(config_budget_in_usd_becomes_micro_dollars),
        T(config_valid_file_fills_defaults),
        T(config_kafka_properties_pass_through_as_strings),
        T(config_minimal_file_defaults_routing_to_the_first_tier),
        T(config_route_type_maps_known_types),
        T(config_route_type_sends_unknown_types_to_default_tier),
        T(config_topic_joins_prefix_and_suffix),
        T(config_topic_uses_the_configured_prefix),
        T(config_reads_anthropic_kind_and_provider_limits),
        T(config_destroy_accepts_null),
    };

    return cmocka_run_group_tests_name("config_read", tests, NULL, NULL);
}
