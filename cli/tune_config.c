/*
 * tune_config.c - tune's thresholds in and out of config files (see
 * tune_config.h). JSON in and out through cJSON; a config file is read
 * whole, up to TUNE_CONFIG_MAX bytes.
 */
#include "tune_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define TUNE_CONFIG_MAX (4 * 1024 * 1024)

static cJSON *read_json(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct ks_buf b;
    char chunk[8192], ebuf[128];
    size_t got;
    cJSON *root = NULL;

    if (!fp) {
        fprintf(stderr, "kascade tune: %s: %s\n", path,
                ks_strerror(errno, ebuf, sizeof(ebuf)));
        return NULL;
    }
    ks_buf_init(&b);
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (b.len + got > TUNE_CONFIG_MAX) {
            fprintf(stderr, "kascade tune: %s: over %d bytes\n", path,
                    TUNE_CONFIG_MAX);
            goto out;
        }
        ks_buf_append(&b, chunk, got);
    }
    ks_buf_append(&b, "", 1);
    root = cJSON_Parse(b.data);
    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "kascade tune: %s: not a JSON object\n", path);
        cJSON_Delete(root);
        root = NULL;
    }
out:
    fclose(fp);
    ks_buf_fini(&b);
    return root;
}

static int write_json(const char *path, const cJSON *root)
{
    char *text = cJSON_Print(root), ebuf[128];
    FILE *fp = text ? fopen(path, "w") : NULL;
    int rc = 0;

    if (!fp || fputs(text, fp) < 0 || fputc('\n', fp) == EOF) {
        rc = -1;
    }
    if (fp && fclose(fp) != 0) {
        rc = -1;
    }
    if (rc) {
        fprintf(stderr, "kascade tune: %s: %s\n", path,
                ks_strerror(errno, ebuf, sizeof(ebuf)));
    }
    free(text);
    return rc;
}

/* Sets (replacing) key of o to item, which o takes. */
static void put(cJSON *o, const char *key, cJSON *item)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddItemToObject(o, key, item);
}

/* Writes the tier's thresholds into tier object to. */
static void put_tier(const struct tune_out_args *w, cJSON *to)
{
    cJSON *types = cJSON_CreateObject();

    put(to, "escalate_below", cJSON_CreateNumber(w->c->below_rest));
    for (size_t ty = 0; ty < w->set->n_types; ty++) {
        if (w->c->own[ty]) {
            cJSON_AddNumberToObject(types, w->set->types[ty],
                                    w->c->policy.below[ty]);
        }
    }
    if (cJSON_GetArraySize(types) > 0) {
        put(to, "escalate_below_types", types);
    } else {
        cJSON_Delete(types);
        cJSON_DeleteItemFromObjectCaseSensitive(to, "escalate_below_types");
    }
}

static void put_routing(const struct tune_out_args *w, cJSON *routing)
{
    if (!w->score_model) {
        return;
    }
    if (isnan(w->c->policy.route_at)) {
        /* The search found the score not worth its threshold. */
        cJSON_DeleteItemFromObjectCaseSensitive(routing, "score_model");
        cJSON_DeleteItemFromObjectCaseSensitive(routing, "score_threshold");
        return;
    }
    put(routing, "score_model", cJSON_CreateString(w->score_model));
    put(routing, "score_threshold", cJSON_CreateNumber(w->c->policy.route_at));
}

static int write_fragment(const struct tune_out_args *w, const char *out)
{
    cJSON *root = cJSON_CreateObject(), *tiers = cJSON_CreateArray();
    cJSON *tier = cJSON_CreateObject(), *routing = cJSON_CreateObject();
    int rc;

    cJSON_AddStringToObject(tier, "name", w->tier);
    put_tier(w, tier);
    cJSON_AddItemToArray(tiers, tier);
    cJSON_AddItemToObject(root, "tiers", tiers);
    put_routing(w, routing);
    if (cJSON_GetArraySize(routing) > 0) {
        cJSON_AddItemToObject(root, "routing", routing);
    } else {
        cJSON_Delete(routing);
    }
    rc = write_json(out, root);
    cJSON_Delete(root);
    return rc;
}

