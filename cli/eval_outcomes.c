/*
 * eval_outcomes.c - reading labelled outcomes (see eval_outcomes.h).
 * Every line must name the same tiers as the first; a confidence source
 * or task type seen for the first time on any line gets the next index.
 */
#include "eval_outcomes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "jsonl.h"

#include "base/banned.h"

static int name_index(char (*names)[EV_NAME_MAX], size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int ev_tier_index(const struct ev_set *set, const char *name)
{
    return name_index((char(*)[EV_NAME_MAX])set->tiers, set->n_tiers, name);
}

int ev_src_index(const struct ev_set *set, const char *name)
{
    return name_index((char(*)[EV_NAME_MAX])set->src, set->n_src, name);
}

int ev_type_index(const struct ev_set *set, const char *name)
{
    return name_index((char(*)[EV_NAME_MAX])set->types, set->n_types, name);
}

/* Index of name in names, added when new. -1 when full or too long. */
static int name_add(char (*names)[EV_NAME_MAX],
                    size_t *n,
                    size_t max,
                    const char *s)
{
    int i = name_index(names, *n, s);

    if (i >= 0) {
        return i;
    }
    if (*n >= max || strlen(s) >= EV_NAME_MAX || !*s) {
        return -1;
    }
    ks_strlcpy(names[*n], s, EV_NAME_MAX);
    return (int)(*n)++;
}

int ev_price_parse(const char *s, struct ev_price *p)
{
    const char *eq = strchr(s, '='), *colon = eq ? strchr(eq, ':') : NULL;
    char num[64];

    if (!eq || !colon || eq == s || (size_t)(eq - s) >= EV_NAME_MAX ||
        (size_t)(colon - eq - 1) >= sizeof(num)) {
        return -1;
    }
    memcpy(p->tier, s, (size_t)(eq - s));
    p->tier[eq - s] = '\0';
    memcpy(num, eq + 1, (size_t)(colon - eq - 1));
    num[colon - eq - 1] = '\0';
    if (ks_parse_double(num, &p->in_per_mtok) != 0 ||
        ks_parse_double(colon + 1, &p->out_per_mtok) != 0 ||
        p->in_per_mtok < 0 || p->out_per_mtok < 0) {
        return -1;
    }
    return 0;
}

static double num_or(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* The confidence map of one tier's outcome into out->conf. */
static const char *read_conf(struct ev_set *set,
                             const cJSON *conf,
                             struct ev_tier_out *out)
{
    const cJSON *c;

    if (!conf) {
        return NULL;
    }
    if (!cJSON_IsObject(conf)) {
        return "\"confidence\" must be an object of source: number";
    }
    cJSON_ArrayForEach(c, conf) {
        int s;

        if (cJSON_IsNull(c)) {
            continue;
        }
        if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0) ||
            c->valuedouble > 1) {
            return "a confidence must be a number in [0,1] or null";
        }
        s = name_add(set->src, &set->n_src, EV_MAX_SOURCES, c->string);
        if (s < 0) {
            return "too many confidence sources (or a name too long)";
        }
        out->conf[s] = c->valuedouble;
    }
    return NULL;
}

static const char *read_tier(struct ev_set *set,
                             const cJSON *o,
                             const char *tier,
                             const struct ev_price *prices,
                             size_t n_prices,
                             struct ev_tier_out *out)
{
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(o, "correct");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(o, "usage");
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(o, "finish_reason");
    double cost;

