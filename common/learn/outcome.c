/*
 * outcome.c - one line of labelled outcomes (verify.h): the task and, per
 * tier, its answer, correctness, usage, latency, finish reason and logprob
 * summary. A field of the wrong type is an error naming it; a missing
 * optional field is "unknown" (-1, NULL, false).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "learn/verify.h"

#include "base/banned.h"

#define BAD(...)                                                               \
    do {                                                                       \
        snprintf(errstr, errstr_size, __VA_ARGS__);                            \
        return -1;                                                             \
    } while (0)

/* An optional number field: *out, or def when absent. */
static int opt_num(const cJSON *o,
                   const char *key,
                   double def,
                   double *out,
                   const char *where,
                   char *errstr,
                   size_t errstr_size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = def;
    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        BAD("%s\"%s\" must be a number", where, key);
    }
    *out = v->valuedouble;
    return 0;
}

static int opt_str(const cJSON *o,
                   const char *key,
                   char **out,
                   const char *where,
                   char *errstr,
                   size_t errstr_size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (!cJSON_IsString(v)) {
        BAD("%s\"%s\" must be a string", where, key);
    }
    *out = ks_xstrdup(v->valuestring);
    return 0;
}

static int parse_logprobs(const cJSON *lp,
                          struct ks_logprob_stats *s,
                          const char *where,
                          char *errstr,
                          size_t errstr_size)
{
    char w[160];

    memset(s, 0, sizeof(*s));
    if (!lp || cJSON_IsNull(lp)) {
        return 0;
    }
    if (!cJSON_IsObject(lp)) {
        BAD("%s\"logprobs\" must be an object", where);
    }
    snprintf(w, sizeof(w), "%slogprobs: ", where);
    if (opt_num(lp, "mean", 0, &s->mean, w, errstr, errstr_size) ||
        opt_num(lp, "min", NAN, &s->min, w, errstr, errstr_size) ||
        opt_num(lp, "share_low", NAN, &s->share_low, w, errstr, errstr_size)) {
        return -1;
    }
    if (!cJSON_GetObjectItemCaseSensitive(lp, "mean")) {
        BAD("%s\"logprobs\" needs \"mean\"", where);
    }
    s->present = true;
    return 0;
}

static int parse_tier(const cJSON *j,
                      struct ks_outcome_tier *t,
                      char *errstr,
                      size_t errstr_size)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "correct");
    char w[160];
    double x;

    snprintf(w, sizeof(w), "tiers.%.100s: ", j->string);
    t->name = ks_xstrdup(j->string);
    if (!cJSON_IsObject(j)) {
        BAD("%smust be an object", w);
    }
    if (opt_str(j, "answer", &t->answer, w, errstr, errstr_size) ||
        opt_str(j, "finish_reason", &t->finish_reason, w, errstr,
                errstr_size)) {
        return -1;
    }
    t->answer = t->answer ? t->answer : ks_xstrdup("");
    if (c && !cJSON_IsBool(c) &&
        !(cJSON_IsNumber(c) && (c->valuedouble == 0 || c->valuedouble == 1))) {
        BAD("%s\"correct\" must be true/false (or 0/1)", w);
    }
    t->has_correct = c != NULL;
    t->correct = cJSON_IsTrue(c) || (cJSON_IsNumber(c) && c->valuedouble == 1);
    if (opt_num(j, "input_tokens", -1, &x, w, errstr, errstr_size)) {
        return -1;
    }
    t->input_tokens = (int64_t)x;
    if (opt_num(j, "output_tokens", -1, &x, w, errstr, errstr_size)) {
        return -1;
    }
    t->output_tokens = (int64_t)x;
    if (opt_num(j, "latency_ms", -1, &x, w, errstr, errstr_size)) {
        return -1;
    }
    t->latency_ms = (int64_t)x;
    if (opt_num(j, "cost_usd", -1, &t->cost_usd, w, errstr, errstr_size) ||
        opt_num(j, "self_report", -1, &t->self_report, w, errstr,
                errstr_size) ||
        opt_num(j, "agreement", -1, &t->agreement, w, errstr, errstr_size)) {
        return -1;
    }
    if (t->agreement > 1) {
        BAD("%s\"agreement\" must be in [0, 1]", w);
    }
    if (t->self_report > 1) {
        BAD("%s\"self_report\" must be in [0, 1]", w);
    }
    return parse_logprobs(cJSON_GetObjectItemCaseSensitive(j, "logprobs"),
                          &t->logprobs, w, errstr, errstr_size);
}

