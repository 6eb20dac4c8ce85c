/*
 * test_route_rules.c - the router's rules and its routing configuration
 * outside the case table: bad rules and risk domains refused at start-up
 * naming the key, defaults of a good rule set, the obsolete
 * router.max_deferred, a rule's match limit and scan window, and a kept
 * rules step. The fixture directory is route_fixture.h's.
 *
 * route.c lives in router/, which libkascade.a does not contain, so it is
 * compiled into this test by including it below.
 */
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

#include "base/util.h"
#include "config/config.h"
#include "route_fixture.h"
#include "wire/codec.h"

/* The module under test: not in libkascade.a (see above). */
#include "../../router/route.c"

#include "base/banned.h"

/* Writes config.json with routing.<key> set to the JSON text value into
 * a temporary file and loads it. Returns the config (or NULL, errstr set). */
static struct ks_config *load_with_routing(const char *key,
                                           const char *value,
                                           char *errstr,
                                           size_t errstr_size)
{
    char path[1100], tmp[] = "/tmp/test_route_cfg.XXXXXX";
    struct ks_config *cfg;
    cJSON *root, *routing;
    char *text;
    FILE *fp;
    int fd;

    snprintf(path, sizeof(path), "%s/config.json", fixture_dir);
    text = read_text(path);
    assert_non_null(text);
    root = cJSON_Parse(text);
    free(text);
    routing = cJSON_GetObjectItemCaseSensitive(root, "routing");
    cJSON_AddItemToObject(routing, key, cJSON_Parse(value));
    text = cJSON_Print(root);
    cJSON_Delete(root);
    fd = mkstemp(tmp);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    free(text);
    cfg = ks_config_load(tmp, NULL, 0, errstr, errstr_size);
    unlink(tmp);
    return cfg;
}

/* Bad rules and risk domains stop start-up naming the key and why. */
static void route_config_refuses_bad_rules(void **state)
{
    static const struct {
        const char *key, *value, *want;
    } bad[] = {
        {"rules",
         "[{\"name\": \"x\", \"pattern\": \"(a\", "
         "\"min_tier\": \"mid\"}]",
         "key 'routing.rules[0].pattern': not a usable PCRE2 pattern: "
         "missing closing parenthesis at offset 2"},
        {"rules",
         "[{\"name\": \"x\", \"pattern\": \"\\\\Qab\", "
         "\"min_tier\": \"mid\"}]",
         "key 'routing.rules[0].pattern': not a usable PCRE2 pattern: "
         "cannot be matched with a bound"},
        {"rules_max_scan_bytes", "0", "key 'routing.rules_max_scan_bytes'"},
        {"rules_match_limit", "0", "key 'routing.rules_match_limit'"},
        {"rules", "[{\"name\": \"x\", \"min_tier\": \"mid\"}]",
         "key 'routing.rules[0]': needs a pattern or keywords"},
        {"rules",
         "[{\"name\": \"x\", \"keywords\": [\"a\"], "
         "\"min_tier\": \"huge\"}]",
         "key 'routing.rules[0].min_tier': no tier named 'huge'"},
        {"rules", "[{\"name\": \"x\", \"keywords\": [\"a\"]}]",
         "key 'routing.rules[0].min_tier': missing"},
        {"rules",
         "[{\"name\": \"x\", \"keywords\": [1], "
         "\"min_tier\": \"mid\"}]",
         "key 'routing.rules[0].keywords'"},
        {"rules",
         "[{\"name\": \"Bad Name\", \"keywords\": [\"a\"], "
         "\"min_tier\": \"mid\"}]",
         "key 'routing.rules[0].name'"},
        {"rules",
         "[{\"name\": \"x\", \"keywords\": [\"a\"], "
         "\"min_tier\": \"mid\"}, {\"name\": \"x\", "
         "\"keywords\": [\"b\"], \"min_tier\": \"mid\"}]",
         "key 'routing.rules[1]': duplicate rule name 'x'"},
        {"rules", "{}", "key 'routing.rules': must be an array"},
        {"risk_domains", "{\"astrology\": \"mid\"}",
         "key 'routing.risk_domains.astrology': unknown risk domain"},
        {"risk_domains", "{\"medical\": \"huge\"}",
         "key 'routing.risk_domains.medical': no tier named 'huge'"},
        {"high_risk_tier", "\"huge\"",
         "key 'routing.high_risk_tier': no tier named 'huge'"},
        {"score_threshold", "1.5", "key 'routing.score_threshold'"},
    };
    char errstr[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ks_config *cfg =
            load_with_routing(bad[i].key, bad[i].value, errstr, sizeof(errstr));

        if (cfg) {
            ks_config_destroy(cfg);
            fail_msg("routing.%s = %s was accepted", bad[i].key, bad[i].value);
        }
        if (!strstr(errstr, bad[i].want)) {
            fail_msg("error \"%s\" lacks \"%s\"", errstr, bad[i].want);
        }
    }
}

