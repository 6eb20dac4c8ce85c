/*
 * budget_many.c - the reservations and settlements of many calls in one
 * script call each (budget_lua.h: reserve_many, settle_many), so a
 * worker's loop turn costs Redis one EVALSHA for all its due jobs, and
 * each budget's reads, its counter updates and its per-reservation
 * records are one command per budget, not one per job.
 *
 * The decisions are those of single reserves and settles made one after
 * another in request order (the script keeps running totals), so every
 * money rule of budget.c holds unchanged: spent + reserved never passes a
 * limit (the reservations that fit are granted, in order, the others
 * refused), sweeps charge lapsed owners and expired reservations at worst
 * case, a late settle replaces that charge once. All keys carry the
 * {budget} tag and are named in KEYS (one Cluster slot).
 *
 * Errors: a NOSCRIPT reply (Redis restarted, SCRIPT FLUSH) sends the same
 * call again as EVAL with the text, which loads it; any other error reply
 * (a garbage runtime limit of one budget, WRONGTYPE) makes each request
 * again the single way (budget.c), so that only the requests it concerns
 * fail, as before the batching. The scripts raise their errors before any
 * write but the sweeps, so a failed call changed no reservation.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/budget.h"
#include "redis/budget_cmd.h"

#include "base/banned.h"

#define LOG_TAG   "budget"
#define RESERVE_N 7 /* ARGV per reservation (budget_lua.h) */
#define SETTLE_N  5 /* ARGV per settlement */

/* One budget of a call: its keys and key TTL. */
struct call_budget {
    struct budget_keys k;
    char ttl[BUDGET_NUM_LEN];
};

/* One script call being built for n requests: KEYS are L, the owner sets,
 * then the budgets; ARGV the head, then per request. Sized up front, so
 * the pointers into it stay valid until call_fini. */
struct call {
    char live[BUDGET_KEY_MAX];
    char (*owned)[BUDGET_KEY_MAX];
    const char **owner_of; /* the owner id of each set, borrowed */
    size_t nw;
    struct call_budget **b;
    size_t nb;
    const char **args; /* the per-request ARGV */
    size_t nargs;
    char (*num)[BUDGET_NUM_LEN];
    size_t nnum;
    size_t *slot; /* request j of the call is slot[j] of the caller's */
    size_t m;
    const char **argv; /* the whole command, by call_finish */
    size_t *lens;
    size_t argc;
    char numkeys[BUDGET_NUM_LEN];
};

static void call_init(struct call *c, size_t n, size_t per, size_t head)
{
    n = n ? n : 1;
    memset(c, 0, sizeof(*c));
    c->owned = ks_xmalloc(n * sizeof(*c->owned));
    c->owner_of = ks_xcalloc(n, sizeof(*c->owner_of));
    c->b = ks_xcalloc(2 * n, sizeof(*c->b));
    c->args = ks_xcalloc(per * n, sizeof(*c->args));
    c->num = ks_xmalloc((per * n + head + 2 * n) * sizeof(*c->num));
    c->slot = ks_xcalloc(n, sizeof(*c->slot));
    c->argv = ks_xcalloc(3 + 1 + n + 10 * n + head + 2 * n + per * n,
                         sizeof(*c->argv));
    c->lens = ks_xcalloc(3 + 1 + n + 10 * n + head + 2 * n + per * n,
                         sizeof(*c->lens));
}

static void call_fini(struct call *c)
{
    for (size_t i = 0; i < c->nb; i++) {
        free(c->b[i]);
    }
    free(c->lens);
    free(c->argv);
    free(c->slot);
    free(c->num);
    free(c->args);
    free(c->b);
    free(c->owner_of);
    free(c->owned);
}

/* v as a string kept by c. */
static const char *call_num(struct call *c, int64_t v)
{
    budget_put_num(c->num[c->nnum], v);
    return c->num[c->nnum++];
}

/* The 1-based index of budget k (of day TTL ttl_s) among c's budgets,
 * added when new. A turn names few budgets: a linear scan. */
static size_t call_budget(struct call *c,
                          const struct budget_keys *k,
                          int64_t ttl_s)
{
    for (size_t i = 0; i < c->nb; i++) {
        if (strcmp(c->b[i]->k.h, k->h) == 0) {
            return i + 1;
        }
    }
    c->b[c->nb] = ks_xmalloc(sizeof(*c->b[c->nb]));
    c->b[c->nb]->k = *k;
    budget_put_num(c->b[c->nb]->ttl, ttl_s);
    return ++c->nb;
}

