/*
 * read.c - the table of keys that turns the parsed tree into struct
 * ks_config: one reader per section, each rejecting keys it does not know
 * and reading the rest with the typed getters of tree.c. Defaults
 * live here, next to the key they belong to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "config/tree.h"

#include "base/banned.h"

/* ---- sections ----------------------------------------------------------- */

static int read_kafka(struct ks_config *cfg,
                      const cJSON *root,
                      struct cfg_ctx *ctx)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "kafka");
    const cJSON *item;
    char key[CFG_KEY_MAX];
    size_t n = 0;

    if (!obj) {
        cfg_fail(ctx, "kafka.bootstrap.servers",
                 "missing (set it in the file, KASCADE_BOOTSTRAP_SERVERS or "
                 "-X kafka.bootstrap.servers=HOST:PORT)");
        return -1;
    }
    if (!cJSON_IsObject(obj)) {
        cfg_fail(ctx, "kafka", "must be an object of librdkafka properties");
        return -1;
    }
    cfg->kafka =
        ks_xcalloc((size_t)cJSON_GetArraySize(obj) + 1, sizeof(*cfg->kafka));
    cJSON_ArrayForEach(item, obj) {
        char num[64];
        const char *v;

        if (cJSON_IsString(item)) {
            v = item->valuestring;
        } else if (cJSON_IsNumber(item)) {
            snprintf(num, sizeof(num), "%.17g", item->valuedouble);
            v = num;
        } else if (cJSON_IsBool(item)) {
            v = cJSON_IsTrue(item) ? "true" : "false";
        } else {
            cfg_fail(ctx, cfg_key_of(key, "kafka", item->string),
                     "must be a string, number or boolean");
            return -1;
        }
        cfg->kafka[n].key = ks_xstrdup(item->string);
        cfg->kafka[n].value = ks_xstrdup(v);
        cfg->n_kafka = ++n;
    }
    if (!cJSON_GetObjectItemCaseSensitive(obj, "bootstrap.servers")) {
        cfg_fail(ctx, "kafka.bootstrap.servers", "missing");
        return -1;
    }
    return 0;
}

static int read_redis(struct ks_config *cfg,
                      const cJSON *root,
                      struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"url", "timeout_ms", "prefix",
                                       "done_ttl_s", NULL};
    const cJSON *o = cfg_section(root, "redis", keys, ctx);

    if (!o ||
        cfg_get_str(o, "url", "redis", "redis://127.0.0.1:6379",
                    &cfg->redis_url, ctx) ||
        cfg_get_int(o, "timeout_ms", "redis", 2000, 10, 600000,
                    &cfg->redis_timeout_ms, ctx) ||
        cfg_get_str(o, "prefix", "redis", "kascade:", &cfg->redis_prefix,
                    ctx) ||
        cfg_get_int(o, "done_ttl_s", "redis", 2 * 86400, 60, 90 * 86400,
                    &cfg->done_ttl_s, ctx)) {
        return -1;
    }
    if (strncmp(cfg->redis_url, "redis://", 8) != 0) {
        cfg_fail(ctx, "redis.url", "must start with redis://");
        return -1;
    }
    return 0;
}

/* One entry of topics.reply_to_allow: a topic name, or a non-empty
 * prefix of one followed by '*'. */
static int add_reply_to_allow(struct ks_config *cfg,
                              const char *v,
                              size_t len,
                              struct cfg_ctx *ctx)
{
    size_t n = len > 0 && v[len - 1] == '*' ? len - 1 : len;

    if (!ks_topic_name_valid(v, n)) {
        cfg_fail(ctx, "topics.reply_to_allow",
                 "entry '%.*s' is not a topic name or a prefix of one "
                 "followed by '*'",
                 (int)(len > 64 ? 64 : len), v);
        return -1;
    }
    cfg->reply_to_allow[cfg->n_reply_to_allow++] = ks_xstrndup(v, len);
    return 0;
}

