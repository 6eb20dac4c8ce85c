/*
 * routing.c - the routing and router sections of the config: the
 * task-type table, rules (PCRE2 patterns compiled once, here, with the
 * bounds of rule.h),
 * risk-domain floors, the learned score's settings, and the router's own
 * keys. Split from read.c; same conventions: every unknown key and
 * bad value is refused with its key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "config/rule.h"
#include "config/tree.h"

#include "base/banned.h"

static int tier_ref(const struct ks_config *cfg,
                    const char *name,
                    const char *key,
                    int *out,
                    struct cfg_ctx *ctx)
{
    *out = ks_config_tier_index(cfg, name);
    if (*out < 0) {
        cfg_fail(ctx, key, "no tier named '%s'", name);
        return -1;
    }
    return 0;
}

const char *const ks_risk_domain_names[KS_RISK_DOMAINS] = {
    "legal", "medical", "finance", "compliance"};

/* One entry of routing.rules: {"name", "pattern", "keywords", "min_tier"}. */
static int read_rule(struct ks_config *cfg,
                     struct ks_route_rule *rule,
                     const cJSON *o,
                     const char *path,
                     struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"name", "pattern", "keywords",
                                       "min_tier", NULL};
    const cJSON *kws, *kw;
    char key[CFG_KEY_MAX];
    char *pattern = NULL, *tier = NULL;

    if (!cJSON_IsObject(o)) {
        cfg_fail(ctx, path,
                 "must be an object {name, pattern, keywords, "
                 "min_tier}");
        return -1;
    }
    if (cfg_check_keys(o, path, keys, ctx) ||
        cfg_get_str(o, "name", path, NULL, &rule->name, ctx) ||
        cfg_get_str(o, "pattern", path, NULL, &pattern, ctx) ||
        cfg_get_str(o, "min_tier", path, NULL, &tier, ctx)) {
        goto fail;
    }
    if (!rule->name || !cfg_is_name(rule->name)) {
        cfg_fail(ctx, cfg_key_of(key, path, "name"),
                 "missing or not [a-z0-9_-]{1,64}");
        goto fail;
    }
    if (!tier) {
        cfg_fail(ctx, cfg_key_of(key, path, "min_tier"), "missing");
        goto fail;
    }
    if (tier_ref(cfg, tier, cfg_key_of(key, path, "min_tier"), &rule->min_tier,
                 ctx)) {
        goto fail;
    }
    kws = cJSON_GetObjectItemCaseSensitive(o, "keywords");
    if (kws && !cJSON_IsArray(kws)) {
        cfg_fail(ctx, cfg_key_of(key, path, "keywords"),
                 "must be an array of strings");
        goto fail;
    }
    rule->keywords =
        ks_xcalloc((size_t)cJSON_GetArraySize(kws) + 1, sizeof(char *));
    cJSON_ArrayForEach(kw, kws) {
        if (!cJSON_IsString(kw) || !kw->valuestring[0]) {
            cfg_fail(ctx, cfg_key_of(key, path, "keywords"),
                     "must be an array of non-empty strings");
            goto fail;
        }
        rule->keywords[rule->n_keywords++] = ks_xstrdup(kw->valuestring);
    }
    if (pattern) {
        char why[256];

        rule->re =
            ks_rule_re_new(pattern, cfg->rules_match_limit, why, sizeof(why));
        if (!rule->re) {
            cfg_fail(ctx, cfg_key_of(key, path, "pattern"),
                     "not a usable PCRE2 pattern: %s", why);
            goto fail;
        }
        rule->pattern = pattern; /* compiled: destroy frees it */
        pattern = NULL;
    }
    if (!rule->pattern && rule->n_keywords == 0) {
        cfg_fail(ctx, path, "needs a pattern or keywords");
        goto fail;
    }
    free(tier);
    return 0;

fail:
    free(pattern);
    free(tier);
    return -1;
}

/* routing.rules, routing.high_risk_tier, routing.risk_domains. */
static int read_rules(struct ks_config *cfg,
                      const cJSON *o,
                      struct cfg_ctx *ctx)
{
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(o, "rules");
    const cJSON *doms = cJSON_GetObjectItemCaseSensitive(o, "risk_domains");
    const cJSON *item;
    char key[CFG_KEY_MAX];
    char *hr = NULL;
    int r;

