/*
 * budget.c - daily cost budgets in Redis: reserve before a call, settle
 * after it (docs/design.md section 7). The logic lives in the Lua scripts of
 * budget_lua.h so that each step is atomic across the tier's and the
 * tenant's budget; this file builds keys and arguments and maps replies.
 *
 * Invariants:
 * - all amounts are integer micro-dollars; a refused reservation changes
 *   no counter of either budget (only expired reservations get swept);
 * - spent only grows by settle and add_spent, and moves to reset_micro on
 *   reset; counters are never deleted, only expired with their day (two
 *   days after its end: relative TTLs from the caller's now, so a skewed
 *   Redis clock cannot expire them early);
 * - settle is idempotent per reservation id: an open reservation is
 *   released and counted; one swept after expiring is remembered in a
 *   per-budget "swept" hash until settled, so a late settle still counts
 *   the money once; an id found in neither place was settled already.
 *   Only swept ids are kept (not every settled id), so the extra memory
 *   is proportional to crashed calls, not to traffic.
 *
 * Scripts are run by ks_store_script_run (store.h): EVALSHA with the
 * SHA1 cached for the process, falling back to EVAL on NOSCRIPT (Redis
 * restarted or SCRIPT FLUSH), which also loads the script again.
 */
#include "redis/budget.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/budget_lua.h"

#include "base/banned.h"

#define DAY_MS    (86400 * (int64_t)1000)
#define KEEP_DAYS 2 /* day keys live this long after their day ends */
#define KEY_MAX   512
#define MAX_MICRO ((int64_t)1 << 53) /* exact in a Lua double */
#define MAX_KEYS  10
#define MAX_ARGS  8
#define LOG_TAG   "budget"
#define NUM_LEN   24

static struct ks_store_script script_reserve =
    KS_STORE_SCRIPT_INIT("reserve", budget_lua_reserve);
static struct ks_store_script script_settle =
    KS_STORE_SCRIPT_INIT("settle", budget_lua_settle);
static struct ks_store_script script_read =
    KS_STORE_SCRIPT_INIT("read", budget_lua_read);
static struct ks_store_script script_adjust =
    KS_STORE_SCRIPT_INIT("adjust", budget_lua_adjust);

/* The keys of one budget (see budget_lua.h). */
struct budget_keys {
    char h[KEY_MAX], z[KEY_MAX], a[KEY_MAX], sw[KEY_MAX], l[KEY_MAX];
};

void ks_budget_day(int64_t now_ms, char day[9])
{
    time_t t = (time_t)(now_ms / 1000 - (now_ms % 1000 < 0 ? 1 : 0));
    struct tm tm;

    if (!gmtime_r(&t, &tm)) {
        ks_strlcpy(day, "00000000", 9);
        return;
    }
    snprintf(day, 9, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday);
}

/* The TTL in seconds, from now_ms, of the keys of day (YYYYMMDD): they
 * expire KEEP_DAYS after the day ends; at least 1. Returns -1 when day is
 * not a date. */
static int64_t day_ttl_s(const char *day, int64_t now_ms)
{
    struct tm tm = {0};
    int64_t ymd, expire_ms, ttl;
    time_t start;

    if (strlen(day) != 8 || strspn(day, "0123456789") != 8 ||
        ks_parse_int64(day, 19700101, 99991231, &ymd) != 0) {
        return -1;
    }
    tm.tm_year = (int)(ymd / 10000) - 1900;
    tm.tm_mon = (int)(ymd / 100 % 100) - 1;
    tm.tm_mday = (int)(ymd % 100);
    start = timegm(&tm);
    if (start == (time_t)-1 || tm.tm_mday != (int)(ymd % 100)) {
        return -1; /* timegm normalized an impossible date */
    }
    expire_ms = (int64_t)start * 1000 + (1 + KEEP_DAYS) * DAY_MS;
    ttl = (expire_ms - now_ms + 999) / 1000;
    return ttl < 1 ? 1 : ttl;
}

static bool kind_ok(const char *kind)
{
    return kind && (strcmp(kind, "tier") == 0 || strcmp(kind, "tenant") == 0);
}

/* Fills k for kind/name on day (NULL: only the limit key is needed); the
 * name goes in encoded (ks_store_key_part), so no name can form another
 * budget's key. Returns 0, or -1 when a key does not fit. */
