/*
 * done.c - the done records: the stored outcome of a finished call, so a
 * redelivered task is answered again without calling (and paying for) the
 * model twice (docs/design.md section 7).
 *
 * Keys: <prefix>done:<tenant>:<id>:<hop>, each part encoded, so a tenant
 * never reads another tenant's record by naming its id. Values: the
 * task's digest (64 hex digits), then the outcome. The digest tells a
 * redelivery (same task: answered from the record) from an id reused for
 * a different task within the TTL (a conflict: never answered from the
 * other task's record).
 */
#include "redis/done.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "wire/digest.h"

#include "base/banned.h"

#define DIGEST_LEN (KS_TASK_DIGEST_SIZE - 1)
/* prefix, an id and a tenant of 256 bytes encoded (x3), the hop. */
#define KEY_MAX 2048

/* The key of task's record for hop into buf. Returns 0, or -1 (logged)
 * when it does not fit. */
static int done_key(const struct ks_store *rs,
                    const struct ks_task *task,
                    uint32_t hop,
                    char *buf,
                    size_t size)
{
    char tenant[KEY_MAX / 2], id[KEY_MAX / 2];
    int n;

    if (ks_store_key_part(task->id, id, sizeof(id)) < 0 ||
        (task->tenant &&
         ks_store_key_part(task->tenant, tenant, sizeof(tenant)) < 0)) {
        goto too_long;
    }
    n = snprintf(buf, size, "%sdone:%s:%s:%" PRIu32, ks_store_prefix(rs),
                 task->tenant ? tenant : KS_STORE_NO_TENANT, id, hop);
    if (n >= 0 && (size_t)n < size) {
        return 0;
    }
too_long:
    ks_log_error("store", "done record key of a task too long");
    return -1;
}

/* Splits a stored value of len bytes: is it task's (digest)? On a match
 * *valuep is a new copy of the outcome (*lenp bytes); otherwise *conflict
 * is set and *valuep stays NULL. */
static void take_value(const char *digest,
                       const char *key,
                       const char *stored,
                       size_t len,
                       char **valuep,
                       size_t *lenp,
                       bool *conflict)
{
    if (len < DIGEST_LEN || memcmp(stored, digest, DIGEST_LEN) != 0) {
        ks_log_warn("store", "%s: the record is another task's (id reused)",
                    key);
        *conflict = true;
        return;
    }
    *valuep = ks_xstrndup(stored + DIGEST_LEN, len - DIGEST_LEN);
    *lenp = len - DIGEST_LEN;
}

enum ks_err ks_store_done_get(struct ks_store *rs,
                              const struct ks_task *task,
                              uint32_t hop,
                              char **valuep,
                              size_t *lenp,
                              bool *conflict)
{
    char key[KEY_MAX], digest[KS_TASK_DIGEST_SIZE];
    char *stored = NULL;
    size_t len = 0;
    enum ks_err err;

    *valuep = NULL;
    *lenp = 0;
    *conflict = false;
    if (done_key(rs, task, hop, key, sizeof(key)) != 0) {
        return KS_ERR_INVALID;
    }
    err = ks_task_digest(task, digest);
    if (err == KS_OK) {
        err = ks_store_get(rs, key, &stored, &len);
    }
    if (err == KS_OK && stored) {
        take_value(digest, key, stored, len, valuep, lenp, conflict);
    }
    free(stored);
    return err;
}

/* The stored form of value: task's digest, then value. Caller frees. */
static char *record_new(const struct ks_task *task,
                        const void *value,
                        size_t len)
{
    char *rec = ks_xmalloc(DIGEST_LEN + len + 1);
    char digest[KS_TASK_DIGEST_SIZE];

    if (ks_task_digest(task, digest) != KS_OK) {
        free(rec);
        return NULL;
    }
    memcpy(rec, digest, DIGEST_LEN);
    memcpy(rec + DIGEST_LEN, value, len);
    rec[DIGEST_LEN + len] = '\0';
    return rec;
}

