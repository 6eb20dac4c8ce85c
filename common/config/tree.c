/*
 * tree.c - overrides into the cJSON tree, and the typed getters that
 * read.c reads the tree into struct ks_config with.
 *
 * Overrides (environment, -X) are stored as text and remembered, so the
 * getter of the key that reads one converts it to the type that key wants.
 */
#include "config/tree.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

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

const char *cfg_key_of(char *buf, const char *path, const char *name)
{
    snprintf(buf, CFG_KEY_MAX, "%s%s%s", path, *path ? "." : "", name);
    return buf;
}

int cfg_check_keys(const cJSON *obj,
                   const char *path,
                   const char *const *allowed,
                   struct cfg_ctx *ctx)
{
    const cJSON *item;
    char key[CFG_KEY_MAX];

    if (!cJSON_IsObject(obj)) {
        cfg_fail(ctx, path, "must be an object");
        return -1;
    }
    cJSON_ArrayForEach(item, obj) {
        size_t i;

        for (const cJSON *prev = obj->child; prev != item; prev = prev->next) {
            if (strcmp(prev->string, item->string) == 0) {
                cfg_fail(ctx, cfg_key_of(key, path, item->string),
                         "given twice");
                return -1;
            }
        }
        for (i = 0; allowed[i]; i++) {
            if (strcmp(item->string, allowed[i]) == 0) {
                break;
            }
        }
        if (!allowed[i]) {
            cfg_fail(ctx, cfg_key_of(key, path, item->string), "unknown key");
            return -1;
        }
    }
    return 0;
}

/* Absent or null: *out = def (copied, may be NULL). */
int cfg_get_str(const cJSON *obj,
                const char *name,
                const char *path,
                const char *def,
                char **out,
                struct cfg_ctx *ctx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char key[CFG_KEY_MAX];

    if (!v || cJSON_IsNull(v)) {
        *out = def ? ks_xstrdup(def) : NULL;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        cfg_fail(ctx, cfg_key_of(key, path, name), "must be a string");
        return -1;
    }
    *out = ks_xstrdup(v->valuestring);
    return 0;
}

static bool cfg_is_override(const struct cfg_ctx *ctx, const cJSON *v)
{
    for (size_t i = 0; i < ctx->n_overridden; i++) {
        if (ctx->overridden[i] == v) {
            return true;
        }
    }
    return false;
}

int cfg_get_num(const cJSON *obj,
                const char *name,
                const char *path,
                double def,
                double min,
                double max,
                double *out,
                struct cfg_ctx *ctx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char key[CFG_KEY_MAX];
    double d = NAN;

    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v) && cfg_is_override(ctx, v) &&
               ks_parse_double(v->valuestring, &d) != 0) {
        d = NAN;
    }
    if (!isfinite(d) || d < min || d > max) {
        cfg_fail(ctx, cfg_key_of(key, path, name),
                 "must be a number in [%g, %g]", min, max);
        return -1;
    }
    *out = d;
    return 0;
}

int cfg_get_int(const cJSON *obj,
                const char *name,
                const char *path,
                int64_t def,
                int64_t min,
                int64_t max,
                int64_t *out,
                struct cfg_ctx *ctx)
{
    double d;
    char key[CFG_KEY_MAX];

    if (cfg_get_num(obj, name, path, (double)def, (double)min, (double)max, &d,
                    ctx) != 0) {
        return -1;
    }
    if (d != floor(d)) {
        cfg_fail(ctx, cfg_key_of(key, path, name), "must be a whole number");
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

int cfg_get_int32(const cJSON *obj,
                  const char *name,
                  const char *path,
                  int def,
                  int min,
                  int max,
                  int *out,
                  struct cfg_ctx *ctx)
{
    int64_t v;

    if (cfg_get_int(obj, name, path, def, min, max, &v, ctx) != 0) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cfg_get_bool(const cJSON *obj,
                 const char *name,
                 const char *path,
                 bool def,
                 bool *out,
                 struct cfg_ctx *ctx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char key[CFG_KEY_MAX];

    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (cJSON_IsString(v) && cfg_is_override(ctx, v) &&
        (strcmp(v->valuestring, "true") == 0 ||
         strcmp(v->valuestring, "false") == 0)) {
        *out = strcmp(v->valuestring, "true") == 0;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        cfg_fail(ctx, cfg_key_of(key, path, name), "must be true or false");
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A name usable in a topic name and a Redis key. */
bool cfg_is_name(const char *s)
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
const cJSON *cfg_section(const cJSON *root,
                         const char *name,
                         const char *const *allowed,
                         struct cfg_ctx *ctx)
{
    static cJSON empty = {.type = cJSON_Object};
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, name);

    if (!obj) {
        return &empty;
    }
    return cfg_check_keys(obj, name, allowed, ctx) == 0 ? obj : NULL;
}
