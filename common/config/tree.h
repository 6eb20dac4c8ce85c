/*
 * tree.h - internals of the config reader (config.c, read.c,
 * routing.c, tree.c): setting keys in the parsed cJSON tree (for
 * overrides) and reading the tree into struct ks_config. Only those files
 * and their tests include this.
 *
 * Ownership: the cJSON tree stays the caller's; what a getter stores
 * through an out pointer (strings are heap copies) belongs to the struct
 * ks_config being filled and is freed by ks_config_destroy.
 */
#ifndef KASCADE_COMMON_CONFIG_TREE_H
#define KASCADE_COMMON_CONFIG_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"

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

/* Typed getters for read.c. Each reads obj's key name (path is the
 * key of obj, for messages): absent or null gives def; a wrong type or a
 * value outside [min, max] fails with "FILE: key 'K': reason". Values set
 * by an override are text and are converted here. Return 0 or -1. */
#define CFG_KEY_MAX 192

const char *cfg_key_of(char *buf, const char *path, const char *name);
int cfg_check_keys(const cJSON *obj,
                   const char *path,
                   const char *const *allowed,
                   struct cfg_ctx *ctx);
int cfg_get_str(const cJSON *obj,
                const char *name,
                const char *path,
                const char *def,
                char **out,
                struct cfg_ctx *ctx);
int cfg_get_num(const cJSON *obj,
                const char *name,
                const char *path,
                double def,
                double min,
                double max,
                double *out,
                struct cfg_ctx *ctx);
int cfg_get_int(const cJSON *obj,
                const char *name,
                const char *path,
                int64_t def,
                int64_t min,
                int64_t max,
                int64_t *out,
                struct cfg_ctx *ctx);
int cfg_get_int32(const cJSON *obj,
                  const char *name,
                  const char *path,
                  int def,
                  int min,
                  int max,
                  int *out,
                  struct cfg_ctx *ctx);
int cfg_get_bool(const cJSON *obj,
                 const char *name,
                 const char *path,
                 bool def,
                 bool *out,
                 struct cfg_ctx *ctx);
/* True for a name usable in a topic name and a Redis key. */
bool cfg_is_name(const char *s);
/* The object root.name, checked against allowed; an absent section reads
 * as an empty object. NULL on error. */
const cJSON *cfg_section(const cJSON *root,
                         const char *name,
                         const char *const *allowed,
                         struct cfg_ctx *ctx);

/* Validates root and fills cfg. Returns 0 or -1 (ctx says why). */
int cfg_read_tree(struct ks_config *cfg,
                  const cJSON *root,
                  struct cfg_ctx *ctx);

/* routing.c: the "routing" and "router" sections. Return 0, or -1
 * with the error in ctx. */
int cfg_read_routing(struct ks_config *cfg,
                     const cJSON *root,
                     struct cfg_ctx *ctx);
int cfg_read_router(struct ks_config *cfg,
                    const cJSON *root,
                    struct cfg_ctx *ctx);

/* signals.c: top-level answer_patterns, a tier's verifier keys, and
 * freeing both. Return 0, or -1 with the error in ctx. */
int cfg_read_answer_patterns(struct ks_config *cfg,
                             const cJSON *root,
                             struct cfg_ctx *ctx);
int cfg_read_tier_signals(struct ks_tier_cfg *t,
                          const cJSON *o,
                          const char *path,
                          struct cfg_ctx *ctx);
void cfg_free_signals(struct ks_config *cfg);

#endif