static int budget_keys_init(struct budget_keys *k,
                            const struct ks_store *rs,
                            const char *day,
                            const char *kind,
                            const char *name)
{
    const char *p = ks_store_prefix(rs);
    char part[KEY_MAX];
    int n;

    if (ks_store_key_part(name, part, sizeof(part)) < 0) {
        return -1;
    }
    n = snprintf(k->l, KEY_MAX, "%slimit:%s:%s", p, kind, part);
    if (n < 0 || n >= KEY_MAX) {
        return -1;
    }
    if (!day) {
        return 0;
    }
    n = snprintf(k->h, KEY_MAX - 8, "%sbudget:%s:%s:%s", p, day, kind, part);
    if (n < 0 || n >= KEY_MAX - 8) {
        return -1;
    }
    snprintf(k->z, KEY_MAX, "%s:res", k->h);
    snprintf(k->a, KEY_MAX, "%s:amt", k->h);
    snprintf(k->sw, KEY_MAX, "%s:swept", k->h);
    return 0;
}

/* Element i of array reply r as an integer; false when it is not one. */
static bool reply_int(const redisReply *r, size_t i, int64_t *out)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_INTEGER) {
        return false;
    }
    *out = r->element[i]->integer;
    return true;
}

static void put_num(char *buf, int64_t v)
{
    snprintf(buf, NUM_LEN, "%" PRId64, v);
}

static bool amount_ok(int64_t micro)
{
    return micro >= 0 && micro < MAX_MICRO;
}

/* Maps the reply of the reserve script. */
static enum ks_err reserve_reply(const redisReply *r, const char **refused_by)
{
    int64_t ok, which;

    if (!reply_int(r, 0, &ok)) {
        ks_log_error(LOG_TAG, "reserve script: unexpected reply");
        return KS_ERR_UPSTREAM;
    }
    if (ok == 1) {
        return KS_OK;
    }
    if (!reply_int(r, 1, &which)) {
        which = 1;
    }
    if (refused_by) {
        *refused_by = which == 2 ? "tenant" : "tier";
    }
    return KS_ERR_BUDGET;
}

/* True when the arguments of ks_budget_reserve are usable: a tier, names
 * that fit res, an amount the scripts compute exactly, a positive TTL.
 * Logs why not. */
static bool reserve_args_ok(const char *tier,
                            const char *tenant,
                            int64_t cost_micro,
                            int64_t ttl_ms,
                            const struct ks_budget_reservation *res)
{
    if (!tier || !tier[0] || strlen(tier) >= sizeof(res->tier) ||
        strlen(tenant) >= sizeof(res->tenant) || !amount_ok(cost_micro) ||
        ttl_ms <= 0) {
        ks_log_error(LOG_TAG, "reserve: invalid arguments (tier '%s')",
                     tier ? tier : "");
        return false;
    }
    return true;
}

/* One reservation's keys and arguments for the reserve script: h z a sw l
 * of the tier, then of the tenant when there is one; ARGV: id, cost,
 * expiry, now, key TTL, the tier's and the tenant's config limit. */
struct reserve_cmd {
    struct budget_keys k[2];
    char cost[NUM_LEN], expiry[NUM_LEN], now[NUM_LEN], ttl[NUM_LEN];
    char limits[2][NUM_LEN];
    const char *keys[MAX_KEYS], *args[MAX_ARGS];
    int nkeys, nargs;
};

/* Sets res's day (from now_ms) and a new id, and builds c for res (whose
 * tier, tenant and amount are set). Returns 0, or -1 with a log line when
 * a key does not fit. */
static int reserve_prepare(struct ks_store *rs,
                           struct ks_budget_reservation *res,
                           int64_t tier_limit_micro,
                           int64_t tenant_limit_micro,
                           int64_t now_ms,
                           int64_t ttl_ms,
                           struct reserve_cmd *c)
{
    int nb = res->tenant[0] ? 2 : 1;

