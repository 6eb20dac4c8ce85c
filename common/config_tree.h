/*
 * config_tree.h - internals of config.c: setting keys in the parsed cJSON
 * tree (for overrides) and reading the tree into struct ks_config. Only
 * config.c and its tests include this.
 */
#ifndef KASCADE_COMMON_CONFIG_TREE_H
#define KASCADE_COMMON_CONFIG_TREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "config.h"

struct cfg_ctx {
    const char *file;
    char *errstr;
    size_t errstr_size;
    int failed;
    /* Values set by the environment or -X: text, typed by the key that
     * reads them (so "007" stays "007" for a string and a librdkafka
     * property, and becomes 7 only where a number is wanted). */
    const cJSON **overridden;
    size_t n_overridden;
};

/* Records "FILE: key 'KEY': reason" (or "FILE: reason" when key is NULL)
 * in ctx->errstr unless an earlier error is already there. */
void cfg_fail(struct cfg_ctx *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets dotted key to value in root. "kafka.<rest>" keeps <rest> whole (a
 * librdkafka property); "tiers.<name>.<k>" addresses the tier by name;
 * numeric parts index arrays. value is stored as text and remembered in
 * ctx, to be typed by the key that reads it. Returns 0 or -1 (ctx says
 * why). */
int cfg_tree_set(cJSON *root,
                 const char *key,
                 const char *value,
                 struct cfg_ctx *ctx);

/* Validates root and fills cfg. Returns 0 or -1 (ctx says why). */
int cfg_read_tree(struct ks_config *cfg,
                  const cJSON *root,
                  struct cfg_ctx *ctx);

#endif