    if (cfg_get_str(o, "high_risk_tier", "routing",
                    cfg->tiers[cfg->n_tiers - 1].name, &hr, ctx)) {
        return -1;
    }
    r = tier_ref(cfg, hr, "routing.high_risk_tier", &cfg->high_risk_tier, ctx);
    free(hr);
    if (r) {
        return -1;
    }
    if (rules && !cJSON_IsArray(rules)) {
        cfg_fail(ctx, "routing.rules", "must be an array of rules");
        return -1;
    }
    if (cJSON_GetArraySize(rules) > KS_RULES_MAX) {
        cfg_fail(ctx, "routing.rules", "more than %d rules", KS_RULES_MAX);
        return -1;
    }
    cfg->rules =
        ks_xcalloc((size_t)cJSON_GetArraySize(rules) + 1, sizeof(*cfg->rules));
    cJSON_ArrayForEach(item, rules) {
        snprintf(key, sizeof(key), "routing.rules[%zu]", cfg->n_rules);
        /* Counted first, so destroy frees a half-read rule too. */
        if (read_rule(cfg, &cfg->rules[cfg->n_rules++], item, key, ctx)) {
            return -1;
        }
        for (size_t i = 0; i + 1 < cfg->n_rules; i++) {
            if (strcmp(cfg->rules[i].name, cfg->rules[cfg->n_rules - 1].name) ==
                0) {
                cfg_fail(ctx, key, "duplicate rule name '%s'",
                         cfg->rules[i].name);
                return -1;
            }
        }
    }
    for (int i = 0; i < KS_RISK_DOMAINS; i++) {
        cfg->risk_domain_tier[i] = -1;
    }
    if (!doms) {
        return 0;
    }
    if (!cJSON_IsObject(doms)) {
        cfg_fail(ctx, "routing.risk_domains", "must be an object domain: tier");
        return -1;
    }
    cJSON_ArrayForEach(item, doms) {
        int d = 0;

        cfg_key_of(key, "routing.risk_domains", item->string);
        while (d < KS_RISK_DOMAINS &&
               strcmp(ks_risk_domain_names[d], item->string) != 0) {
            d++;
        }
        if (d == KS_RISK_DOMAINS) {
            cfg_fail(ctx, key,
                     "unknown risk domain (known: legal, medical, finance, "
                     "compliance)");
            return -1;
        }
        if (!cJSON_IsString(item)) {
            cfg_fail(ctx, key, "must be a tier name");
            return -1;
        }
        if (tier_ref(cfg, item->valuestring, key, &cfg->risk_domain_tier[d],
                     ctx)) {
            return -1;
        }
    }
    return 0;
}

int cfg_read_routing(struct ks_config *cfg,
                     const cJSON *root,
                     struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"default_tier",
                                       "max_hops",
                                       "task_types",
                                       "rules",
                                       "high_risk_tier",
                                       "risk_domains",
                                       "score_model",
                                       "score_threshold",
                                       "rules_max_scan_bytes",
                                       "rules_match_limit",
                                       NULL};
    const cJSON *o = cfg_section(root, "routing", keys, ctx);
    const cJSON *types, *item;
    char key[CFG_KEY_MAX];
    char *def = NULL;
    int64_t scan = 0, limit = 0;
    int r;

    if (!o ||
        cfg_get_int32(o, "max_hops", "routing", 3, 0, 64, &cfg->max_hops,
                      ctx) ||
        cfg_get_str(o, "default_tier", "routing", cfg->tiers[0].name, &def,
                    ctx) ||
        cfg_get_str(o, "score_model", "routing", NULL, &cfg->score_model,
                    ctx) ||
        cfg_get_num(o, "score_threshold", "routing", 0.5, 0, 1,
                    &cfg->score_threshold, ctx) ||
        cfg_get_int(o, "rules_max_scan_bytes", "routing", 16384, 1, 1024 * 1024,
                    &scan, ctx) ||
        cfg_get_int(o, "rules_match_limit", "routing",
                    KS_RULE_MATCH_LIMIT_DEFAULT, 1, 100000000, &limit, ctx)) {
        free(def);
        return -1;
    }
    cfg->rules_max_scan_bytes = (size_t)scan;
    cfg->rules_match_limit = (uint32_t)limit;
    r = tier_ref(cfg, def, "routing.default_tier", &cfg->default_tier, ctx);
    free(def);
    if (r || read_rules(cfg, o, ctx)) {
        return -1;
    }
    types = cJSON_GetObjectItemCaseSensitive(o, "task_types");
    if (!types) {
        return 0;
    }
    if (!cJSON_IsObject(types)) {
        cfg_fail(ctx, "routing.task_types", "must be an object type: tier");
        return -1;
    }
    cfg->routes =
        ks_xcalloc((size_t)cJSON_GetArraySize(types) + 1, sizeof(*cfg->routes));
    cJSON_ArrayForEach(item, types) {
        struct ks_type_route *rt = &cfg->routes[cfg->n_routes];

        cfg_key_of(key, "routing.task_types", item->string);
        if (!cJSON_IsString(item)) {
            cfg_fail(ctx, key, "must be a tier name");
            return -1;
        }
        if (tier_ref(cfg, item->valuestring, key, &rt->tier, ctx)) {
            return -1;
        }
        rt->type = ks_xstrdup(item->string);
        cfg->n_routes++;
    }
    return 0;
}

/* The router section: settings of kascade-router only. */
int cfg_read_router(struct ks_config *cfg,
                    const cJSON *root,
                    struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"max_deferred", "transactions",
                                       "instance", NULL};
    const cJSON *o = cfg_section(root, "router", keys, ctx);

    /* max_deferred bounded the tasks held in memory, which the deferred
     * topic replaced: an old config still loads, and the router warns
     * (router_new) instead of ignoring it silently. */
    if (o) {
        cfg->router_max_deferred_set =
            cJSON_GetObjectItemCaseSensitive(o, "max_deferred") != NULL;
    }
    if (!o ||
        cfg_get_bool(o, "transactions", "router", false,
                     &cfg->router_transactions, ctx) ||
        cfg_get_str(o, "instance", "router", NULL, &cfg->router_instance,
                    ctx)) {
        return -1;
    }
    if (cfg->router_instance && !cfg_is_name(cfg->router_instance)) {
        cfg_fail(ctx, "router.instance", "not [a-z0-9_-]{1,64}");
        return -1;
    }
    return 0;
}