    ks_budget_day(now_ms, res->day);
    if (budget_keys_init(&c->k[0], rs, res->day, "tier", res->tier) != 0 ||
        (nb == 2 && budget_keys_init(&c->k[1], rs, res->day, "tenant",
                                     res->tenant) != 0)) {
        ks_log_error(LOG_TAG, "reserve: key too long (tier '%s')", res->tier);
        return -1;
    }
    ks_store_unique_id(res->id, sizeof(res->id));
    for (int i = 0; i < nb; i++) {
        const char *g[5] = {c->k[i].h, c->k[i].z, c->k[i].a, c->k[i].sw,
                            c->k[i].l};

        memcpy(&c->keys[5 * i], g, sizeof(g));
    }
    c->nkeys = 5 * nb;
    put_num(c->cost, res->amount_micro);
    put_num(c->expiry, now_ms + ttl_ms);
    put_num(c->now, now_ms);
    put_num(c->ttl, day_ttl_s(res->day, now_ms));
    put_num(c->limits[0], tier_limit_micro < 0 ? -1 : tier_limit_micro);
    put_num(c->limits[1], tenant_limit_micro < 0 ? -1 : tenant_limit_micro);
    c->args[0] = res->id;
    c->args[1] = c->cost;
    c->args[2] = c->expiry;
    c->args[3] = c->now;
    c->args[4] = c->ttl;
    c->args[5] = c->limits[0];
    c->args[6] = c->limits[1];
    c->nargs = 5 + nb;
    return 0;
}

enum ks_err ks_budget_reserve(struct ks_store *rs,
                              const char *tier,
                              int64_t tier_limit_micro,
                              const char *tenant,
                              int64_t tenant_limit_micro,
                              int64_t cost_micro,
                              int64_t now_ms,
                              int64_t ttl_ms,
                              struct ks_budget_reservation *res,
                              const char **refused_by)
{
    struct reserve_cmd c;
    redisReply *r = NULL;
    enum ks_err err = KS_ERR_INVALID;

    memset(res, 0, sizeof(*res));
    if (refused_by) {
        *refused_by = NULL;
    }
    tenant = tenant ? tenant : "";
    if (!reserve_args_ok(tier, tenant, cost_micro, ttl_ms, res)) {
        goto out;
    }
    ks_strlcpy(res->tier, tier, sizeof(res->tier));
    ks_strlcpy(res->tenant, tenant, sizeof(res->tenant));
    res->amount_micro = cost_micro;
    if (reserve_prepare(rs, res, tier_limit_micro, tenant_limit_micro, now_ms,
                        ttl_ms, &c) != 0) {
        goto out;
    }
    err = ks_store_script_run(rs, &script_reserve, c.nkeys, c.keys, c.nargs,
                              c.args, &r);
    if (err == KS_OK) {
        err = reserve_reply(r, refused_by);
    }
out:
    if (r) {
        freeReplyObject(r);
    }
    if (err != KS_OK) {
        memset(res, 0, sizeof(*res));
    }
    return err;
}

/* One settlement's keys and arguments, built once, for
 * ks_store_script_run or a
 * pipeline. */
struct settle_cmd {
    struct budget_keys k[2];
    char actual[NUM_LEN], ttl[NUM_LEN];
    const char *keys[MAX_KEYS], *args[3];
    int nkeys;
};

static enum ks_err settle_prepare(struct ks_store *rs,
                                  const struct ks_budget_reservation *res,
                                  int64_t actual_micro,
                                  int64_t now_ms,
                                  struct settle_cmd *c)
{
    int nb = res->tenant[0] ? 2 : 1;
    int64_t ttl_s = day_ttl_s(res->day, now_ms);

    if (!res->id[0] || !res->tier[0] || ttl_s < 0 || !amount_ok(actual_micro) ||
        budget_keys_init(&c->k[0], rs, res->day, "tier", res->tier) != 0 ||
        (nb == 2 && budget_keys_init(&c->k[1], rs, res->day, "tenant",
                                     res->tenant) != 0)) {
        ks_log_error(LOG_TAG, "settle %s: invalid reservation or cost",
                     res->id);
        return KS_ERR_INVALID;
    }
    for (int i = 0; i < nb; i++) {
        const char *g[4] = {c->k[i].h, c->k[i].z, c->k[i].a, c->k[i].sw};

        memcpy(&c->keys[4 * i], g, sizeof(g));
    }
    c->nkeys = 4 * nb;
    put_num(c->actual, actual_micro);
    put_num(c->ttl, ttl_s);
    c->args[0] = res->id;
    c->args[1] = c->actual;
    c->args[2] = c->ttl;
    if (actual_micro > res->amount_micro) {
        ks_log_warn(LOG_TAG,
                    "settle %s: actual %" PRId64 " over the reserved %" PRId64
                    " micro-dollars",
                    res->id, actual_micro, res->amount_micro);
    }
    return KS_OK;
}

