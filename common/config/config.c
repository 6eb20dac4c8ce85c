/*
 * config.c - loading and validating kascade.json.
 *
 * The file is parsed into a cJSON tree, environment variables and -X
 * overrides are written into that tree, and only then is the tree checked
 * and copied into struct ks_config: so an override is validated exactly
 * like the file, and every error carries the same "FILE: key 'K': reason"
 * form. Unknown keys are errors: a typo must not silently fall back to a
 * default.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"
#include "config/tree.h"

#include "base/banned.h"

#define CONFIG_MAX_BYTES (1024 * 1024)

/* Environment variables and the config keys they set. */
static const struct {
    const char *env;
    const char *key;
} env_keys[] = {
    {"KASCADE_BOOTSTRAP_SERVERS", "kafka.bootstrap.servers"},
    {"KASCADE_REDIS_URL", "redis.url"},
    {"KASCADE_TOPICS_PREFIX", "topics.prefix"},
    {"KASCADE_METRICS_PORT", "metrics.port"},
    {"KASCADE_LOG_LEVEL", "log.level"},
    /* Secrets of the Kafka connection stay out of the file. */
    {"KASCADE_KAFKA_SASL_USERNAME", "kafka.sasl.username"},
    {"KASCADE_KAFKA_SASL_PASSWORD", "kafka.sasl.password"},
};

static char *read_file(const char *path, struct cfg_ctx *ctx)
{
    char errbuf[128];
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = fopen(path, "rb");

    if (!fp) {
        cfg_fail(ctx, NULL, "cannot open: %s",
                 ks_strerror(errno, errbuf, sizeof(errbuf)));
        return NULL;
    }
    buf = ks_xmalloc(CONFIG_MAX_BYTES + 1);
    len = fread(buf, 1, CONFIG_MAX_BYTES + 1, fp);
    if (ferror(fp)) {
        cfg_fail(ctx, NULL, "read error");
        goto out_free_buf;
    }
    if (len > CONFIG_MAX_BYTES) {
        cfg_fail(ctx, NULL, "larger than %d bytes", CONFIG_MAX_BYTES);
        goto out_free_buf;
    }
    buf[len] = '\0';
    fclose(fp);
    return buf;

out_free_buf:
    free(buf);
    fclose(fp);
    return NULL;
}

static cJSON *parse_tree(const char *path, struct cfg_ctx *ctx)
{
    const char *end = NULL;
    char *text = read_file(path, ctx);
    cJSON *root;

    if (!text) {
        return NULL;
    }
    root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        int line = 1;

        for (const char *p = text; end && p < end; p++) {
            line += *p == '\n';
        }
        cfg_fail(ctx, NULL, "not valid JSON (near line %d)", line);
    } else if (!cJSON_IsObject(root)) {
        cfg_fail(ctx, NULL, "the top level must be an object");
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    return root;
}