    for (size_t s = 0; s < EV_MAX_SOURCES; s++) {
        out->conf[s] = NAN;
    }
    if (!cJSON_IsObject(o)) {
        return "each tier's outcome must be an object";
    }
    if (!cJSON_IsBool(ok) && !(set->unlabelled && !ok)) {
        return "each tier needs \"correct\": true or false";
    }
    out->correct = cJSON_IsTrue(ok);
    /* learn/verify.h puts the token counts on the tier; a Result's
     * "usage" object is read too. */
    out->in_tokens =
        (int64_t)num_or(o, "input_tokens", num_or(usage, "input_tokens", 0));
    out->out_tokens =
        (int64_t)num_or(o, "output_tokens", num_or(usage, "output_tokens", 0));
    out->latency_ms = num_or(o, "latency_ms", NAN);
    out->truncated =
        cJSON_IsString(fin) && strcmp(fin->valuestring, "length") == 0;
    cost = num_or(o, "cost_usd", NAN);
    out->in_usd_per_token = 0;
    for (size_t i = 0; i < n_prices; i++) {
        if (strcmp(prices[i].tier, tier) != 0) {
            continue;
        }
        out->in_usd_per_token = prices[i].in_per_mtok / 1e6;
        if (isnan(cost)) {
            cost = ((double)out->in_tokens * prices[i].in_per_mtok +
                    (double)out->out_tokens * prices[i].out_per_mtok) /
                   1e6;
        }
    }
    if (isnan(cost) && set->unlabelled) {
        cost = 0;
    }
    if (isnan(cost) || cost < 0) {
        return "a tier has no cost_usd and no --price for it";
    }
    out->cost_usd = cost;
    return read_conf(set, cJSON_GetObjectItemCaseSensitive(o, "confidence"),
                     out);
}

static const char *read_tiers(struct ev_set *set,
                              const cJSON *tiers,
                              const struct ev_price *prices,
                              size_t n_prices,
                              struct ev_task *t)
{
    const cJSON *o;
    size_t k = 0;

    if (!cJSON_IsObject(tiers)) {
        return "\"tiers\" must be an object of tier: outcome";
    }
    cJSON_ArrayForEach(o, tiers) {
        int i;
        const char *why;

        if (set->n == 0) {
            i = name_add(set->tiers, &set->n_tiers, EV_MAX_TIERS, o->string);
        } else {
            i = ev_tier_index(set, o->string);
        }
        if (i < 0) {
            return "a tier the first line does not name (or too many)";
        }
        why = read_tier(set, o, o->string, prices, n_prices, &t->t[i]);
        if (why) {
            return why;
        }
        k++;
    }
    if (k != set->n_tiers || k < 2) {
        return "every line needs the same tiers, at least two";
    }
    return NULL;
}

static const char *read_task(struct ev_set *set,
                             const cJSON *root,
                             const struct ev_price *prices,
                             size_t n_prices,
                             struct ev_task *t)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    const char *tname = cJSON_IsString(type) ? type->valuestring : "default";
    int ty;

    if (!cJSON_IsString(p)) {
        p = cJSON_GetObjectItemCaseSensitive(root, "input");
    }
    if (!cJSON_IsString(p)) {
        return "\"prompt\" (or \"input\") must be a string";
    }
    ty = name_add(set->types, &set->n_types, EV_MAX_TYPES, tname);
    if (ty < 0) {
        return "too many task types (or a type name too long)";
    }
    t->type = (size_t)ty;
    t->has_type = cJSON_IsString(type);
    t->prompt = ks_xstrdup(p->valuestring);
    t->id = ks_xstrdup(cJSON_IsString(id) ? id->valuestring : "");
    t->router_score = num_or(root, "router_score", NAN);
    return read_tiers(set, cJSON_GetObjectItemCaseSensitive(root, "tiers"),
                      prices, n_prices, t);
}

int ev_set_read(struct ev_set *set,
                const char *path,
                const struct ev_price *prices,
                size_t n_prices)
{
    struct line_reader lr;
    cJSON *root = NULL;
    int r, rc = -1;

    if (jsonl_open(&lr, path) != 0) {
        return -1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0) {
        struct ev_task *t;
        const char *why;

        if (set->n == set->cap) {
            set->cap = set->cap ? 2 * set->cap : 256;
            set->tasks =
                ks_xrealloc(set->tasks, set->cap * sizeof(*set->tasks));
        }
        t = &set->tasks[set->n];
        memset(t, 0, sizeof(*t));
        why = read_task(set, root, prices, n_prices, t);
        set->n++; /* counted even when bad, so ev_set_free frees it */
        if (why) {
            jsonl_bad(&lr, why);
            goto out;
        }
        cJSON_Delete(root);
        root = NULL;
    }
    if (r < 0) {
        goto out;
    }
    if (set->n == 0) {
        fprintf(stderr, "kascade: %s has no outcomes\n", path);
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    jsonl_close(&lr);
    return rc;
}

void ev_set_free(struct ev_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->tasks[i].id);
        free(set->tasks[i].prompt);
    }
    free(set->tasks);
    set->tasks = NULL;
    set->n = set->cap = 0;
}