static cJSON *tier_of(const cJSON *root, const char *name)
{
    const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(root, "tiers");
    cJSON *t;

    cJSON_ArrayForEach(t, tiers) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "name");

        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
            return t;
        }
    }
    return NULL;
}

static int write_config(const struct tune_out_args *w,
                        const char *base,
                        const char *out)
{
    cJSON *root = read_json(base), *tier, *routing;
    int rc = -1;

    if (!root) {
        return -1;
    }
    tier = tier_of(root, w->tier);
    if (!tier) {
        fprintf(stderr, "kascade tune: %s has no tier named %s\n", base,
                w->tier);
        goto out;
    }
    put_tier(w, tier);
    routing = cJSON_GetObjectItemCaseSensitive(root, "routing");
    if (!routing) {
        routing = cJSON_AddObjectToObject(root, "routing");
    }
    put_routing(w, routing);
    rc = write_json(out, root);
out:
    cJSON_Delete(root);
    return rc;
}

int tune_write(const struct tune_out_args *w,
               const char *out,
               const char *base,
               const char *write_config_path)
{
    if (out) {
        if (write_fragment(w, out) != 0) {
            return -1;
        }
        printf("wrote %s (a config fragment: merge its tier and routing "
               "keys into your config)\n",
               out);
    }
    if (base) {
        if (write_config(w, base, write_config_path) != 0) {
            return -1;
        }
        printf("wrote %s (%s with the thresholds set)\n", write_config_path,
               base);
    }
    return 0;
}

void tune_remap(struct tune_choice *c,
                const struct ev_set *from,
                const struct ev_set *to,
                size_t to_src)
{
    double below[EV_MAX_TYPES];
    bool own[EV_MAX_TYPES];

    for (size_t ty = 0; ty < EV_MAX_TYPES; ty++) {
        int f = ty < to->n_types ? ev_type_index(from, to->types[ty]) : -1;

        own[ty] = f >= 0 && c->own[f];
        below[ty] = own[ty] ? c->policy.below[f] : c->below_rest;
    }
    memcpy(c->policy.below, below, sizeof(below));
    memcpy(c->own, own, sizeof(own));
    c->policy.src = to_src;
}

int tune_read_config(const char *path, char **model)
{
    cJSON *root = read_json(path);
    const cJSON *m;

    *model = NULL;
    if (!root) {
        return -1;
    }
    m = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "routing"), "score_model");
    if (cJSON_IsString(m)) {
        *model = ks_xstrdup(m->valuestring);
    }
    cJSON_Delete(root);
    return 0;
}

static double num_in(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int tune_policy_of_config(const char *path,
                          const struct ev_set *set,
                          size_t lo,
                          size_t src,
                          struct ev_policy *p)
{
    cJSON *root = read_json(path);
    const cJSON *tier, *types, *routing;
    double below;

    if (!root) {
        return -1;
    }
    tier = tier_of(root, set->tiers[lo]);
    if (!tier) {
        fprintf(stderr, "kascade tune: %s has no tier named %s\n", path,
                set->tiers[lo]);
        cJSON_Delete(root);
        return -1;
    }
    below = num_in(tier, "escalate_below", 0);
    types = cJSON_GetObjectItemCaseSensitive(tier, "escalate_below_types");
    memset(p, 0, sizeof(*p));
    p->src = src;
    for (size_t ty = 0; ty < EV_MAX_TYPES; ty++) {
        p->below[ty] =
            ty < set->n_types ? num_in(types, set->types[ty], below) : below;
    }
    routing = cJSON_GetObjectItemCaseSensitive(root, "routing");
    p->route_at =
        cJSON_IsString(cJSON_GetObjectItemCaseSensitive(routing, "score_model"))
            ? num_in(routing, "score_threshold", 0.5)
            : NAN;
    printf("%s: %s escalate_below %.6g%s; router %s\n", path, set->tiers[lo],
           below, types ? " (with per-type values)" : "",
           isnan(p->route_at) ? "score off" : "score on");
    cJSON_Delete(root);
    return 0;
}