/* The 1-based index of owner's set (owned: its key) among c's, added
 * when new; 0 for no owner. */
static size_t call_owner(struct call *c, const char *owner, const char *owned)
{
    if (!owner[0]) {
        return 0;
    }
    for (size_t i = 0; i < c->nw; i++) {
        if (strcmp(c->owner_of[i], owner) == 0) {
            return i + 1;
        }
    }
    c->owner_of[c->nw] = owner;
    ks_strlcpy(c->owned[c->nw], owned, BUDGET_KEY_MAX);
    return ++c->nw;
}

static void call_put(struct call *c, const char *s)
{
    c->lens[c->argc] = strlen(s);
    c->argv[c->argc++] = s;
}

/* Lays out the EVALSHA: KEYS (L, the owner sets, each budget's first
 * nkb keys), the head, then the per-request args. */
static void call_finish(struct call *c,
                        const char *sha,
                        int nkb,
                        size_t nhead,
                        const char *const *head)
{
    c->argc = 0;
    call_put(c, "EVALSHA");
    call_put(c, sha);
    snprintf(c->numkeys, sizeof(c->numkeys), "%zu",
             1 + c->nw + (size_t)nkb * c->nb);
    call_put(c, c->numkeys);
    call_put(c, c->live);
    for (size_t i = 0; i < c->nw; i++) {
        call_put(c, c->owned[i]);
    }
    for (size_t i = 0; i < c->nb; i++) {
        const struct budget_keys *k = &c->b[i]->k;
        const char *g[5] = {k->h, k->z, k->a, k->sw, k->l};

        for (int j = 0; j < nkb; j++) {
            call_put(c, g[j]);
        }
    }
    for (size_t i = 0; i < nhead; i++) {
        call_put(c, head[i]);
    }
    for (size_t i = 0; i < c->nargs; i++) {
        call_put(c, c->args[i]);
    }
}

/* Runs the call again as EVAL with the script's text (after NOSCRIPT: it
 * loads the script again). Returns the reply, or NULL. */
static redisReply *call_eval(struct ks_store *rs,
                             struct call *c,
                             const struct ks_store_script *sc)
{
    c->argv[0] = "EVAL";
    c->lens[0] = 4;
    c->argv[1] = sc->text;
    c->lens[1] = strlen(sc->text);
    return ks_store_command(rs, (int)c->argc, c->argv, c->lens);
}

static bool is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Runs the finished call: its reply, NOSCRIPT handled; NULL when Redis
 * is unreachable. */
static redisReply *call_run(struct ks_store *rs,
                            struct call *c,
                            const struct ks_store_script *sc)
{
    struct ks_store_cmd cmd = {(int)c->argc, c->argv, c->lens};
    redisReply *r = NULL;

    if (ks_store_pipeline(rs, 1, &cmd, &r) != KS_OK) {
        return NULL;
    }
    if (is_noscript(r)) {
        freeReplyObject(r);
        r = call_eval(rs, c, sc);
    }
    return r;
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

/* Adds request i (prepared into one) to the reserve call. */
static void reserve_add(struct call *c,
                        size_t i,
                        const struct ks_budget_reservation *res,
                        const struct budget_reserve_cmd *one)
{
    int64_t ttl_s = strtoll(one->ttl, NULL, 10);
    size_t bt = call_budget(c, &one->k[0], ttl_s);
    size_t bn = res->tenant[0] ? call_budget(c, &one->k[1], ttl_s) : 0;
    const char *a[RESERVE_N] = {
        res->id,
        call_num(c, res->amount_micro),
        call_num(c, strtoll(one->ttl_ms, NULL, 10)),
        call_num(c, (int64_t)bt),
        call_num(c, strtoll(one->limits[0], NULL, 10)),
        call_num(c, (int64_t)bn),
        call_num(c, strtoll(one->limits[1], NULL, 10)),
    };

    memcpy(&c->args[c->nargs], a, sizeof(a));
    c->nargs += RESERVE_N;
    c->slot[c->m++] = i;
}

/* Request i again the single way (the batch got an error reply). */
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

/* Maps the reserve_many reply onto the call's requests; false when the
 * reply is not one verdict per request. */
static bool reserve_verdicts(const redisReply *r,
                             const struct call *c,
                             const char **refused_by,
                             enum ks_err *errs)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != c->m) {
        return false;
    }
    for (size_t j = 0; j < c->m; j++) {
        if (r->element[j]->type != REDIS_REPLY_INTEGER) {
            return false;
        }
    }
    for (size_t j = 0; j < c->m; j++) {
        long long v = r->element[j]->integer;

        errs[c->slot[j]] = v == 1 ? KS_OK : KS_ERR_BUDGET;
        refused_by[c->slot[j]] = v == 1 ? NULL : v == -2 ? "tenant" : "tier";
    }
    return true;
}