/* topics.reply_to_allow: an array of strings, or (from an override) one
 * string of comma-separated entries. */
static int read_reply_to_allow(struct ks_config *cfg,
                               const cJSON *o,
                               struct cfg_ctx *ctx)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "reply_to_allow");
    const cJSON *item;

    if (!list || cJSON_IsNull(list)) {
        return 0;
    }
    if (cJSON_IsString(list)) {
        const char *p = list->valuestring;

        cfg->reply_to_allow =
            ks_xcalloc(strlen(p) / 2 + 2, sizeof(*cfg->reply_to_allow));
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);

            if (add_reply_to_allow(cfg, p, len, ctx)) {
                return -1;
            }
            p += len + (comma ? 1 : 0);
        }
        return 0;
    }
    if (!cJSON_IsArray(list)) {
        cfg_fail(ctx, "topics.reply_to_allow",
                 "must be an array of topic names and prefixes ('name*')");
        return -1;
    }
    cfg->reply_to_allow = ks_xcalloc((size_t)cJSON_GetArraySize(list) + 1,
                                     sizeof(*cfg->reply_to_allow));
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsString(item)) {
            cfg_fail(ctx, "topics.reply_to_allow", "entries must be strings");
            return -1;
        }
        if (add_reply_to_allow(cfg, item->valuestring,
                               strlen(item->valuestring), ctx)) {
            return -1;
        }
    }
    return 0;
}

static int read_topics(struct ks_config *cfg,
                       const cJSON *root,
                       struct cfg_ctx *ctx)
{
    static const char *const keys[] = {
        "prefix",         "partitions",    "replication_factor",
        "reply_to_allow", "tenant_topics", NULL};
    const cJSON *o = cfg_section(root, "topics", keys, ctx);

    return !o ||
                   cfg_get_str(o, "prefix", "topics", "kascade.",
                               &cfg->topic_prefix, ctx) ||
                   cfg_get_int32(o, "partitions", "topics", 6, 1, 10000,
                                 &cfg->partitions, ctx) ||
                   cfg_get_int32(o, "replication_factor", "topics", 1, 1, 16,
                                 &cfg->replication_factor, ctx) ||
                   read_reply_to_allow(cfg, o, ctx) ||
                   cfg_get_bool(o, "tenant_topics", "topics", false,
                                &cfg->tenant_topics, ctx)
               ? -1
               : 0;
}

static int read_limits(struct ks_config *cfg,
                       const cJSON *root,
                       struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"max_message_bytes",
                                       "max_text_bytes",
                                       "max_messages",
                                       "max_metadata",
                                       "max_depth",
                                       "max_open_offsets",
                                       NULL};
    struct ks_codec_limits *lim = &cfg->limits;
    const cJSON *o = cfg_section(root, "limits", keys, ctx);
    int64_t mb, tb, mm, md;

    ks_codec_limits_default(lim);
    if (!o ||
        cfg_get_int(o, "max_message_bytes", "limits",
                    (int64_t)lim->max_message_bytes, 1024, 64 << 20, &mb,
                    ctx) ||
        cfg_get_int(o, "max_text_bytes", "limits", (int64_t)lim->max_text_bytes,
                    64, 64 << 20, &tb, ctx) ||
        cfg_get_int(o, "max_messages", "limits", (int64_t)lim->max_messages, 1,
                    100000, &mm, ctx) ||
        cfg_get_int(o, "max_metadata", "limits", (int64_t)lim->max_metadata, 0,
                    100000, &md, ctx) ||
        cfg_get_int32(o, "max_depth", "limits", lim->max_depth, 2, 512,
                      &lim->max_depth, ctx) ||
        cfg_get_int(o, "max_open_offsets", "limits", 10000, 16, 10000000,
                    &cfg->max_open_offsets, ctx)) {
        return -1;
    }
    lim->max_message_bytes = (size_t)mb;
    lim->max_text_bytes = (size_t)tb;
    lim->max_messages = (size_t)mm;
    lim->max_metadata = (size_t)md;
    return 0;
}

