/*
 * config_tree.c - overrides into the cJSON tree, and the table of keys that
 * turns the tree into struct ks_config.
 *
 * Each object is read by a reader that first rejects keys it does not know,
 * then reads each known key with a typed getter that checks range and type.
 * Defaults live here, next to the key they belong to.
 */
#include "config_tree.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#include "banned.h"

void cfg_fail(struct cfg_ctx *ctx, const char *key, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    if (ctx->failed++) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (key) {
        snprintf(ctx->errstr, ctx->errstr_size, "%s: key '%s': %s", ctx->file,
                 key, reason);
    } else {
        snprintf(ctx->errstr, ctx->errstr_size, "%s: %s", ctx->file, reason);
    }
}

/* ---- overrides ---------------------------------------------------------- */

static cJSON *tier_by_name(cJSON *tiers, const char *name)
{
    cJSON *t;

    cJSON_ArrayForEach(t, tiers) {
        cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "name");

        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
            return t;
        }
    }
    return NULL;
}

/* Walks (creating objects as needed) to the parent of the last part. */
static cJSON *walk(
    cJSON *node, char *part, char **lastp, const char *key, struct cfg_ctx *ctx)
{
    char *next;

    while ((next = strchr(part, '.')) != NULL) {
        cJSON *child;

        *next = '\0';
        if (cJSON_IsArray(node)) {
            int64_t idx;

            child = ks_parse_int64(part, 0, 4096, &idx) == 0
                        ? cJSON_GetArrayItem(node, (int)idx)
                        : tier_by_name(node, part);
        } else {
            child = cJSON_GetObjectItemCaseSensitive(node, part);
            if (!child) {
                child = cJSON_AddObjectToObject(node, part);
            }
        }
        if (!child || !(cJSON_IsObject(child) || cJSON_IsArray(child))) {
            cfg_fail(ctx, key, "no such object '%s'", part);
            return NULL;
        }
        node = child;
        part = next + 1;
    }
    *lastp = part;
    return node;
}

int cfg_tree_set(cJSON *root,
                 const char *key,
                 const char *value,
                 struct cfg_ctx *ctx)
{
    char *copy = ks_xstrdup(key);
    char *last = NULL;
    cJSON *parent;
    int ret = -1;

    if (strncmp(copy, "kafka.", 6) == 0) {
        parent = cJSON_GetObjectItemCaseSensitive(root, "kafka");
        if (!parent) {
            parent = cJSON_AddObjectToObject(root, "kafka");
        }
        last = copy + 6;
    } else {
        parent = walk(root, copy, &last, key, ctx);
    }
    if (!parent || !last || !*last) {
        if (!ctx->failed) {
            cfg_fail(ctx, key, "not a settable key");
        }
        goto out_free_copy;
    }
    if (cJSON_IsArray(parent)) {
        cfg_fail(ctx, key, "cannot replace an array element");
        goto out_free_copy;
    }
    {
        cJSON *item = cJSON_CreateString(value);

        cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
        cJSON_AddItemToObject(parent, last, item);
        ctx->overridden =
            ks_xrealloc(ctx->overridden,
                        (ctx->n_overridden + 1) * sizeof(*ctx->overridden));
        ctx->overridden[ctx->n_overridden++] = item;
    }
    ret = 0;

out_free_copy:
    free(copy);
    return ret;
}

/* ---- typed getters ------------------------------------------------------ */

#define KEY_MAX 192

static const char *key_of(char *buf, const char *path, const char *name)
{
    snprintf(buf, KEY_MAX, "%s%s%s", path, *path ? "." : "", name);
    return buf;
}

static int check_keys(const cJSON *obj,
                      const char *path,
                      const char *const *allowed,
                      struct cfg_ctx *ctx)
{
    const cJSON *item;
    char key[KEY_MAX];