uint64_t ev_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ev_set_split(const struct ev_set *set,
                  double share,
                  uint64_t seed,
                  const struct ev_task ***train,
                  size_t *n_train,
                  const struct ev_task ***test,
                  size_t *n_test)
{
    const struct ev_task **all = ks_xmalloc(set->n * sizeof(*all));
    size_t k = (size_t)floor(share * (double)set->n + 0.5);

    for (size_t i = 0; i < set->n; i++) {
        all[i] = &set->tasks[i];
    }
    for (size_t i = set->n; i > 1; i--) {
        size_t j = (size_t)(ev_rand(&seed) % i);
        const struct ev_task *x = all[i - 1];

        all[i - 1] = all[j];
        all[j] = x;
    }
    k = k > set->n ? set->n : k;
    *n_train = k;
    *n_test = set->n - k;
    *train = ks_xmalloc((k ? k : 1) * sizeof(**train));
    *test = ks_xmalloc((set->n - k ? set->n - k : 1) * sizeof(**test));
    memcpy(*train, all, k * sizeof(**train));
    memcpy(*test, all + k, (set->n - k) * sizeof(**test));
    free(all);
}

/* Sets o[key] to a number, replacing what was there. */
static void put_num(cJSON *o, const char *key, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddNumberToObject(o, key, v);
}

/* Adds every known confidence of task t to line root's tiers. */
static void scored_line(const struct ev_set *set,
                        const struct ev_task *t,
                        cJSON *root)
{
    cJSON *tiers = cJSON_GetObjectItemCaseSensitive(root, "tiers");

    if (!isnan(t->router_score)) {
        put_num(root, "router_score", t->router_score);
    }
    for (size_t k = 0; k < set->n_tiers; k++) {
        cJSON *o = cJSON_GetObjectItemCaseSensitive(tiers, set->tiers[k]);
        cJSON *conf = cJSON_GetObjectItemCaseSensitive(o, "confidence");

        for (size_t s = 0; o && s < set->n_src; s++) {
            if (isnan(t->t[k].conf[s])) {
                continue;
            }
            if (!cJSON_IsObject(conf)) {
                cJSON_DeleteItemFromObjectCaseSensitive(o, "confidence");
                conf = cJSON_AddObjectToObject(o, "confidence");
            }
            put_num(conf, set->src[s], t->t[k].conf[s]);
        }
    }
}

int ev_set_write_scored(const struct ev_set *set,
                        const char *in_path,
                        const char *out_path)
{
    struct line_reader lr;
    cJSON *root = NULL;
    FILE *fp;
    size_t i = 0;
    int r, rc = -1;

    if (jsonl_open(&lr, in_path) != 0) {
        return -1;
    }
    fp = fopen(out_path, "w");
    if (!fp) {
        fprintf(stderr, "kascade: cannot write %s\n", out_path);
        jsonl_close(&lr);
        return -1;
    }
    while ((r = jsonl_next(&lr, &root)) > 0 && i < set->n) {
        char *text;

        scored_line(set, &set->tasks[i++], root);
        text = cJSON_PrintUnformatted(root);
        if (!text || fprintf(fp, "%s\n", text) < 0) {
            free(text);
            goto out;
        }
        free(text);
        cJSON_Delete(root);
        root = NULL;
    }
    rc = r < 0 ? -1 : 0;
out:
    cJSON_Delete(root);
    jsonl_close(&lr);
    if (fclose(fp) != 0 || rc != 0) {
        fprintf(stderr, "kascade: writing %s failed\n", out_path);
        rc = -1;
    }
    return rc;
}