static int read_ops(struct ks_config *cfg,
                    const cJSON *root,
                    struct cfg_ctx *ctx)
{
    static const char *const mkeys[] = {"host", "port", NULL};
    static const char *const lkeys[] = {"level", NULL};
    const cJSON *m = cfg_section(root, "metrics", mkeys, ctx);
    const cJSON *l = cfg_section(root, "log", lkeys, ctx);
    static const char *const levels[] = {"error", "warn", "info", "debug"};

    if (!m || !l ||
        cfg_get_str(m, "host", "metrics", "127.0.0.1", &cfg->metrics_host,
                    ctx) ||
        cfg_get_int32(m, "port", "metrics", 0, 0, 65535, &cfg->metrics_port,
                      ctx) ||
        cfg_get_str(l, "level", "log", "info", &cfg->log_level, ctx) ||
        cfg_get_int(root, "drain_timeout_ms", "", 30000, 0, 3600000,
                    &cfg->drain_timeout_ms, ctx)) {
        return -1;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(cfg->log_level, levels[i]) == 0) {
            return 0;
        }
    }
    cfg_fail(ctx, "log.level", "must be error, warn, info or debug");
    return -1;
}

/* ---- tiers and routing -------------------------------------------------- */

static int read_provider(struct ks_provider_cfg *p,
                         const cJSON *o,
                         const char *path,
                         struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"kind",
                                       "base_url",
                                       "model",
                                       "api_key_env",
                                       "price_in_per_mtok",
                                       "price_out_per_mtok",
                                       "context_window",
                                       "timeout_ms",
                                       "max_retries",
                                       "model_file",
                                       "rpm",
                                       "tpm",
                                       "circuit_failures",
                                       "circuit_cooldown_ms",
                                       "supports_n",
                                       NULL};
    char key[CFG_KEY_MAX];
    int64_t retries, failures;

    if (cfg_check_keys(o, path, keys, ctx) ||
        cfg_get_str(o, "kind", path, "openai", &p->kind, ctx) ||
        cfg_get_str(o, "base_url", path, NULL, &p->base_url, ctx) ||
        cfg_get_str(o, "model", path, NULL, &p->model, ctx) ||
        cfg_get_str(o, "api_key_env", path, NULL, &p->api_key_env, ctx) ||
        cfg_get_num(o, "price_in_per_mtok", path, 0, 0, 1e6, &p->price_in,
                    ctx) ||
        cfg_get_num(o, "price_out_per_mtok", path, 0, 0, 1e6, &p->price_out,
                    ctx) ||
        cfg_get_int(o, "context_window", path, 8192, 256, 100000000,
                    &p->context_window, ctx) ||
        cfg_get_int(o, "timeout_ms", path, 60000, 10, 3600000, &p->timeout_ms,
                    ctx) ||
        cfg_get_int(o, "max_retries", path, 3, 0, 100, &retries, ctx) ||
        cfg_get_str(o, "model_file", path, NULL, &p->model_file, ctx) ||
        cfg_get_int(o, "rpm", path, 0, 0, 100000000, &p->rpm, ctx) ||
        cfg_get_int(o, "tpm", path, 0, 0, 100000000000, &p->tpm, ctx) ||
        cfg_get_int(o, "circuit_failures", path, 5, 1, 1000000, &failures,
                    ctx) ||
        cfg_get_int(o, "circuit_cooldown_ms", path, 30000, 1, 86400000,
                    &p->circuit_cooldown_ms, ctx) ||
        cfg_get_bool(o, "supports_n", path, false, &p->supports_n, ctx)) {
        return -1;
    }
    if (p->supports_n && strcmp(p->kind, "openai") != 0) {
        cfg_fail(ctx, cfg_key_of(key, path, "supports_n"),
                 "only an openai provider takes \"n\" (kind is '%s')", p->kind);
        return -1;
    }
    p->max_retries = (int)retries;
    p->circuit_failures = (int)failures;
    if (strcmp(p->kind, "classifier") == 0) {
        /* In-process: no URL; the model file is loaded at start-up. */
        if (!p->model_file) {
            cfg_fail(ctx, cfg_key_of(key, path, "model_file"),
                     "missing (a kascade train --kind triage model)");
            return -1;
        }
        if (!p->model) {
            p->model = ks_xstrdup("classifier");
        }
        return 0;
    }
    if (strcmp(p->kind, "openai") != 0 && strcmp(p->kind, "anthropic") != 0) {
        cfg_fail(ctx, cfg_key_of(key, path, "kind"),
                 "unknown provider kind '%s' (known: openai, anthropic, "
                 "classifier)",
                 p->kind);
        return -1;
    }
    if (!p->base_url || strncmp(p->base_url, "http", 4) != 0) {
        cfg_fail(ctx, cfg_key_of(key, path, "base_url"),
                 "missing or not an http(s) URL");
        return -1;
    }
    if (!p->model) {
        cfg_fail(ctx, cfg_key_of(key, path, "model"), "missing");
        return -1;
    }
    return 0;
}