enum ks_err ks_store_done_put(struct ks_store *rs,
                              const struct ks_task *task,
                              uint32_t hop,
                              const void *value,
                              size_t len)
{
    char key[KEY_MAX];
    char *rec;
    enum ks_err err;

    if (done_key(rs, task, hop, key, sizeof(key)) != 0) {
        return KS_ERR_INVALID;
    }
    rec = record_new(task, value, len);
    if (!rec) {
        return KS_ERR_NOMEM;
    }
    err = ks_store_set(rs, key, rec, DIGEST_LEN + len);
    free(rec);
    return err;
}

enum ks_err ks_store_done_get_add(const struct ks_store *rs,
                                  struct ks_store_batch *b,
                                  const struct ks_task *task,
                                  uint32_t hop,
                                  size_t *idx)
{
    char key[KEY_MAX];
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, 0};

    if (done_key(rs, task, hop, key, sizeof(key)) != 0) {
        return KS_ERR_INVALID;
    }
    lens[1] = strlen(key);
    *idx = ks_store_batch_add(b, 2, argv, lens);
    return KS_OK;
}

enum ks_err ks_store_done_put_add(const struct ks_store *rs,
                                  struct ks_store_batch *b,
                                  const struct ks_task *task,
                                  uint32_t hop,
                                  const void *value,
                                  size_t len,
                                  size_t *idx)
{
    char key[KEY_MAX], ttl[32];
    const char *argv[5] = {"SET", key, NULL, "EX", ttl};
    size_t lens[5] = {3, 0, DIGEST_LEN + len, 2, 0};
    char *rec;

    if (done_key(rs, task, hop, key, sizeof(key)) != 0) {
        return KS_ERR_INVALID;
    }
    rec = record_new(task, value, len);
    if (!rec) {
        return KS_ERR_NOMEM;
    }
    snprintf(ttl, sizeof(ttl), "%" PRId64, ks_store_ttl_s(rs));
    argv[2] = rec;
    lens[1] = strlen(key);
    lens[4] = strlen(ttl);
    *idx = ks_store_batch_add(b, 5, argv, lens);
    free(rec);
    return KS_OK;
}

enum ks_err ks_store_done_put_reply(const struct ks_store_batch *b,
                                    size_t idx,
                                    const struct ks_task *task)
{
    const redisReply *r = ks_store_batch_reply(b, idx);

    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        ks_log_warn("store", "SET done record of %s: %s", task->id, r->str);
        return KS_ERR_UPSTREAM;
    }
    return KS_OK;
}

enum ks_err ks_store_done_get_reply(const struct ks_store *rs,
                                    const struct ks_store_batch *b,
                                    size_t idx,
                                    const struct ks_task *task,
                                    char **valuep,
                                    size_t *lenp,
                                    bool *conflict)
{
    const redisReply *r = ks_store_batch_reply(b, idx);
    char digest[KS_TASK_DIGEST_SIZE];
    enum ks_err err;

    *valuep = NULL;
    *lenp = 0;
    *conflict = false;
    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        ks_log_warn("store", "GET done record of %s: %s", task->id, r->str);
        return KS_ERR_UPSTREAM;
    }
    if (r->type != REDIS_REPLY_STRING) {
        return KS_OK; /* nil: no record */
    }
    if (r->len > ks_store_max_value(rs)) {
        ks_log_warn("store",
                    "done record of %s: %zu bytes, over the cap: "
                    "ignored",
                    task->id, (size_t)r->len);
        return KS_OK;
    }
    err = ks_task_digest(task, digest);
    if (err == KS_OK) {
        take_value(digest, task->id, r->str, r->len, valuep, lenp, conflict);
    }
    return err;
}