enum ks_err ks_budget_settle(struct ks_store *rs,
                             const struct ks_budget_reservation *res,
                             int64_t actual_micro,
                             int64_t now_ms)
{
    struct settle_cmd c;
    redisReply *r = NULL;
    enum ks_err err = settle_prepare(rs, res, actual_micro, now_ms, &c);

    if (err != KS_OK) {
        return err;
    }
    err =
        ks_store_script_run(rs, &script_settle, c.nkeys, c.keys, 3, c.args, &r);
    if (err == KS_OK && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        ks_log_debug(LOG_TAG, "settle %s: already settled", res->id);
    }
    if (r) {
        freeReplyObject(r);
    }
    return err;
}

/* The EVALSHA argv of c into argv/lens; returns argc. */
static int settle_argv(const struct settle_cmd *c,
                       const char *sha,
                       char numkeys[NUM_LEN],
                       const char **argv,
                       size_t *lens)
{
    int argc = 0;

    snprintf(numkeys, NUM_LEN, "%d", c->nkeys);
    argv[argc++] = "EVALSHA";
    argv[argc++] = sha;
    argv[argc++] = numkeys;
    for (int i = 0; i < c->nkeys; i++) {
        argv[argc++] = c->keys[i];
    }
    for (int i = 0; i < 3; i++) {
        argv[argc++] = c->args[i];
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    return argc;
}

enum ks_err ks_budget_settle_many(struct ks_store *rs,
                                  size_t n,
                                  const struct ks_budget_reservation *res,
                                  const int64_t *actual_micro,
                                  int64_t now_ms,
                                  enum ks_err *errs)
{
    enum {
        ARGV_MAX = 3 + MAX_KEYS + 3
    };
    struct settle_cmd *c = ks_xcalloc(n ? n : 1, sizeof(*c));
    struct ks_store_cmd *cmds = ks_xcalloc(n ? n : 1, sizeof(*cmds));
    const char **argv = ks_xcalloc((n ? n : 1) * ARGV_MAX, sizeof(*argv));
    size_t *lens = ks_xcalloc((n ? n : 1) * ARGV_MAX, sizeof(*lens));
    char(*numkeys)[NUM_LEN] = ks_xcalloc(n ? n : 1, sizeof(*numkeys));
    redisReply **replies = ks_xcalloc(n ? n : 1, sizeof(*replies));
    size_t *slot = ks_xcalloc(n ? n : 1, sizeof(*slot));
    size_t m = 0;
    char sha[41];
    enum ks_err all = KS_OK;
    /* Without the SHA1 every settlement fails as a single one would. */
    enum ks_err sha_err = ks_store_script_sha(rs, &script_settle, sha);

    for (size_t i = 0; i < n; i++) {
        errs[i] =
            sha[0] ? settle_prepare(rs, &res[i], actual_micro[i], now_ms, &c[m])
                   : sha_err;
        if (errs[i] != KS_OK) {
            continue;
        }
        cmds[m].argc = settle_argv(&c[m], sha, numkeys[m], &argv[m * ARGV_MAX],
                                   &lens[m * ARGV_MAX]);
        cmds[m].argv = &argv[m * ARGV_MAX];
        cmds[m].argvlen = &lens[m * ARGV_MAX];
        slot[m++] = i;
    }
    if (ks_store_pipeline(rs, m, cmds, replies) != KS_OK) {
        for (size_t j = 0; j < m; j++) {
            errs[slot[j]] = KS_ERR_RETRY;
        }
    }
    for (size_t j = 0; j < m; j++) {
        redisReply *r = replies[j];

        if (r && r->type == REDIS_REPLY_ERROR) {
            /* NOSCRIPT (Redis restarted) or another error: this one
             * goes the single way, which loads the script again. */
            errs[slot[j]] = ks_budget_settle(rs, &res[slot[j]],
                                             actual_micro[slot[j]], now_ms);
        }
        if (r) {
            freeReplyObject(r);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (errs[i] != KS_OK) {
            all = errs[i];
        }
    }
    free(slot);
    free(replies);
    free(numkeys);
    free(lens);
    free(argv);
    free(cmds);
    free(c);
    return all;
}

/* Runs the adjust script ("add" or "reset") on kind/name of day. */
static enum ks_err budget_adjust(struct ks_store *rs,
                                 const char *op,
                                 const char *day,
                                 const char *kind,
                                 const char *name,
                                 int64_t micro)
{
    struct budget_keys k;
    char num[NUM_LEN], ttl[NUM_LEN];
    const char *keys[1] = {k.h}, *args[3] = {op, num, ttl};
    int64_t ttl_s = day ? day_ttl_s(day, ks_wall_ms()) : -1;
    redisReply *r = NULL;
    enum ks_err err;

    if (!kind_ok(kind) || !name || !name[0] || ttl_s < 0 || !amount_ok(micro) ||
        budget_keys_init(&k, rs, day, kind, name) != 0) {
        ks_log_error(LOG_TAG, "%s: invalid budget %s/%s day %s", op,
                     kind ? kind : "", name ? name : "", day ? day : "");
        return KS_ERR_INVALID;
    }
    put_num(num, micro);
    put_num(ttl, ttl_s);
    err = ks_store_script_run(rs, &script_adjust, 1, keys, 3, args, &r);
    if (r) {
        freeReplyObject(r);
    }
    return err;
}

enum ks_err ks_budget_add_spent(struct ks_store *rs,
                                const char *day,
                                const char *kind,
                                const char *name,
                                int64_t micro)
{
    return budget_adjust(rs, "add", day, kind, name, micro);
}

enum ks_err ks_budget_reset(struct ks_store *rs,
                            const char *kind,
                            const char *name,
                            const char *day)
{
    return budget_adjust(rs, "reset", day, kind, name, 0);
}

enum ks_err ks_budget_read(struct ks_store *rs,
                           const char *kind,
                           const char *name,
                           const char *day,
                           int64_t config_limit_micro,
                           int64_t now_ms,
                           struct ks_budget_state *st)
{
    struct budget_keys k;
    char limit[NUM_LEN], now[NUM_LEN], ttl[NUM_LEN];
    const char *keys[5] = {k.h, k.z, k.a, k.sw, k.l};
    const char *args[3] = {limit, now, ttl};
    int64_t ttl_s = day ? day_ttl_s(day, now_ms) : -1, v[4];
    redisReply *r = NULL;
    enum ks_err err;

    memset(st, 0, sizeof(*st));
    st->limit_micro = KS_BUDGET_NO_LIMIT;
    if (!kind_ok(kind) || !name || !name[0] || ttl_s < 0 ||
        budget_keys_init(&k, rs, day, kind, name) != 0) {
        ks_log_error(LOG_TAG, "read: invalid budget %s/%s day %s",
                     kind ? kind : "", name ? name : "", day ? day : "");
        return KS_ERR_INVALID;
    }
    put_num(limit, config_limit_micro < 0 ? -1 : config_limit_micro);
    put_num(now, now_ms);
    put_num(ttl, ttl_s);
    err = ks_store_script_run(rs, &script_read, 5, keys, 3, args, &r);
    if (err != KS_OK) {
        return err;
    }
    for (size_t i = 0; i < 4; i++) {
        if (!reply_int(r, i, &v[i])) {
            ks_log_error(LOG_TAG, "read script: unexpected reply");
            err = KS_ERR_UPSTREAM;
            goto out;
        }
    }
    st->limit_micro = v[0] < 0 ? KS_BUDGET_NO_LIMIT : v[0];
    st->limit_is_runtime = v[1] != 0;
    st->spent_micro = v[2];
    st->reserved_micro = v[3];
out:
    freeReplyObject(r);
    return err;
}

enum ks_err ks_budget_set_limit(struct ks_store *rs,
                                const char *kind,
                                const char *name,
                                int64_t micro)
{
    struct budget_keys k;
    char num[NUM_LEN];
    const char *argv[3] = {"SET", k.l, num};
    size_t lens[3];
    int argc = 3;
    redisReply *r;
    enum ks_err err = KS_OK;

    if (!kind_ok(kind) || !name || !name[0] ||
        (micro != KS_BUDGET_NO_LIMIT && !amount_ok(micro)) ||
        budget_keys_init(&k, rs, NULL, kind, name) != 0) {
        ks_log_error(LOG_TAG, "set limit: invalid budget %s/%s",
                     kind ? kind : "", name ? name : "");
        return KS_ERR_INVALID;
    }
    put_num(num, micro);
    if (micro == KS_BUDGET_NO_LIMIT) {
        argv[0] = "DEL";
        argc = 2;
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    r = ks_store_command(rs, argc, argv, lens);
    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        ks_log_error(LOG_TAG, "%s %s: %s", argv[0], k.l, r->str);
        err = KS_ERR_UPSTREAM;
    }
    freeReplyObject(r);
    return err;
}