static int read_policy(const cJSON *o,
                       const char *path,
                       enum ks_budget_policy *out,
                       struct cfg_ctx *ctx)
{
    static const char *const names[] = {"downgrade", "defer", "reject"};
    char key[CFG_KEY_MAX];
    char *s = NULL;

    if (cfg_get_str(o, "on_budget_exhausted", path, "downgrade", &s, ctx)) {
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum ks_budget_policy)i;
            free(s);
            return 0;
        }
    }
    free(s);
    cfg_fail(ctx, cfg_key_of(key, path, "on_budget_exhausted"),
             "must be downgrade, defer or reject");
    return -1;
}

/* ordering: "none" (default) or "key"; key_queue_bytes: the bound of
 * one key's waiting tasks (workers/order.c) */
static int read_ordering(struct ks_tier_cfg *t,
                         const cJSON *o,
                         const char *path,
                         struct cfg_ctx *ctx)
{
    char key[CFG_KEY_MAX], *v = NULL;
    int64_t kqb;
    int rc = 0;

    if (cfg_get_int(o, "key_queue_bytes", path, 1048576, 1024, (int64_t)1 << 30,
                    &kqb, ctx) ||
        cfg_get_str(o, "ordering", path, "none", &v, ctx)) {
        return -1;
    }
    t->key_queue_bytes = (size_t)kqb;
    if (strcmp(v, "key") == 0) {
        t->order_by_key = true;
    } else if (strcmp(v, "none") != 0) {
        cfg_fail(ctx, cfg_key_of(key, path, "ordering"),
                 "must be \"none\" or \"key\"");
        rc = -1;
    }
    free(v);
    return rc;
}

/* escalate_below_types: {"task type": threshold in [0,1]} */
static int read_type_thresholds(struct ks_tier_cfg *t,
                                const cJSON *o,
                                const char *path,
                                struct cfg_ctx *ctx)
{
    const cJSON *types =
        cJSON_GetObjectItemCaseSensitive(o, "escalate_below_types");
    const cJSON *item;
    char key[CFG_KEY_MAX], sub[CFG_KEY_MAX];

    if (!types) {
        return 0;
    }
    cfg_key_of(sub, path, "escalate_below_types");
    if (!cJSON_IsObject(types)) {
        cfg_fail(ctx, sub, "must be an object of {\"type\": threshold}");
        return -1;
    }
    t->escalate_below_types = ks_xcalloc((size_t)cJSON_GetArraySize(types) + 1,
                                         sizeof(*t->escalate_below_types));
    cJSON_ArrayForEach(item, types) {
        double v;

        /* cfg_get_num also reads an -X override (a string) */
        if (cJSON_IsNull(item) ||
            cfg_get_num(types, item->string, sub, 0, 0, 1, &v, ctx)) {
            cfg_fail(ctx, cfg_key_of(key, sub, item->string),
                     "must be a number in [0, 1]");
            return -1;
        }
        t->escalate_below_types[t->n_escalate_below_types].type =
            ks_xstrdup(item->string);
        t->escalate_below_types[t->n_escalate_below_types++].value = v;
    }
    return 0;
}