static int apply_overrides(cJSON *root,
                           const char *const *overrides,
                           size_t n_overrides,
                           struct cfg_ctx *ctx)
{
    for (size_t i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++) {
        const char *v = getenv(env_keys[i].env);

        if (v && *v && cfg_tree_set(root, env_keys[i].key, v, ctx) != 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < n_overrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        char *key;
        int r;

        if (!eq || eq == overrides[i]) {
            cfg_fail(ctx, overrides[i], "an override must be key=value");
            return -1;
        }
        key = ks_xstrndup(overrides[i], (size_t)(eq - overrides[i]));
        r = cfg_tree_set(root, key, eq + 1, ctx);
        free(key);
        if (r != 0) {
            return -1;
        }
    }
    return 0;
}

struct ks_config *ks_config_load(const char *path,
                                 const char *const *overrides,
                                 size_t n_overrides,
                                 char *errstr,
                                 size_t errstr_size)
{
    struct cfg_ctx ctx = {path, errstr, errstr_size, 0, NULL, 0};
    struct ks_config *cfg = NULL;
    cJSON *root = parse_tree(path, &ctx);

    if (!root) {
        return NULL;
    }
    if (apply_overrides(root, overrides, n_overrides, &ctx) != 0) {
        goto out_free_root;
    }
    cfg = ks_xcalloc(1, sizeof(*cfg));
    cfg->path = ks_xstrdup(path);
    if (cfg_read_tree(cfg, root, &ctx) != 0) {
        ks_config_destroy(cfg);
        cfg = NULL;
    }

out_free_root:
    free(ctx.overridden);
    cJSON_Delete(root);
    return cfg;
}

static void free_provider(struct ks_provider_cfg *p)
{
    free(p->kind);
    free(p->base_url);
    free(p->model);
    free(p->api_key_env);
    free(p->model_file);
}

void ks_config_destroy(struct ks_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    cfg_free_signals(cfg);
    for (size_t i = 0; i < cfg->n_tiers; i++) {
        for (size_t j = 0; j < cfg->tiers[i].n_providers; j++) {
            free_provider(&cfg->tiers[i].providers[j]);
        }
        free(cfg->tiers[i].providers);
        free(cfg->tiers[i].name);
        free(cfg->tiers[i].prompt);
        free(cfg->tiers[i].escalation_prompt);
        for (size_t j = 0; j < cfg->tiers[i].n_escalate_below_types; j++) {
            free(cfg->tiers[i].escalate_below_types[j].type);
        }
        free(cfg->tiers[i].escalate_below_types);
    }
    free(cfg->tiers);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        free(cfg->routes[i].type);
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->n_rules; i++) {
        struct ks_route_rule *rule = &cfg->rules[i];

        if (rule->pattern) {
            ks_rule_re_destroy(rule->re);
        }
        for (size_t j = 0; j < rule->n_keywords; j++) {
            free(rule->keywords[j]);
        }
        free(rule->keywords);
        free(rule->pattern);
        free(rule->name);
    }
    free(cfg->rules);
    free(cfg->score_model);
    free(cfg->router_instance);
    for (size_t i = 0; i < cfg->n_tenants; i++) {
        free(cfg->tenants[i].name);
    }
    free(cfg->tenants);
    free(cfg->path);
    free(cfg->redis_url);
    free(cfg->redis_prefix);
    free(cfg->topic_prefix);
    for (size_t i = 0; i < cfg->n_reply_to_allow; i++) {
        free(cfg->reply_to_allow[i]);
    }
    free(cfg->reply_to_allow);
    free(cfg->metrics_host);
    free(cfg->log_level);
    free(cfg);
}

int ks_config_tier_index(const struct ks_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_tiers; i++) {
        if (strcmp(cfg->tiers[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int ks_config_route_type(const struct ks_config *cfg, const char *type)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        if (strcmp(cfg->routes[i].type, type) == 0) {
            return cfg->routes[i].tier;
        }
    }
    return cfg->default_tier;
}

double ks_config_escalate_below(const struct ks_tier_cfg *tier,
                                const char *type)
{
    for (size_t i = 0; i < tier->n_escalate_below_types; i++) {
        if (strcmp(tier->escalate_below_types[i].type, type) == 0) {
            return tier->escalate_below_types[i].value;
        }
    }
    return tier->escalate_below;
}

int64_t ks_config_tenant_limit(const struct ks_config *cfg, const char *tenant)
{
    for (size_t i = 0; i < cfg->n_tenants; i++) {
        if (strcmp(cfg->tenants[i].name, tenant) == 0) {
            return cfg->tenants[i].limit_micro;
        }
    }
    return cfg->default_tenant_micro;
}

int64_t ks_config_budget_now_ms(const struct ks_config *cfg)
{
    return ks_wall_ms() + cfg->clock_offset_ms;
}

void ks_config_topic(const struct ks_config *cfg,
                     const char *suffix,
                     char *buf,
                     size_t size)
{
    snprintf(buf, size, "%s%s", cfg->topic_prefix, suffix);
}

const char *ks_config_topic_tenant(const struct ks_config *cfg,
                                   const char *topic)
{
    char base[KS_TOPIC_MAX];
    size_t n;

    if (!cfg->tenant_topics) {
        return NULL;
    }
    ks_config_topic(cfg, "tasks.", base, sizeof(base));
    n = strlen(base);
    return strncmp(topic, base, n) == 0 && topic[n] ? topic + n : NULL;
}