enum ks_err ks_store_done_get_many(struct ks_store *rs,
                                   size_t n,
                                   const struct ks_task *const *tasks,
                                   const uint32_t *hops,
                                   char **values,
                                   size_t *lens,
                                   bool *conflicts)
{
    struct ks_store_cmd *cmds = ks_xcalloc(n ? n : 1, sizeof(*cmds));
    char(*keys)[KEY_MAX] = ks_xcalloc(n ? n : 1, sizeof(*keys));
    const char **argv = ks_xcalloc(2 * (n ? n : 1), sizeof(*argv));
    size_t *argvlen = ks_xcalloc(2 * (n ? n : 1), sizeof(*argvlen));
    redisReply **replies = ks_xcalloc(n ? n : 1, sizeof(*replies));
    enum ks_err err = KS_OK;

    for (size_t i = 0; i < n; i++) {
        values[i] = NULL;
        lens[i] = 0;
        conflicts[i] = false;
        if (done_key(rs, tasks[i], hops[i], keys[i], sizeof(keys[i])) != 0) {
            err = KS_ERR_INVALID;
        }
        argv[2 * i] = "GET";
        argvlen[2 * i] = 3;
        argv[2 * i + 1] = keys[i];
        argvlen[2 * i + 1] = strlen(keys[i]);
        cmds[i] = (struct ks_store_cmd){2, &argv[2 * i], &argvlen[2 * i]};
    }
    if (err == KS_OK) {
        err = ks_store_pipeline(rs, n, cmds, replies);
    }
    for (size_t i = 0; err == KS_OK && i < n; i++) {
        redisReply *r = replies[i];
        char digest[KS_TASK_DIGEST_SIZE];

        if (r->type == REDIS_REPLY_STRING && r->len <= ks_store_max_value(rs)) {
            err = ks_task_digest(tasks[i], digest);
            if (err == KS_OK) {
                take_value(digest, keys[i], r->str, r->len, &values[i],
                           &lens[i], &conflicts[i]);
            }
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
            conflicts[i] = false;
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
                                   const struct ks_task *const *tasks,
                                   const uint32_t *hops,
                                   const char *const *values,
                                   const size_t *lens,
                                   enum ks_err *errs)
{
    struct ks_store_cmd *cmds = ks_xcalloc(n ? n : 1, sizeof(*cmds));
    char(*keys)[KEY_MAX] = ks_xcalloc(n ? n : 1, sizeof(*keys));
    char **recs = ks_xcalloc(n ? n : 1, sizeof(*recs));
    const char **argv = ks_xcalloc(5 * (n ? n : 1), sizeof(*argv));
    size_t *argvlen = ks_xcalloc(5 * (n ? n : 1), sizeof(*argvlen));
    size_t *slot = ks_xcalloc(n ? n : 1, sizeof(*slot));
    redisReply **replies = ks_xcalloc(n ? n : 1, sizeof(*replies));
    size_t m = 0;
    char ttl[32];
    enum ks_err err;

    snprintf(ttl, sizeof(ttl), "%" PRId64, ks_store_ttl_s(rs));
    for (size_t i = 0; i < n; i++) {
        const char *a[5] = {"SET", keys[m], NULL, "EX", ttl};
        size_t l[5] = {3, 0, DIGEST_LEN + lens[i], 2, strlen(ttl)};

        errs[i] = KS_ERR_INVALID; /* until sent */
        if (done_key(rs, tasks[i], hops[i], keys[m], sizeof(keys[m])) != 0) {
            continue;
        }
        recs[m] = record_new(tasks[i], values[i], lens[i]);
        if (!recs[m]) {
            errs[i] = KS_ERR_NOMEM;
            continue;
        }
        a[2] = recs[m];
        l[1] = strlen(keys[m]);
        memcpy(&argv[5 * m], a, sizeof(a));
        memcpy(&argvlen[5 * m], l, sizeof(l));
        cmds[m] = (struct ks_store_cmd){5, &argv[5 * m], &argvlen[5 * m]};
        slot[m++] = i;
    }
    err = ks_store_pipeline(rs, m, cmds, replies);
    for (size_t j = 0; j < m; j++) {
        errs[slot[j]] = err;
        if (replies[j]) {
            if (replies[j]->type == REDIS_REPLY_ERROR) {
                ks_log_warn("store", "SET %s: %s", keys[j], replies[j]->str);
                errs[slot[j]] = KS_ERR_UPSTREAM;
            }
            freeReplyObject(replies[j]);
        }
        free(recs[j]);
    }
    free(replies);
    free(slot);
    free(argvlen);
    free(argv);
    free(recs);
    free(keys);
    free(cmds);
    return err;
}