static int read_tier(struct ks_tier_cfg *t,
                     const cJSON *o,
                     const char *path,
                     struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"name",
                                       "local",
                                       "providers",
                                       "max_inflight",
                                       "escalate_below",
                                       "daily_budget_usd",
                                       "on_budget_exhausted",
                                       "max_output_tokens",
                                       "escalate_below_types",
                                       "prompt",
                                       "escalation_prompt",
                                       "ordering",
                                       "key_queue_bytes",
                                       "self_report",
                                       "verifier_model",
                                       "verifier_models",
                                       "samples",
                                       "escalate_context",
                                       NULL};
    const cJSON *provs, *po;
    char key[CFG_KEY_MAX], sub[CFG_KEY_MAX];
    double budget;
    int64_t mot;

    if (cfg_check_keys(o, path, keys, ctx) ||
        cfg_get_str(o, "name", path, NULL, &t->name, ctx) ||
        cfg_get_bool(o, "local", path, false, &t->local, ctx) ||
        cfg_get_int32(o, "max_inflight", path, 64, 1, 65536, &t->max_inflight,
                      ctx) ||
        cfg_get_num(o, "escalate_below", path, 0, 0, 1, &t->escalate_below,
                    ctx) ||
        cfg_get_bool(o, "self_report", path, true, &t->self_report, ctx) ||
        cfg_get_num(o, "daily_budget_usd", path, -1, 0, 1e9, &budget, ctx) ||
        cfg_get_int(o, "max_output_tokens", path, 512, 1, 1000000, &mot, ctx) ||
        read_policy(o, path, &t->on_budget_exhausted, ctx) ||
        cfg_get_str(o, "prompt", path, NULL, &t->prompt, ctx) ||
        cfg_get_str(o, "escalation_prompt", path, NULL, &t->escalation_prompt,
                    ctx) ||
        read_type_thresholds(t, o, path, ctx) ||
        read_ordering(t, o, path, ctx) ||
        cfg_read_tier_signals(t, o, path, ctx)) {
        return -1;
    }
    t->default_max_output_tokens = (uint32_t)mot;
    t->daily_budget_micro = budget < 0 ? -1 : ks_usd_to_micro(budget);
    if (!t->name || !cfg_is_name(t->name)) {
        cfg_fail(ctx, cfg_key_of(key, path, "name"),
                 "missing or not [a-z0-9_-]{1,64}");
        return -1;
    }
    provs = cJSON_GetObjectItemCaseSensitive(o, "providers");
    if (!cJSON_IsArray(provs) || cJSON_GetArraySize(provs) == 0) {
        cfg_fail(ctx, cfg_key_of(key, path, "providers"),
                 "must be a non-empty array");
        return -1;
    }
    t->providers =
        ks_xcalloc((size_t)cJSON_GetArraySize(provs), sizeof(*t->providers));
    cJSON_ArrayForEach(po, provs) {
        snprintf(sub, sizeof(sub), "%s.providers[%zu]", path, t->n_providers);
        if (read_provider(&t->providers[t->n_providers++], po, sub, ctx)) {
            return -1;
        }
    }
    return 0;
}

static int read_tiers(struct ks_config *cfg,
                      const cJSON *root,
                      struct cfg_ctx *ctx)
{
    const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(root, "tiers");
    const cJSON *o;
    char path[CFG_KEY_MAX];

