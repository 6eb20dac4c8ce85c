/*
 * done.c - the done records: the stored outcome of a finished call, so a
 * redelivered task is answered again without calling (and paying for) the
 * model twice (docs/design.md section 7). Keys: <prefix>done:<id>:<hop>.
 */
#include "redis/done.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

static void done_key(const struct ks_store *rs,
                     const char *id,
                     uint32_t hop,
                     char *buf,
                     size_t size)
{
    snprintf(buf, size, "%sdone:%s:%" PRIu32, ks_store_prefix(rs), id, hop);
}

enum ks_err ks_store_done_get(struct ks_store *rs,
                              const char *id,
                              uint32_t hop,
                              char **valuep,
                              size_t *lenp)
{
    char key[600];

    done_key(rs, id, hop, key, sizeof(key));
    return ks_store_get(rs, key, valuep, lenp);
}

enum ks_err ks_store_done_put(struct ks_store *rs,
                              const char *id,
                              uint32_t hop,
                              const void *value,
                              size_t len)
{
    char key[600];

    done_key(rs, id, hop, key, sizeof(key));
    return ks_store_set(rs, key, value, len);
}

enum ks_err ks_store_done_get_many(struct ks_store *rs,
                                   size_t n,
                                   const char *const *ids,
                                   const uint32_t *hops,
                                   char **values,
                                   size_t *lens)
{
    struct ks_store_cmd *cmds = ks_xcalloc(n ? n : 1, sizeof(*cmds));
    char(*keys)[600] = ks_xcalloc(n ? n : 1, sizeof(*keys));
    const char **argv = ks_xcalloc(2 * (n ? n : 1), sizeof(*argv));
    size_t *argvlen = ks_xcalloc(2 * (n ? n : 1), sizeof(*argvlen));
    redisReply **replies = ks_xcalloc(n ? n : 1, sizeof(*replies));
    enum ks_err err;

    for (size_t i = 0; i < n; i++) {
        done_key(rs, ids[i], hops[i], keys[i], sizeof(keys[i]));
        argv[2 * i] = "GET";
        argvlen[2 * i] = 3;
        argv[2 * i + 1] = keys[i];
        argvlen[2 * i + 1] = strlen(keys[i]);
        cmds[i] = (struct ks_store_cmd){2, &argv[2 * i], &argvlen[2 * i]};
        values[i] = NULL;
        lens[i] = 0;
    }
    err = ks_store_pipeline(rs, n, cmds, replies);
    for (size_t i = 0; err == KS_OK && i < n; i++) {
        redisReply *r = replies[i];

        if (r->type == REDIS_REPLY_STRING && r->len <= ks_store_max_value(rs)) {
            values[i] = ks_xstrndup(r->str, r->len);
            lens[i] = r->len;
        } else if (r->type == REDIS_REPLY_ERROR) {
            ks_log_warn("store", "GET %s: %s", keys[i], r->str);
            err = KS_ERR_UPSTREAM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (replies[i]) {
            freeReplyObject(replies[i]);
        }
        if (err != KS_OK) {
            free(values[i]);
            values[i] = NULL;
        }
    }
    free(replies);
    free(argvlen);
    free(argv);
    free(keys);
    free(cmds);
    return err;
}

enum ks_err ks_store_done_put_many(struct ks_store *rs,
                                   size_t n,
                                   const char *const *ids,
                                   const uint32_t *hops,
                                   const char *const *values,
                                   const size_t *lens,
                                   enum ks_err *errs)
{
    struct ks_store_cmd *cmds = ks_xcalloc(n ? n : 1, sizeof(*cmds));
    char(*keys)[600] = ks_xcalloc(n ? n : 1, sizeof(*keys));
    const char **argv = ks_xcalloc(5 * (n ? n : 1), sizeof(*argv));
    size_t *argvlen = ks_xcalloc(5 * (n ? n : 1), sizeof(*argvlen));
    redisReply **replies = ks_xcalloc(n ? n : 1, sizeof(*replies));
    char ttl[32];
    enum ks_err err;

    snprintf(ttl, sizeof(ttl), "%" PRId64, ks_store_ttl_s(rs));
    for (size_t i = 0; i < n; i++) {
        const char *a[5] = {"SET", keys[i], values[i], "EX", ttl};
        size_t l[5] = {3, 0, lens[i], 2, strlen(ttl)};

        done_key(rs, ids[i], hops[i], keys[i], sizeof(keys[i]));
        l[1] = strlen(keys[i]);
        memcpy(&argv[5 * i], a, sizeof(a));
        memcpy(&argvlen[5 * i], l, sizeof(l));
        cmds[i] = (struct ks_store_cmd){5, &argv[5 * i], &argvlen[5 * i]};
    }
    err = ks_store_pipeline(rs, n, cmds, replies);
    for (size_t i = 0; i < n; i++) {
        errs[i] = err;
        if (replies[i]) {
            if (replies[i]->type == REDIS_REPLY_ERROR) {
                ks_log_warn("store", "SET %s: %s", keys[i], replies[i]->str);
                errs[i] = KS_ERR_UPSTREAM;
            }
            freeReplyObject(replies[i]);
        }
    }
    free(replies);
    free(argvlen);
    free(argv);
    free(keys);
    free(cmds);
    return err;
}
