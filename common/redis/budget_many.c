/*
 * budget_many.c - reservations and settlements of many calls in one
 * pipelined round trip (EVALSHA of each, sent together), so a worker's
 * loop makes one Redis round trip per turn for all its due jobs instead
 * of one per job. Each command is the same script call a single reserve or
 * settle makes (budget.c), so atomicity per reservation is unchanged,
 * except that the sweeps (dead owners, expired reservations) and the
 * liveness renewal run in the first command of the pipeline that names
 * their keys, not in every one (reserve_flags). A
 * NOSCRIPT or other error reply sends that one again the single way
 * (ks_store_script_run loads the script again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/budget.h"
#include "redis/budget_cmd.h"

#include "base/banned.h"

#define ARGV_MAX (3 + 12 + 9)

/* The pipeline's buffers for n commands. */
struct many {
    struct ks_store_cmd *cmds;
    const char **argv;
    size_t *lens;
    char (*numkeys)[BUDGET_NUM_LEN];
    redisReply **replies;
    size_t *slot; /* command j is request slot[j] */
    size_t m;     /* commands built */
};

static void many_init(struct many *p, size_t n)
{
    n = n ? n : 1;
    p->cmds = ks_xcalloc(n, sizeof(*p->cmds));
    p->argv = ks_xcalloc(n * ARGV_MAX, sizeof(*p->argv));
    p->lens = ks_xcalloc(n * ARGV_MAX, sizeof(*p->lens));
    p->numkeys = ks_xcalloc(n, sizeof(*p->numkeys));
    p->replies = ks_xcalloc(n, sizeof(*p->replies));
    p->slot = ks_xcalloc(n, sizeof(*p->slot));
    p->m = 0;
}

static void many_fini(struct many *p)
{
    for (size_t j = 0; j < p->m; j++) {
        if (p->replies[j]) {
            freeReplyObject(p->replies[j]);
        }
    }
    free(p->slot);
    free(p->replies);
    free(p->numkeys);
    free(p->lens);
    free(p->argv);
    free(p->cmds);
}

/* Adds EVALSHA sha with keys and args as request i's command. */
static void many_add(struct many *p,
                     size_t i,
                     const char *sha,
                     int nkeys,
                     const char *const *keys,
                     int nargs,
                     const char *const *args)
{
    const char **argv = &p->argv[p->m * ARGV_MAX];
    size_t *lens = &p->lens[p->m * ARGV_MAX];
    int argc = 0;

    snprintf(p->numkeys[p->m], BUDGET_NUM_LEN, "%d", nkeys);
    argv[argc++] = "EVALSHA";
    argv[argc++] = sha;
    argv[argc++] = p->numkeys[p->m];
    for (int k = 0; k < nkeys; k++) {
        argv[argc++] = keys[k];
    }
    for (int k = 0; k < nargs; k++) {
        argv[argc++] = args[k];
    }
    for (int k = 0; k < argc; k++) {
        lens[k] = strlen(argv[k]);
    }
    p->cmds[p->m].argc = argc;
    p->cmds[p->m].argv = argv;
    p->cmds[p->m].argvlen = lens;
    p->slot[p->m++] = i;
}

/* Sends the commands: errs of every one KS_ERR_RETRY when Redis is
 * unreachable. */
static void many_send(struct ks_store *rs, struct many *p, enum ks_err *errs)
{
    if (p->m > 0 && ks_store_pipeline(rs, p->m, p->cmds, p->replies) != KS_OK) {
        for (size_t j = 0; j < p->m; j++) {
            errs[p->slot[j]] = KS_ERR_RETRY;
        }
    }
}

static enum ks_err first_error(size_t n, const enum ks_err *errs, bool budget)
{
    enum ks_err all = KS_OK;

    for (size_t i = 0; i < n; i++) {
        if (errs[i] != KS_OK && !(budget && errs[i] == KS_ERR_BUDGET)) {
            all = errs[i];
        }
    }
    return all;
}

/* Request i again the single way (an error reply: NOSCRIPT or other). */
static enum ks_err reserve_one(struct ks_store *rs,
                               const struct ks_budget_owner *owner,
                               const struct ks_budget_request *q,
                               int64_t now_ms,
                               struct ks_budget_reservation *res,
                               const char **refused_by)
{
    return ks_budget_reserve(rs, owner, q->tier, q->tier_limit_micro, q->tenant,
                             q->tenant_limit_micro, q->cost_micro, now_ms,
                             q->ttl_ms, res, refused_by);
}

/* Was budget b's hash named by an earlier command of the pipeline? */
static bool swept_before(const struct budget_reserve_cmd *c,
                         size_t m,
                         int b,
                         const char *h)
{
    for (size_t j = 0; j < m; j++) {
        if (c[j].nkeys > 2 + 5 * b && strcmp(c[j].k[b].h, h) == 0) {
            return true;
        }
    }
    return false;
}

/* Adds the sweep flags to command m (budget_lua.h): the fleet's sweep and
 * each budget's run once per pipeline, in the first command naming them.
 * The scan is over the commands built so far: a turn has at most
 * BATCH_MAX of them. */