static int parse_meta(const cJSON *md,
                      struct ks_outcome *o,
                      char *errstr,
                      size_t errstr_size)
{
    const cJSON *it;

    if (!md || cJSON_IsNull(md)) {
        return 0;
    }
    if (!cJSON_IsObject(md)) {
        BAD("\"metadata\" must be an object of strings");
    }
    o->metadata =
        ks_xcalloc((size_t)cJSON_GetArraySize(md) + 1, sizeof(*o->metadata));
    cJSON_ArrayForEach(it, md) {
        if (!cJSON_IsString(it)) {
            BAD("metadata.%.100s must be a string", it->string);
        }
        o->metadata[o->n_metadata].key = ks_xstrdup(it->string);
        o->metadata[o->n_metadata++].value = ks_xstrdup(it->valuestring);
    }
    return 0;
}

static int parse_top(const cJSON *r,
                     struct ks_outcome *o,
                     char *errstr,
                     size_t errstr_size)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "prompt");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "output_schema");
    const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(r, "tiers"), *it;
    double mot;

    if (!cJSON_IsObject(r)) {
        BAD("a line must be a JSON object");
    }
    if (!cJSON_IsString(p)) {
        BAD("\"prompt\" must be a string");
    }
    o->prompt = ks_xstrdup(p->valuestring);
    if (opt_str(r, "id", &o->id, "", errstr, errstr_size) ||
        opt_str(r, "type", &o->type, "", errstr, errstr_size) ||
        opt_num(r, "max_output_tokens", 0, &mot, "", errstr, errstr_size) ||
        parse_meta(cJSON_GetObjectItemCaseSensitive(r, "metadata"), o, errstr,
                   errstr_size)) {
        return -1;
    }
    o->type = o->type ? o->type : ks_xstrdup("");
    o->max_output_tokens = mot > 0 ? (int64_t)mot : 0;
    if (s && !cJSON_IsNull(s)) {
        if (!cJSON_IsObject(s)) {
            BAD("\"output_schema\" must be an object");
        }
        o->output_schema = cJSON_PrintUnformatted(s);
    }
    if (!cJSON_IsObject(tiers) || !tiers->child) {
        BAD("\"tiers\" must be an object with a field per tier");
    }
    o->tiers = ks_xcalloc((size_t)cJSON_GetArraySize(tiers), sizeof(*o->tiers));
    cJSON_ArrayForEach(it, tiers) {
        if (parse_tier(it, &o->tiers[o->n_tiers++], errstr, errstr_size)) {
            return -1;
        }
    }
    return 0;
}

int ks_outcome_parse(const void *root,
                     struct ks_outcome *o,
                     char *errstr,
                     size_t errstr_size)
{
    memset(o, 0, sizeof(*o));
    if (parse_top(root, o, errstr, errstr_size) != 0) {
        ks_outcome_fini(o);
        return -1;
    }
    return 0;
}

void ks_outcome_fini(struct ks_outcome *o)
{
    for (size_t i = 0; i < o->n_tiers; i++) {
        free(o->tiers[i].name);
        free(o->tiers[i].answer);
        free(o->tiers[i].finish_reason);
    }
    for (size_t i = 0; i < o->n_metadata; i++) {
        free(o->metadata[i].key);
        free(o->metadata[i].value);
    }
    free(o->tiers);
    free(o->metadata);
    free(o->id);
    free(o->type);
    free(o->prompt);
    if (o->output_schema) {
        cJSON_free(o->output_schema);
    }
    memset(o, 0, sizeof(*o));
}

const struct ks_outcome_tier *ks_outcome_tier(const struct ks_outcome *o,
                                              const char *name)
{
    for (size_t i = 0; i < o->n_tiers; i++) {
        if (strcmp(o->tiers[i].name, name) == 0) {
            return &o->tiers[i];
        }
    }
    return NULL;
}

void ks_verify_input_from_outcome(const struct ks_outcome *o,
                                  const struct ks_outcome_tier *t,
                                  struct ks_verify_input *in)
{
    memset(in, 0, sizeof(*in));
    in->type = o->type;
    in->prompt = o->prompt;
    in->answer = t->answer;
    in->finish_reason = t->finish_reason;
    in->max_output_tokens = o->max_output_tokens;
    in->output_tokens = t->output_tokens;
    in->output_schema = o->output_schema;
    in->logprobs = t->logprobs;
    in->has_agreement = t->agreement >= 0;
    in->agreement = t->agreement;
    in->has_self_report = t->self_report >= 0;
    in->self_report = t->self_report;
}