    if (!cJSON_IsArray(tiers) || cJSON_GetArraySize(tiers) == 0) {
        cfg_fail(ctx, "tiers", "must be a non-empty array, cheapest first");
        return -1;
    }
    cfg->tiers =
        ks_xcalloc((size_t)cJSON_GetArraySize(tiers), sizeof(*cfg->tiers));
    cJSON_ArrayForEach(o, tiers) {
        snprintf(path, sizeof(path), "tiers[%zu]", cfg->n_tiers);
        if (read_tier(&cfg->tiers[cfg->n_tiers++], o, path, ctx)) {
            return -1;
        }
        if (ks_config_tier_index(cfg, cfg->tiers[cfg->n_tiers - 1].name) !=
            (int)cfg->n_tiers - 1) {
            cfg_fail(ctx, path, "duplicate tier name '%s'",
                     cfg->tiers[cfg->n_tiers - 1].name);
            return -1;
        }
    }
    return 0;
}

static int read_budget(struct ks_config *cfg,
                       const cJSON *root,
                       struct cfg_ctx *ctx)
{
    static const char *const keys[] = {
        "tenants",         "default_tenant_usd",    "fail_open",
        "clock_offset_ms", "reservation_margin_ms", NULL};
    const cJSON *o = cfg_section(root, "budget", keys, ctx);
    const cJSON *tenants, *item;
    char key[CFG_KEY_MAX];
    double def;

    if (!o ||
        cfg_get_num(o, "default_tenant_usd", "budget", -1, 0, 1e9, &def, ctx) ||
        cfg_get_bool(o, "fail_open", "budget", false, &cfg->budget_fail_open,
                     ctx) ||
        cfg_get_int(o, "clock_offset_ms", "budget", 0, -366LL * 86400000,
                    366LL * 86400000, &cfg->clock_offset_ms, ctx) ||
        cfg_get_int(o, "reservation_margin_ms", "budget", 60000, 100, 86400000,
                    &cfg->reservation_margin_ms, ctx)) {
        return -1;
    }
    cfg->default_tenant_micro = def < 0 ? -1 : ks_usd_to_micro(def);
    tenants = cJSON_GetObjectItemCaseSensitive(o, "tenants");
    if (!tenants) {
        return 0;
    }
    if (!cJSON_IsObject(tenants)) {
        cfg_fail(ctx, "budget.tenants", "must be an object tenant: USD");
        return -1;
    }
    cfg->tenants = ks_xcalloc((size_t)cJSON_GetArraySize(tenants) + 1,
                              sizeof(*cfg->tenants));
    cJSON_ArrayForEach(item, tenants) {
        double usd;

        if (cfg_get_num(tenants, item->string, "budget.tenants", -1, 0, 1e9,
                        &usd, ctx)) {
            return -1;
        }
        if (usd < 0) {
            cfg_fail(ctx, cfg_key_of(key, "budget.tenants", item->string),
                     "must be a number of USD");
            return -1;
        }
        cfg->tenants[cfg->n_tenants].name = ks_xstrdup(item->string);
        cfg->tenants[cfg->n_tenants++].limit_micro = ks_usd_to_micro(usd);
    }
    return 0;
}

int cfg_read_tree(struct ks_config *cfg, const cJSON *root, struct cfg_ctx *ctx)
{
    static const char *const keys[] = {
        "kafka",  "redis",           "topics",  "limits",           "metrics",
        "log",    "tiers",           "routing", "drain_timeout_ms", "budget",
        "router", "answer_patterns", NULL};

    if (cfg_check_keys(root, "", keys, ctx) || read_kafka(cfg, root, ctx) ||
        read_redis(cfg, root, ctx) || read_topics(cfg, root, ctx) ||
        read_limits(cfg, root, ctx) || read_ops(cfg, root, ctx) ||
        read_tiers(cfg, root, ctx) || cfg_read_routing(cfg, root, ctx) ||
        read_budget(cfg, root, ctx) || cfg_read_router(cfg, root, ctx) ||
        cfg_read_answer_patterns(cfg, root, ctx)) {
        return -1;
    }
    return 0;
}