    if (!cJSON_IsObject(obj)) {
        cfg_fail(ctx, path, "must be an object");
        return -1;
    }
    cJSON_ArrayForEach(item, obj) {
        size_t i;

        for (const cJSON *prev = obj->child; prev != item; prev = prev->next) {
            if (strcmp(prev->string, item->string) == 0) {
                cfg_fail(ctx, key_of(key, path, item->string), "given twice");
                return -1;
            }
        }
        for (i = 0; allowed[i]; i++) {
            if (strcmp(item->string, allowed[i]) == 0) {
                break;
            }
        }
        if (!allowed[i]) {
            cfg_fail(ctx, key_of(key, path, item->string), "unknown key");
            return -1;
        }
    }
    return 0;
}

/* Absent or null: *out = def (copied, may be NULL). */
static int get_str(const cJSON *obj,
                   const char *name,
                   const char *path,
                   const char *def,
                   char **out,
                   struct cfg_ctx *ctx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char key[KEY_MAX];

    if (!v || cJSON_IsNull(v)) {
        *out = def ? ks_xstrdup(def) : NULL;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        cfg_fail(ctx, key_of(key, path, name), "must be a string");
        return -1;
    }
    *out = ks_xstrdup(v->valuestring);
    return 0;
}

static bool is_override(const struct cfg_ctx *ctx, const cJSON *v)
{
    for (size_t i = 0; i < ctx->n_overridden; i++) {
        if (ctx->overridden[i] == v) {
            return true;
        }
    }
    return false;
}

static int get_num(const cJSON *obj,
                   const char *name,
                   const char *path,
                   double def,
                   double min,
                   double max,
                   double *out,
                   struct cfg_ctx *ctx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char key[KEY_MAX];
    double d = NAN;

    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v) && is_override(ctx, v) &&
               ks_parse_double(v->valuestring, &d) != 0) {
        d = NAN;
    }
    if (!isfinite(d) || d < min || d > max) {
        cfg_fail(ctx, key_of(key, path, name), "must be a number in [%g, %g]",
                 min, max);
        return -1;
    }
    *out = d;
    return 0;
}

static int get_int(const cJSON *obj,
                   const char *name,
                   const char *path,
                   int64_t def,
                   int64_t min,
                   int64_t max,
                   int64_t *out,
                   struct cfg_ctx *ctx)
{
    double d;
    char key[KEY_MAX];

    if (get_num(obj, name, path, (double)def, (double)min, (double)max, &d,
                ctx) != 0) {
        return -1;
    }
    if (d != floor(d)) {
        cfg_fail(ctx, key_of(key, path, name), "must be a whole number");
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

static int get_int32(const cJSON *obj,
                     const char *name,
                     const char *path,
                     int def,
                     int min,
                     int max,
                     int *out,
                     struct cfg_ctx *ctx)
{
    int64_t v;

    if (get_int(obj, name, path, def, min, max, &v, ctx) != 0) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int get_bool(const cJSON *obj,
                    const char *name,
                    const char *path,
                    bool def,
                    bool *out,
                    struct cfg_ctx *ctx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char key[KEY_MAX];

    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (cJSON_IsString(v) && is_override(ctx, v) &&
        (strcmp(v->valuestring, "true") == 0 ||
         strcmp(v->valuestring, "false") == 0)) {
        *out = strcmp(v->valuestring, "true") == 0;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        cfg_fail(ctx, key_of(key, path, name), "must be true or false");
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A name usable in a topic name and a Redis key. */
static bool is_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return false;
    }
    for (; *s; s++) {
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
            *s != '_' && *s != '-') {
            return false;
        }
    }
    return true;
}

/* Absent sections read as empty objects, so their defaults apply. */
static const cJSON *section(const cJSON *root,
                            const char *name,
                            const char *const *allowed,
                            struct cfg_ctx *ctx)
{
    static cJSON empty = {.type = cJSON_Object};
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, name);

    if (!obj) {
        return &empty;
    }
    return check_keys(obj, name, allowed, ctx) == 0 ? obj : NULL;
}

/* ---- sections ----------------------------------------------------------- */

static int read_kafka(struct ks_config *cfg,
                      const cJSON *root,
                      struct cfg_ctx *ctx)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "kafka");
    const cJSON *item;
    char key[KEY_MAX];
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
            cfg_fail(ctx, key_of(key, "kafka", item->string),
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
    const cJSON *o = section(root, "redis", keys, ctx);

    if (!o ||
        get_str(o, "url", "redis", "redis://127.0.0.1:6379", &cfg->redis_url,
                ctx) ||
        get_int(o, "timeout_ms", "redis", 2000, 10, 600000,
                &cfg->redis_timeout_ms, ctx) ||
        get_str(o, "prefix", "redis", "kascade:", &cfg->redis_prefix, ctx) ||
        get_int(o, "done_ttl_s", "redis", 2 * 86400, 60, 90 * 86400,
                &cfg->done_ttl_s, ctx)) {
        return -1;
    }
    if (strncmp(cfg->redis_url, "redis://", 8) != 0) {
        cfg_fail(ctx, "redis.url", "must start with redis://");
        return -1;
    }
    return 0;
}

