/*
 * test_route_cases.c - the router's tier decision, table-driven.
 *
 * Every .json file in tests/fixtures/routing/ but the config*.json files
 * is an array of cases:
 *   {"name": "...", "task": {...a task as on the wire...},
 *    "config": "config_x.json",             (optional; default config.json)
 *    "config_overrides": ["key=value", ...],              (optional)
 *    "budget_spent": ["frontier", ...],   (optional: tiers whose budget is
 *                                          spent; absent: budgets unknown)
 *    "score": 0.7,                         (optional learned score)
 *    "escalation": {"from_tier": "...", "hop": 1,
 *                   "cost_so_far_usd": 0.01}    (optional: route the task
 *                                                as an escalation)
 *    "expect": {"tier": "...", "reason": "...",
 *               "action": "publish|defer|reject|stop",  (default publish)
 *               "status": "budget_exceeded|low_confidence"} (reject/stop)
 *           or {"error": "invalid", "detail_contains": "..."}}
 * Each case becomes one named cmocka test: it loads config.json (tiers
 * local and open, both local; mid; frontier) or the case's config with
 * the case's -X overrides, decodes the task with the real JSON codec and
 * routes it.
 * The fixture directory is route_fixture.h's. Routing rules and their
 * configuration outside the table are in test_route_rules.c.
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
#include <dirent.h>

#include "base/util.h"
#include "config/config.h"
#include "route_fixture.h"
#include "wire/codec.h"

/* The module under test: not in libkascade.a (see above). */
#include "../../router/route.c"

#include "base/banned.h"

#define MAX_OVERRIDES 8
#define MAX_TIERS     16

/* Every case, kept for the whole run (cmocka's initial_state points in). */
static cJSON *all_cases;

/* A case written here, for the tests that are not table rows. */
static cJSON *inline_case;

/* What one case test holds, freed by teardown even when it fails. */
struct case_ctx {
    const cJSON *tc;
    struct ks_config *cfg;
    struct ks_task *task;
    char *task_text;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the cases of one fixture file to all_cases, each tagged with
 * its file in "file". Returns 0 or -1 (printed). */
static int load_case_file(const char *name)
{
    char path[1400];
    char *text;
    cJSON *arr, *tc;

    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    text = read_text(path);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    arr = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        fprintf(stderr, "%s: not a non-empty JSON array of cases\n", path);
        cJSON_Delete(arr);
        return -1;
    }
    while ((tc = cJSON_DetachItemFromArray(arr, 0)) != NULL) {
        cJSON_AddStringToObject(tc, "file", name);
        cJSON_AddItemToArray(all_cases, tc);
    }
    cJSON_Delete(arr);
    return 0;
}

/* Loads every *.json but the config*.json configs, in name order. */
static int load_all_cases(void)
{
    DIR *dir = opendir(fixture_dir);
    struct dirent *de;
    char *names[64];
    size_t n = 0;
    int ret = 0;

    if (!dir) {
        fprintf(stderr, "cannot open %s (set KASCADE_FIXTURES)\n", fixture_dir);
        return -1;
    }
    while ((de = readdir(dir)) != NULL && n < 64) {
        size_t len = strlen(de->d_name);

        if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0 &&
            strncmp(de->d_name, "config", 6) != 0) {
            names[n++] = ks_xstrdup(de->d_name);
        }
    }
    closedir(dir);
    qsort(names, n, sizeof(names[0]), by_name);
    all_cases = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (ret == 0 && load_case_file(names[i]) != 0) {
            ret = -1;
        }
        free(names[i]);
    }
    return ret;
}

static const char *case_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int case_setup(void **state)
{
    struct case_ctx *ctx = ks_xcalloc(1, sizeof(*ctx));

    ctx->tc = *state;
    *state = ctx;
    return 0;
}

static int case_teardown(void **state)
{
    struct case_ctx *ctx = *state;

    ks_task_destroy(ctx->task);
    ks_config_destroy(ctx->cfg);
    free(ctx->task_text);
    free(ctx);
    return 0;
}

static void load_routing_config(struct case_ctx *ctx)
{
    const cJSON *ov =
        cJSON_GetObjectItemCaseSensitive(ctx->tc, "config_overrides");
    const char *overrides[MAX_OVERRIDES];
    size_t n = 0;
    char path[1100];
    char errstr[512];
    const cJSON *item;

    cJSON_ArrayForEach(item, ov) {
        if (!cJSON_IsString(item) || n == MAX_OVERRIDES) {
            fail_msg("config_overrides: at most %d strings", MAX_OVERRIDES);
        }
        overrides[n++] = item->valuestring;
    }
    snprintf(path, sizeof(path), "%s/%s", fixture_dir,
             case_str(ctx->tc, "config") ? case_str(ctx->tc, "config")
                                         : "config.json");
    ctx->cfg = ks_config_load(path, overrides, n, errstr, sizeof(errstr));
    if (!ctx->cfg) {
        fail_msg("routing config: %s", errstr);
    }
}