/* A good rule set loads, with defaults for what it leaves out. */
static void route_config_reads_rules_and_defaults(void **state)
{
    char errstr[512];
    struct ks_config *cfg = load_with_routing(
        "rules",
        "[{\"name\": \"legal\", \"pattern\": \"(contract|lawsuit)\", "
        "\"keywords\": [\"gdpr\", \"hipaa\"], \"min_tier\": "
        "\"frontier\"}]",
        errstr, sizeof(errstr));

    (void)state;
    assert_int_equal(cfg->n_rules, 1);
    assert_string_equal(cfg->rules[0].name, "legal");
    assert_int_equal(cfg->rules[0].n_keywords, 2);
    assert_int_equal(cfg->rules[0].min_tier, 3);
    assert_int_equal(cfg->high_risk_tier, 3); /* the top tier */
    for (int d = 0; d < KS_RISK_DOMAINS; d++) {
        assert_int_equal(cfg->risk_domain_tier[d], -1);
    }
    assert_null(cfg->score_model);
    assert_true(cfg->score_threshold == 0.5);
    assert_false(cfg->router_max_deferred_set);
    ks_config_destroy(cfg);
}

/* router.max_deferred, obsolete since the deferred topic: an old config
 * still loads, and the flag tells the router to warn that it is unused. */