static int read_topics(struct ks_config *cfg,
                       const cJSON *root,
                       struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"prefix", "partitions",
                                       "replication_factor", NULL};
    const cJSON *o = section(root, "topics", keys, ctx);

    return !o ||
                   get_str(o, "prefix", "topics", "kascade.",
                           &cfg->topic_prefix, ctx) ||
                   get_int32(o, "partitions", "topics", 6, 1, 10000,
                             &cfg->partitions, ctx) ||
                   get_int32(o, "replication_factor", "topics", 1, 1, 16,
                             &cfg->replication_factor, ctx)
               ? -1
               : 0;
}

static int read_limits(struct ks_config *cfg,
                       const cJSON *root,
                       struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"max_message_bytes", "max_text_bytes",
                                       "max_messages",      "max_metadata",
                                       "max_depth",         NULL};
    struct ks_codec_limits *lim = &cfg->limits;
    const cJSON *o = section(root, "limits", keys, ctx);
    int64_t mb, tb, mm, md;

    ks_codec_limits_default(lim);
    if (!o ||
        get_int(o, "max_message_bytes", "limits",
                (int64_t)lim->max_message_bytes, 1024, 64 << 20, &mb, ctx) ||
        get_int(o, "max_text_bytes", "limits", (int64_t)lim->max_text_bytes, 64,
                64 << 20, &tb, ctx) ||
        get_int(o, "max_messages", "limits", (int64_t)lim->max_messages, 1,
                100000, &mm, ctx) ||
        get_int(o, "max_metadata", "limits", (int64_t)lim->max_metadata, 0,
                100000, &md, ctx) ||
        get_int32(o, "max_depth", "limits", lim->max_depth, 2, 512,
                  &lim->max_depth, ctx)) {
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
    const cJSON *m = section(root, "metrics", mkeys, ctx);
    const cJSON *l = section(root, "log", lkeys, ctx);
    static const char *const levels[] = {"error", "warn", "info", "debug"};

    if (!m || !l ||
        get_str(m, "host", "metrics", "127.0.0.1", &cfg->metrics_host, ctx) ||
        get_int32(m, "port", "metrics", 0, 0, 65535, &cfg->metrics_port, ctx) ||
        get_str(l, "level", "log", "info", &cfg->log_level, ctx) ||
        get_int(root, "drain_timeout_ms", "", 30000, 0, 3600000,
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
                                       NULL};
    char key[KEY_MAX];
    int64_t retries;

    if (check_keys(o, path, keys, ctx) ||
        get_str(o, "kind", path, "openai", &p->kind, ctx) ||
        get_str(o, "base_url", path, NULL, &p->base_url, ctx) ||
        get_str(o, "model", path, NULL, &p->model, ctx) ||
        get_str(o, "api_key_env", path, NULL, &p->api_key_env, ctx) ||
        get_num(o, "price_in_per_mtok", path, 0, 0, 1e6, &p->price_in, ctx) ||
        get_num(o, "price_out_per_mtok", path, 0, 0, 1e6, &p->price_out, ctx) ||
        get_int(o, "context_window", path, 8192, 256, 100000000,
                &p->context_window, ctx) ||
        get_int(o, "timeout_ms", path, 60000, 10, 3600000, &p->timeout_ms,
                ctx) ||
        get_int(o, "max_retries", path, 3, 0, 100, &retries, ctx)) {
        return -1;
    }
    p->max_retries = (int)retries;
    if (strcmp(p->kind, "openai") != 0) {
        cfg_fail(ctx, key_of(key, path, "kind"),
                 "unknown provider kind '%s' (known: openai)", p->kind);
        return -1;
    }
    if (!p->base_url || strncmp(p->base_url, "http", 4) != 0) {
        cfg_fail(ctx, key_of(key, path, "base_url"),
                 "missing or not an http(s) URL");
        return -1;
    }
    if (!p->model) {
        cfg_fail(ctx, key_of(key, path, "model"), "missing");
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
    char key[KEY_MAX];
    char *s = NULL;

    if (get_str(o, "on_budget_exhausted", path, "downgrade", &s, ctx)) {
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
    cfg_fail(ctx, key_of(key, path, "on_budget_exhausted"),
             "must be downgrade, defer or reject");
    return -1;
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
                                       NULL};
    const cJSON *provs, *po;
    char key[KEY_MAX], sub[KEY_MAX];
    double budget;
    int64_t mot;

    if (check_keys(o, path, keys, ctx) ||
        get_str(o, "name", path, NULL, &t->name, ctx) ||
        get_bool(o, "local", path, false, &t->local, ctx) ||
        get_int32(o, "max_inflight", path, 64, 1, 65536, &t->max_inflight,
                  ctx) ||
        get_num(o, "escalate_below", path, 0, 0, 1, &t->escalate_below, ctx) ||
        get_num(o, "daily_budget_usd", path, -1, 0, 1e9, &budget, ctx) ||
        get_int(o, "max_output_tokens", path, 512, 1, 1000000, &mot, ctx) ||
        read_policy(o, path, &t->on_budget_exhausted, ctx)) {
        return -1;
    }
    t->default_max_output_tokens = (uint32_t)mot;
    t->daily_budget_micro = budget < 0 ? -1 : ks_usd_to_micro(budget);
    if (!t->name || !is_name(t->name)) {
        cfg_fail(ctx, key_of(key, path, "name"),
                 "missing or not [a-z0-9_-]{1,64}");
        return -1;
    }
    provs = cJSON_GetObjectItemCaseSensitive(o, "providers");
    if (!cJSON_IsArray(provs) || cJSON_GetArraySize(provs) == 0) {
        cfg_fail(ctx, key_of(key, path, "providers"),
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
    char path[KEY_MAX];

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

static int read_routing(struct ks_config *cfg,
                        const cJSON *root,
                        struct cfg_ctx *ctx)
{
    static const char *const keys[] = {"default_tier", "max_hops", "task_types",
                                       NULL};
    const cJSON *o = section(root, "routing", keys, ctx);
    const cJSON *types, *item;
    char key[KEY_MAX];
    char *def = NULL;
    int r;

    if (!o ||
        get_int32(o, "max_hops", "routing", 3, 0, 64, &cfg->max_hops, ctx) ||
        get_str(o, "default_tier", "routing", cfg->tiers[0].name, &def, ctx)) {
        return -1;
    }
    r = tier_ref(cfg, def, "routing.default_tier", &cfg->default_tier, ctx);
    free(def);
    if (r) {
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

        key_of(key, "routing.task_types", item->string);
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

int cfg_read_tree(struct ks_config *cfg, const cJSON *root, struct cfg_ctx *ctx)
{
    static const char *const keys[] = {
        "kafka", "redis", "topics",  "limits",           "metrics",
        "log",   "tiers", "routing", "drain_timeout_ms", NULL};

    if (check_keys(root, "", keys, ctx) || read_kafka(cfg, root, ctx) ||
        read_redis(cfg, root, ctx) || read_topics(cfg, root, ctx) ||
        read_limits(cfg, root, ctx) || read_ops(cfg, root, ctx) ||
        read_tiers(cfg, root, ctx) || read_routing(cfg, root, ctx)) {
        return -1;
    }
    return 0;
}