static void decode_task(struct case_ctx *ctx)
{
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(ctx->tc, "task");
    struct ks_codec_error cerr = {0};
    enum ks_err err;

    if (!cJSON_IsObject(task)) {
        fail_msg("case has no \"task\" object");
    }
    ctx->task_text = cJSON_PrintUnformatted(task);
    assert_non_null(ctx->task_text);
    err = ks_task_decode(KS_FORMAT_JSON, ctx->task_text, strlen(ctx->task_text),
                         &ctx->cfg->limits, &ctx->task, &cerr);
    if (err != KS_OK) {
        fail_msg("task does not decode: %s: %s", cerr.code ? cerr.code : "?",
                 cerr.detail);
    }
}

static const char *const action_names[] = {"publish", "defer", "reject",
                                           "stop"};

/* The case's budget_spent list as flags, and its score. */
static void case_state(struct case_ctx *ctx,
                       struct route_state *st,
                       bool spent[MAX_TIERS])
{
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(ctx->tc, "budget_spent");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(ctx->tc, "score");
    const cJSON *item;

    assert_true(ctx->cfg->n_tiers <= MAX_TIERS);
    memset(spent, 0, MAX_TIERS * sizeof(bool));
    st->score = cJSON_IsNumber(sc) ? sc->valuedouble : -1;
    st->tier_spent = bs ? spent : NULL;
    cJSON_ArrayForEach(item, bs) {
        int t = cJSON_IsString(item)
                    ? ks_config_tier_index(ctx->cfg, item->valuestring)
                    : -1;

        if (t < 0) {
            fail_msg("budget_spent: no tier named %s",
                     cJSON_IsString(item) ? item->valuestring : "?");
        }
        spent[t] = true;
    }
}

static int route_as_escalation(struct case_ctx *ctx,
                               const cJSON *esc,
                               const struct route_state *st,
                               struct route_decision *d)
{
    const char *from = case_str(esc, "from_tier");
    const cJSON *hop = cJSON_GetObjectItemCaseSensitive(esc, "hop");
    const cJSON *cost =
        cJSON_GetObjectItemCaseSensitive(esc, "cost_so_far_usd");
    int t = from ? ks_config_tier_index(ctx->cfg, from) : -1;

    if (t < 0) {
        fail_msg("escalation.from_tier: no tier named %s", from ? from : "?");
    }
    return route_escalation(
        ctx->cfg, ctx->task, t,
        cJSON_IsNumber(hop) ? (uint32_t)hop->valueint : 0,
        cJSON_IsNumber(cost) ? ks_usd_to_micro(cost->valuedouble) : 0, st, d);
}

/* One fixture case: route the task and compare with "expect". */
static void route_case(void **state)
{
    struct case_ctx *ctx = *state;
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(ctx->tc, "expect");
    const cJSON *esc = cJSON_GetObjectItemCaseSensitive(ctx->tc, "escalation");
    const char *want_tier = case_str(expect, "tier");
    const char *want_reason = case_str(expect, "reason");
    const char *want_error = case_str(expect, "error");
    const char *want_detail = case_str(expect, "detail_contains");
    const char *want_action = case_str(expect, "action");
    const char *want_status = case_str(expect, "status");
    struct route_decision d;
    struct route_state st;
    bool spent[MAX_TIERS];
    int r;

    if (!want_action) {
        want_action = "publish";
    }
    if (!(want_reason && (want_tier || strcmp(want_action, "publish") != 0)) &&
        !(want_error && want_detail)) {
        fail_msg("\"expect\" needs tier and reason (or an action and "
                 "reason), or error and detail_contains");
    }
    load_routing_config(ctx);
    decode_task(ctx);
    case_state(ctx, &st, spent);
    memset(&d, 0xa5, sizeof(d));
    r = esc ? route_as_escalation(ctx, esc, &st, &d)
            : route_task(ctx->cfg, ctx->task, NULL, &st, &d);
    if (want_error) {
        if (r != -1) {
            fail_msg("routed to tier %d (%s), expected error %s", d.tier,
                     d.reason, want_error);
        }
        assert_non_null(d.error);
        assert_string_equal(d.error, want_error);
        if (!strstr(d.detail, want_detail)) {
            fail_msg("detail \"%s\" lacks \"%s\"", d.detail, want_detail);
        }
        return;
    }
    if (r != 0) {
        fail_msg("refused: %s: %s", d.error ? d.error : "?", d.detail);
    }
    assert_null(d.error);
    assert_in_range(d.action, ROUTE_PUBLISH, ROUTE_STOP);
    assert_string_equal(action_names[d.action], want_action);
    assert_string_equal(d.reason, want_reason);
    if (want_tier) {
        assert_in_range(d.tier, 0, ctx->cfg->n_tiers - 1);
        assert_string_equal(ctx->cfg->tiers[d.tier].name, want_tier);
    }
    if (want_status) {
        assert_string_equal(ks_status_str(d.stop_status), want_status);
    }
    if (want_detail && !strstr(d.detail, want_detail)) {
        fail_msg("detail \"%s\" lacks \"%s\"", d.detail, want_detail);
    }
}