/* Sends the built reserve call and sets each request's outcome. */
static void reserve_run(struct ks_store *rs,
                        const struct ks_budget_owner *owner,
                        const struct ks_budget_request *req,
                        int64_t now_ms,
                        struct call *c,
                        struct ks_budget_reservation *res,
                        const char **refused_by,
                        enum ks_err *errs)
{
    redisReply *r = call_run(rs, c, &budget_script_reserve_many);

    if (!r) {
        for (size_t j = 0; j < c->m; j++) {
            errs[c->slot[j]] = KS_ERR_RETRY;
        }
        return;
    }
    if (!reserve_verdicts(r, c, refused_by, errs)) {
        ks_log_warn(LOG_TAG, "reserve_many: %s; each the single way",
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        for (size_t j = 0; j < c->m; j++) {
            size_t i = c->slot[j];

            errs[i] = reserve_one(rs, owner, &req[i], now_ms, &res[i],
                                  &refused_by[i]);
        }
    }
    freeReplyObject(r);
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
    struct budget_reserve_cmd *one = ks_xmalloc(sizeof(*one));
    const char *head[3] = {"", "0", "0"};
    struct call c;
    char sha[41];
    enum ks_err sha_err =
        ks_store_script_sha(rs, &budget_script_reserve_many, sha);

    call_init(&c, n, RESERVE_N, 3);
    for (size_t i = 0; i < n; i++) {
        refused_by[i] = NULL;
        memset(&res[i], 0, sizeof(res[i])); /* nothing sent: nothing named */
        errs[i] = sha[0] ? budget_reserve_prepare(rs, owner, &req[i], now_ms,
                                                  &res[i], one)
                         : sha_err;
        if (errs[i] != KS_OK) {
            continue;
        }
        if (c.m == 0) {
            ks_strlcpy(c.live, one->live, sizeof(c.live));
            call_owner(&c, owner ? owner->id : "", one->owned);
            head[0] = owner ? owner->id : "";
            head[1] = call_num(&c, owner ? owner->live_ms : 0);
            head[2] = call_num(&c, strtoll(one->ttl, NULL, 10));
        }
        reserve_add(&c, i, &res[i], one);
    }
    if (c.m > 0) {
        if (c.nw == 0) {
            /* W is KEYS[2] of the script: any key of the tag. */
            ks_strlcpy(c.owned[0], one->owned, BUDGET_KEY_MAX);
            c.nw = 1;
        }
        call_finish(&c, sha, 5, 3, head);
        reserve_run(rs, owner, req, now_ms, &c, res, refused_by, errs);
    }
    for (size_t i = 0; i < n; i++) {
        if (errs[i] != KS_OK &&
            (errs[i] != KS_ERR_RETRY || !ks_store_sent(rs))) {
            memset(&res[i], 0, sizeof(res[i])); /* else it may exist */
        }
    }
    call_fini(&c);
    free(one);
    return first_error(n, errs, true);
}

/* Builds the settle_many call of the settlements whose errs[i] is KS_OK
 * (prepare == true: each is checked first and errs[i] set). */
static void settle_build(struct ks_store *rs,
                         size_t n,
                         const struct ks_budget_reservation *res,
                         const int64_t *actual_micro,
                         int64_t now_ms,
                         const char *sha,
                         bool prepare,
                         enum ks_err *errs,
                         struct call *c)
{
    struct budget_settle_cmd *one = ks_xmalloc(sizeof(*one));
    const char **head = ks_xcalloc(1 + 2 * (n ? n : 1), sizeof(*head));