static void reserve_flags(struct budget_reserve_cmd *c, size_t m)
{
    int nb = (c[m].nkeys - 2) / 5, k = 0;

    c[m].flags[k++] = m == 0 ? '1' : '0';
    for (int b = 0; b < nb; b++) {
        c[m].flags[k++] = swept_before(c, m, b, c[m].k[b].h) ? '0' : '1';
    }
    c[m].flags[k] = '\0';
    c[m].args[c[m].nargs++] = c[m].flags;
}

enum ks_err ks_budget_reserve_many(struct ks_store *rs,
                                   const struct ks_budget_owner *owner,
                                   size_t n,
                                   const struct ks_budget_request *req,
                                   int64_t now_ms,
                                   struct ks_budget_reservation *res,
                                   const char **refused_by,
                                   enum ks_err *errs)
{
    struct budget_reserve_cmd *c = ks_xcalloc(n ? n : 1, sizeof(*c));
    struct many p;
    char sha[41];
    enum ks_err sha_err = ks_store_script_sha(rs, &budget_script_reserve, sha);

    many_init(&p, n);
    for (size_t i = 0; i < n; i++) {
        refused_by[i] = NULL;
        errs[i] = sha[0] ? budget_reserve_prepare(rs, owner, &req[i], now_ms,
                                                  &res[i], &c[p.m])
                         : sha_err;
        if (errs[i] == KS_OK) {
            reserve_flags(c, p.m);
            many_add(&p, i, sha, c[p.m].nkeys, c[p.m].keys, c[p.m].nargs,
                     c[p.m].args);
        }
    }
    many_send(rs, &p, errs);
    for (size_t j = 0; j < p.m; j++) {
        size_t i = p.slot[j];

        if (!p.replies[j]) {
            continue; /* unreachable: errs[i] is KS_ERR_RETRY */
        }
        if (p.replies[j]->type == REDIS_REPLY_ERROR) {
            errs[i] = reserve_one(rs, owner, &req[i], now_ms, &res[i],
                                  &refused_by[i]);
        } else {
            errs[i] = budget_reserve_reply(p.replies[j], &refused_by[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (errs[i] != KS_OK) {
            memset(&res[i], 0, sizeof(res[i]));
        }
    }
    many_fini(&p);
    free(c);
    return first_error(n, errs, true);
}

enum ks_err ks_budget_settle_many_send(struct ks_store *rs,
                                       size_t n,
                                       const struct ks_budget_reservation *res,
                                       const int64_t *actual_micro,
                                       int64_t now_ms,
                                       enum ks_err *errs)
{
    struct budget_settle_cmd *c = ks_xcalloc(n ? n : 1, sizeof(*c));
    struct many p;
    char sha[41];
    /* Without the SHA1 every settlement fails as a single one would. */
    enum ks_err sha_err = ks_store_script_sha(rs, &budget_script_settle, sha);
    enum ks_err err = KS_OK;

    many_init(&p, n);
    for (size_t i = 0; i < n; i++) {
        errs[i] = sha[0] ? budget_settle_prepare(rs, &res[i], actual_micro[i],
                                                 now_ms, &c[p.m])
                         : sha_err;
        if (errs[i] == KS_OK) {
            many_add(&p, i, sha, c[p.m].nkeys, c[p.m].keys, c[p.m].nargs,
                     c[p.m].args);
        }
    }
    /* The commands are formatted into hiredis's buffer by the send: the
     * arguments need not outlive it. */
    if (p.m > 0) {
        err = ks_store_pipeline_send(rs, p.m, p.cmds);
    }
    if (err != KS_OK) {
        for (size_t j = 0; j < p.m; j++) {
            errs[p.slot[j]] = err;
        }
    }
    many_fini(&p);
    free(c);
    return first_error(n, errs, false);
}

enum ks_err ks_budget_settle_many_recv(struct ks_store *rs,
                                       size_t n,
                                       const struct ks_budget_reservation *res,
                                       const int64_t *actual_micro,
                                       int64_t now_ms,
                                       enum ks_err *errs)
{
    size_t m = 0, j = 0;
    redisReply **replies;
    enum ks_err err;

    for (size_t i = 0; i < n; i++) {
        m += errs[i] == KS_OK;
    }
    if (m == 0) {
        return first_error(n, errs, false);
    }
    replies = ks_xcalloc(m, sizeof(*replies));
    err = ks_store_pipeline_recv(rs, m, replies);
    for (size_t i = 0; i < n; i++) {
        if (errs[i] != KS_OK) {
            continue; /* not sent */
        }
        if (err != KS_OK) {
            errs[i] = err;
        } else if (replies[j]->type == REDIS_REPLY_ERROR) {
            /* NOSCRIPT or other: the single way loads the script again */
            errs[i] = ks_budget_settle(rs, &res[i], actual_micro[i], now_ms);
        }
        if (replies[j]) {
            freeReplyObject(replies[j]);
        }
        j++;
    }
    free(replies);
    return first_error(n, errs, false);
}

enum ks_err ks_budget_settle_many(struct ks_store *rs,
                                  size_t n,
                                  const struct ks_budget_reservation *res,
                                  const int64_t *actual_micro,
                                  int64_t now_ms,
                                  enum ks_err *errs)
{
    ks_budget_settle_many_send(rs, n, res, actual_micro, now_ms, errs);
    return ks_budget_settle_many_recv(rs, n, res, actual_micro, now_ms, errs);
}