/* Guards the table itself: a lost fixture file must not pass silently. */
static void route_fixtures_cover_every_reason_and_error(void **state)
{
    static const char *const reasons[] = {
        "task_type",     "default_tier",   "min_tier",         "max_tier",
        "local_only",    "context_window", "rule:legal",       "risk_high",
        "risk:medical",  "score",          "budget_downgrade", "budget_defer",
        "budget_reject", "escalation",     "max_hops",         "max_cost",
        "budget",        "no_tier"};
    static const char *const details[] = {"hints.min_tier", "hints.max_tier",
                                          "is above max_tier",
                                          "hints.local_only", "context_window"};
    const cJSON *tc;

    (void)state;
    assert_true(cJSON_GetArraySize(all_cases) >= 20);
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        bool seen = false;

        cJSON_ArrayForEach(tc, all_cases) {
            const char *r = case_str(
                cJSON_GetObjectItemCaseSensitive(tc, "expect"), "reason");

            seen |= r && strcmp(r, reasons[i]) == 0;
        }
        if (!seen) {
            fail_msg("no fixture case expects reason %s", reasons[i]);
        }
    }
    for (size_t i = 0; i < sizeof(details) / sizeof(details[0]); i++) {
        bool seen = false;

        cJSON_ArrayForEach(tc, all_cases) {
            const char *s =
                case_str(cJSON_GetObjectItemCaseSensitive(tc, "expect"),
                         "detail_contains");

            seen |= s && strstr(s, details[i]) != NULL;
        }
        if (!seen) {
            fail_msg("no fixture case expects an error about %s", details[i]);
        }
    }
}

/* route_task fills every field, whatever the caller's struct held. */
static void route_decision_is_cleared_before_use(void **state)
{
    struct case_ctx *ctx = *state;
    struct route_decision d;

    load_routing_config(ctx);
    decode_task(ctx);
    memset(&d, 0xa5, sizeof(d));
    d.error = "stale";
    assert_int_equal(route_task(ctx->cfg, ctx->task, NULL, NULL, &d), 0);
    assert_null(d.error);
    assert_int_equal(d.action, ROUTE_PUBLISH);
    assert_int_equal(d.detail[0], '\0');
    assert_int_equal(d.tier, 0);
    assert_string_equal(d.reason, "task_type");
}

/* The tests main() lists before the table's cases. */
#define N_FIXED 2

int main(void)
{
    struct CMUnitTest *tests;
    char **names;
    size_t n_cases, n = 0;
    const cJSON *tc;
    int failed;

    find_fixture_dir();
    inline_case = cJSON_Parse("{\"task\": {\"id\": \"c1\", \"type\": "
                              "\"classify_intent\", \"input\": \"x\"}}");
    if (load_all_cases() != 0) {
        cJSON_Delete(all_cases);
        cJSON_Delete(inline_case);
        return 1;
    }
    n_cases = (size_t)cJSON_GetArraySize(all_cases);
    tests = ks_xcalloc(n_cases + N_FIXED, sizeof(*tests));
    names = ks_xcalloc(n_cases, sizeof(*names));
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(
        route_fixtures_cover_every_reason_and_error);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test_prestate_setup_teardown(
        route_decision_is_cleared_before_use, case_setup, case_teardown,
        inline_case);
    cJSON_ArrayForEach(tc, all_cases) {
        const char *file = case_str(tc, "file");
        const char *name = case_str(tc, "name");
        struct ks_buf buf;

        ks_buf_init(&buf);
        ks_buf_printf(&buf, "route %s: %s", file, name ? name : "(unnamed)");
        names[n - N_FIXED] = ks_buf_take(&buf);
        tests[n].name = names[n - N_FIXED];
        tests[n].test_func = route_case;
        tests[n].setup_func = case_setup;
        tests[n].teardown_func = case_teardown;
        tests[n].initial_state = (void *)tc;
        n++;
    }
    failed = _cmocka_run_group_tests("route", tests, n, NULL, NULL);
    for (size_t i = 0; i < n_cases; i++) {
        free(names[i]);
    }
    free(names);
    free(tests);
    cJSON_Delete(all_cases);
    cJSON_Delete(inline_case);
    return failed;
}
