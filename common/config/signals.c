/*
 * signals.c - the config of answer confidence signals (docs/design.md
 * sections 6 and 9): the top-level "answer_patterns" ({"type": PCRE2
 * pattern}, compiled once, matched with rule.h's bound), and per tier the
 * verifier's model files ("verifier_model", "verifier_models": {"type":
 * path}), "samples" (agreement: answers per task), and
 * "escalate_context" (what an escalated call reads: "final", the
 * default, "answer", "full", "none"). Model files are read by
 * the worker, not here: a config stays loadable where the models are not (the
 * router, the CLI).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "config/config.h"
#include "config/tree.h"

#include "base/banned.h"

/* answer_patterns holds at most this many types. */
#define ANSWER_PATTERNS_MAX 256

int cfg_read_answer_patterns(struct ks_config *cfg,
                             const cJSON *root,
                             struct cfg_ctx *ctx)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "answer_patterns");
    const cJSON *item;
    char key[CFG_KEY_MAX], why[256];

    if (!o || cJSON_IsNull(o)) {
        return 0;
    }
    if (!cJSON_IsObject(o) || cJSON_GetArraySize(o) > ANSWER_PATTERNS_MAX) {
        cfg_fail(ctx, "answer_patterns",
                 "must be an object of at most %d {\"type\": \"pattern\"}",
                 ANSWER_PATTERNS_MAX);
        return -1;
    }
    cfg->answer_patterns = ks_xcalloc((size_t)cJSON_GetArraySize(o) + 1,
                                      sizeof(*cfg->answer_patterns));
    cJSON_ArrayForEach(item, o) {
        struct ks_answer_pattern *ap =
            &cfg->answer_patterns[cfg->n_answer_patterns];

        cfg_key_of(key, "answer_patterns", item->string);
        if (!cJSON_IsString(item) || !item->valuestring[0]) {
            cfg_fail(ctx, key, "must be a non-empty PCRE2 pattern");
            return -1;
        }
        ap->re =
            ks_rule_re_new(item->valuestring,
                           cfg->rules_match_limit ? cfg->rules_match_limit
                                                  : KS_RULE_MATCH_LIMIT_DEFAULT,
                           why, sizeof(why));
        if (!ap->re) {
            cfg_fail(ctx, key, "%s", why);
            return -1;
        }
        ap->type = ks_xstrdup(item->string);
        ap->pattern = ks_xstrdup(item->valuestring);
        cfg->n_answer_patterns++;
    }
    return 0;
}

bool ks_escalate_context_parse(const char *s, enum ks_escalate_context *out)
{
    static const struct {
        const char *name;
        enum ks_escalate_context v;
    } values[] = {{"final", KS_ESC_CTX_FINAL},
                  {"answer", KS_ESC_CTX_ANSWER},
                  {"full", KS_ESC_CTX_FULL},
                  {"none", KS_ESC_CTX_NONE}};

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        if (strcmp(s, values[i].name) == 0) {
            *out = values[i].v;
            return true;
        }
    }
    return false;
}

static int read_escalate_context(struct ks_tier_cfg *t,
                                 const cJSON *o,
                                 const char *path,
                                 struct cfg_ctx *ctx)
{
    char key[CFG_KEY_MAX];
    char *s = NULL;
    bool ok;

    if (cfg_get_str(o, "escalate_context", path, "final", &s, ctx)) {
        return -1;
    }
    ok = ks_escalate_context_parse(s, &t->escalate_context);
    free(s);
    if (!ok) {
        cfg_fail(ctx, cfg_key_of(key, path, "escalate_context"),
                 "must be " KS_ESCALATE_CONTEXT_VALUES);
        return -1;
    }
    return 0;
}

int cfg_read_tier_signals(struct ks_tier_cfg *t,
                          const cJSON *o,
                          const char *path,
                          struct cfg_ctx *ctx)
{
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(o, "verifier_models");
    const cJSON *item;
    char key[CFG_KEY_MAX], sub[CFG_KEY_MAX];

    if (cfg_get_str(o, "verifier_model", path, NULL, &t->verifier_model, ctx) ||
        cfg_get_int32(o, "samples", path, 1, 1, KS_SAMPLES_MAX, &t->samples,
                      ctx) ||
        read_escalate_context(t, o, path, ctx)) {
        return -1;
    }
    if (!types || cJSON_IsNull(types)) {
        return 0;
    }
    cfg_key_of(sub, path, "verifier_models");
    if (!cJSON_IsObject(types)) {
        cfg_fail(ctx, sub, "must be an object of {\"type\": \"model file\"}");
        return -1;
    }
    t->verifier_models = ks_xcalloc((size_t)cJSON_GetArraySize(types) + 1,
                                    sizeof(*t->verifier_models));
    cJSON_ArrayForEach(item, types) {
        if (!cJSON_IsString(item) || !item->valuestring[0]) {
            cfg_fail(ctx, cfg_key_of(key, sub, item->string),
                     "must be the path of a verifier model file");
            return -1;
        }
        t->verifier_models[t->n_verifier_models].type =
            ks_xstrdup(item->string);
        t->verifier_models[t->n_verifier_models++].path =
            ks_xstrdup(item->valuestring);
    }
    return 0;
}

void cfg_free_signals(struct ks_config *cfg)
{
    for (size_t i = 0; i < cfg->n_answer_patterns; i++) {
        ks_rule_re_destroy(cfg->answer_patterns[i].re);
        free(cfg->answer_patterns[i].type);
        free(cfg->answer_patterns[i].pattern);
    }
    free(cfg->answer_patterns);
    for (size_t i = 0; i < cfg->n_tiers; i++) {
        struct ks_tier_cfg *t = &cfg->tiers[i];

        for (size_t j = 0; j < t->n_verifier_models; j++) {
            free(t->verifier_models[j].type);
            free(t->verifier_models[j].path);
        }
        free(t->verifier_models);
        free(t->verifier_model);
    }
}

const struct ks_rule_re *ks_config_answer_pattern(const struct ks_config *cfg,
                                                  const char *type)
{
    for (size_t i = 0; type && i < cfg->n_answer_patterns; i++) {
        if (strcmp(cfg->answer_patterns[i].type, type) == 0) {
            return cfg->answer_patterns[i].re;
        }
    }
    return NULL;
}

const char *ks_config_verifier_model(const struct ks_tier_cfg *tier,
                                     const char *type)
{
    for (size_t i = 0; type && i < tier->n_verifier_models; i++) {
        if (strcmp(tier->verifier_models[i].type, type) == 0) {
            return tier->verifier_models[i].path;
        }
    }
    return tier->verifier_model;
}