    call_init(c, n, SETTLE_N, 1);
    for (size_t i = 0; i < n; i++) {
        if (errs[i] != KS_OK ||
            budget_settle_prepare(rs, &res[i], actual_micro[i], now_ms, one) !=
                KS_OK) {
            errs[i] = prepare && errs[i] == KS_OK ? KS_ERR_INVALID : errs[i];
            continue;
        }
        int64_t ttl_s = strtoll(one->ttl, NULL, 10);
        size_t bt = call_budget(c, &one->k[0], ttl_s);
        size_t bn = res[i].tenant[0] ? call_budget(c, &one->k[1], ttl_s) : 0;
        size_t w = call_owner(c, res[i].owner, one->owned);
        const char *a[SETTLE_N] = {
            res[i].id, call_num(c, actual_micro[i]), call_num(c, (int64_t)w),
            call_num(c, (int64_t)bt), call_num(c, (int64_t)bn)};

        ks_strlcpy(c->live, one->live, sizeof(c->live));
        memcpy(&c->args[c->nargs], a, sizeof(a));
        c->nargs += SETTLE_N;
        c->slot[c->m++] = i;
    }
    head[0] = call_num(c, (int64_t)c->nw);
    for (size_t b = 0; b < c->nb; b++) {
        head[1 + b] = c->b[b]->ttl;
    }
    call_finish(c, sha, 4, 1 + c->nb, head);
    free(head);
    free(one);
}

enum ks_err ks_budget_settle_many_send(struct ks_store *rs,
                                       size_t n,
                                       const struct ks_budget_reservation *res,
                                       const int64_t *actual_micro,
                                       int64_t now_ms,
                                       enum ks_err *errs)
{
    char sha[41];
    /* Without the SHA1 every settlement fails as a single one would. */
    enum ks_err err = ks_store_script_sha(rs, &budget_script_settle_many, sha);
    struct call c;

    for (size_t i = 0; i < n; i++) {
        errs[i] = sha[0] ? KS_OK : err;
    }
    if (!sha[0]) {
        return first_error(n, errs, false);
    }
    settle_build(rs, n, res, actual_micro, now_ms, sha, true, errs, &c);
    if (c.m > 0) {
        struct ks_store_cmd cmd = {(int)c.argc, c.argv, c.lens};

        /* Formatted into hiredis's buffer by the send: the arguments
         * need not outlive it. */
        err = ks_store_pipeline_send(rs, 1, &cmd);
        for (size_t j = 0; err != KS_OK && j < c.m; j++) {
            errs[c.slot[j]] = err;
        }
    }
    call_fini(&c);
    return first_error(n, errs, false);
}

/* The sent settlements again: as EVAL (after NOSCRIPT), else each the
 * single way. */
static void settle_again(struct ks_store *rs,
                         size_t n,
                         const struct ks_budget_reservation *res,
                         const int64_t *actual_micro,
                         int64_t now_ms,
                         bool noscript,
                         enum ks_err *errs)
{
    redisReply *r = NULL;
    struct call c;

    if (noscript) {
        settle_build(rs, n, res, actual_micro, now_ms, "", false, errs, &c);
        r = call_eval(rs, &c, &budget_script_settle_many);
        call_fini(&c);
    }
    if (r && r->type == REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return;
    }
    if (r) {
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n; i++) {
        if (errs[i] == KS_OK) {
            errs[i] = ks_budget_settle(rs, &res[i], actual_micro[i], now_ms);
        }
    }
}

enum ks_err ks_budget_settle_many_recv(struct ks_store *rs,
                                       size_t n,
                                       const struct ks_budget_reservation *res,
                                       const int64_t *actual_micro,
                                       int64_t now_ms,
                                       enum ks_err *errs)
{
    redisReply *r = NULL;
    size_t m = 0;
    enum ks_err err;

    for (size_t i = 0; i < n; i++) {
        m += errs[i] == KS_OK;
    }
    if (m == 0) {
        return first_error(n, errs, false);
    }
    err = ks_store_pipeline_recv(rs, 1, &r);
    if (err != KS_OK) {
        for (size_t i = 0; i < n; i++) {
            errs[i] = errs[i] == KS_OK ? err : errs[i];
        }
    } else if (!r || r->type != REDIS_REPLY_INTEGER) {
        ks_log_warn(LOG_TAG, "settle_many: %s; again",
                    r && r->type == REDIS_REPLY_ERROR ? r->str
                                                      : "unexpected reply");
        settle_again(rs, n, res, actual_micro, now_ms, is_noscript(r), errs);
    }
    if (r) {
        freeReplyObject(r);
    }
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