static void route_config_accepts_obsolete_max_deferred_with_a_flag(void **state)
{
    static const char *const ov[] = {"router.max_deferred=500"};
    char errstr[512], path[1100];
    struct ks_config *cfg;

    (void)state;
    snprintf(path, sizeof(path), "%s/config.json", fixture_dir);
    cfg = ks_config_load(path, ov, 1, errstr, sizeof(errstr));
    if (!cfg) {
        fail_msg("a config with router.max_deferred was refused: %s", errstr);
    }
    assert_true(cfg->router_max_deferred_set);
    ks_config_destroy(cfg);
    cfg = ks_config_load(path, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(cfg);
    assert_false(cfg->router_max_deferred_set);
    ks_config_destroy(cfg);
}

/* task with input (JSON-escaped by cJSON), decoded with cfg's limits. */
static struct ks_task *task_with_input(const struct ks_config *cfg,
                                       const char *input)
{
    struct ks_codec_error cerr = {0};
    struct ks_task *task = NULL;
    cJSON *o = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(o, "id", "t1");
    cJSON_AddStringToObject(o, "type", "classify_intent");
    cJSON_AddStringToObject(o, "input", input);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_int_equal(ks_task_decode(KS_FORMAT_JSON, text, strlen(text),
                                    &cfg->limits, &task, &cerr),
                     KS_OK);
    free(text);
    return task;
}

/* "unit" repeated up to n bytes, then tail (caller owns). */
static char *repeat(const char *unit, size_t n, const char *tail)
{
    struct ks_buf buf;

    ks_buf_init(&buf);
    while (buf.len + strlen(unit) <= n) {
        ks_buf_append(&buf, unit, strlen(unit));
    }
    ks_buf_append(&buf, tail, strlen(tail) + 1);
    return ks_buf_take(&buf);
}

/* config.json with the rule refund: (urgent|asap).*refund -> frontier. */
static struct ks_config *load_refund_rule(void)
{
    char errstr[512];
    struct ks_config *cfg = load_with_routing(
        "rules",
        "[{\"name\": \"refund\", \"pattern\": \"(urgent|asap).*refund\", "
        "\"min_tier\": \"frontier\"}]",
        errstr, sizeof(errstr));

    if (!cfg) {
        fail_msg("%s", errstr);
    }
    return cfg;
}

/* The pattern of issue 9 on the input that made regexec take a minute:
 * it gives up at its match limit and counts as no match, noted in
 * limit_hits; an ordinary text still matches. */
static void route_rule_limit_hit_counts_as_no_match(void **state)
{
    struct ks_config *cfg = load_refund_rule();
    struct route_rules r;
    struct ks_task *task;
    char *input;

    (void)state;
    /* a "d" early, so that no required-character shortcut applies */
    input = repeat("urgent ", 14000, "refun d urgent urgent");
    task = task_with_input(cfg, input);
    route_task_rules(cfg, task, &r);
    assert_true(r.done);
    assert_int_equal(r.limit_hits, 1);
    assert_string_equal(cfg->tiers[r.tier].name, "local");
    assert_string_equal(r.reason, "task_type");
    ks_task_destroy(task);
    free(input);

    task = task_with_input(cfg, "urgent: I want a refund");
    route_task_rules(cfg, task, &r);
    assert_int_equal(r.limit_hits, 0);
    assert_string_equal(cfg->tiers[r.tier].name, "frontier");
    assert_string_equal(r.reason, "rule:refund");
    ks_task_destroy(task);
    ks_config_destroy(cfg);
}

/* By default the rules look at the first 16 KiB of a text. */
static void route_rules_scan_the_first_16_kib(void **state)
{
    struct ks_config *cfg = load_refund_rule();
    struct route_rules r;
    struct ks_task *task;
    char *input;

    (void)state;
    assert_int_equal(cfg->rules_max_scan_bytes, 16384);
    input = repeat("x", 16384 - 14, "urgent refund");
    task = task_with_input(cfg, input);
    route_task_rules(cfg, task, &r);
    assert_string_equal(r.reason, "rule:refund");
    ks_task_destroy(task);
    free(input);

    input = repeat("x", 16384 - 12, "urgent refund");
    task = task_with_input(cfg, input);
    route_task_rules(cfg, task, &r);
    assert_string_equal(r.reason, "task_type");
    assert_int_equal(r.limit_hits, 0);
    ks_task_destroy(task);
    free(input);
    ks_config_destroy(cfg);
}

/* route_task with a kept rules step uses it and does not look again. */
static void route_task_uses_the_kept_rules_step(void **state)
{
    struct ks_config *cfg = load_refund_rule();
    struct route_decision d;
    struct route_rules r;
    struct ks_task *task;

    (void)state;
    task = task_with_input(cfg, "hello");
    route_task_rules(cfg, task, &r);
    r.tier = 2; /* as if a rule had raised it: route_task keeps it */
    snprintf(r.reason, sizeof(r.reason), "rule:kept");
    assert_int_equal(route_task(cfg, task, &r, NULL, &d), 0);
    assert_string_equal(cfg->tiers[d.tier].name, "mid");
    assert_string_equal(d.reason, "rule:kept");
    ks_task_destroy(task);
    ks_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_config_refuses_bad_rules),
        cmocka_unit_test(route_config_reads_rules_and_defaults),
        cmocka_unit_test(
            route_config_accepts_obsolete_max_deferred_with_a_flag),
        cmocka_unit_test(route_rule_limit_hit_counts_as_no_match),
        cmocka_unit_test(route_rules_scan_the_first_16_kib),
        cmocka_unit_test(route_task_uses_the_kept_rules_step),
    };

    find_fixture_dir();
    return cmocka_run_group_tests_name("route_rules", tests, NULL, NULL);
}
