/*
 * budget.c - daily cost budgets in Redis: reserve before a call, settle
 * after it (docs/design.md section 7). The logic lives in the Lua scripts of
 * budget_lua.h so that each step is atomic across the tier's and the
 * tenant's budget; this file builds keys and arguments and maps replies.
 *
 * Invariants:
 * - all amounts are integer micro-dollars; a refused reservation changes
 *   no counter of either budget (only the sweeps run);
 * - spent only grows by settle, the sweeps' worst-case charges and
 *   add_spent, and moves to reset_micro on reset; counters are never
 *   deleted, only expired with their day (two days after its end:
 *   relative TTLs from the caller's now, so a skewed Redis clock cannot
 *   expire them early);
 * - reservations expire by Redis TIME (one clock for the fleet) and name
 *   their owner, whose liveness entry the worker renews each second; an
 *   expired reservation or one of a lapsed owner is charged at its worst
 *   case, never dropped: the call may have reached the provider;
 * - settle is idempotent per reservation id: an open reservation is
 *   released and counted; one a sweep charged is remembered in a
 *   per-budget "swept" hash until settled, so a late settle replaces the
 *   worst-case charge with its actual cost, once; an id found in neither place
 *   was settled already. Only swept ids are kept (not every settled id),
 *   so the extra memory is proportional to crashed calls, not to traffic.
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
#include "redis/budget_cmd.h"
#include "redis/budget_lua.h"

#include "base/banned.h"

#define DAY_MS    (86400 * (int64_t)1000)
#define KEEP_DAYS 2 /* day keys live this long after their day ends */
#define MAX_MICRO ((int64_t)1 << 53) /* exact in a Lua double */
#define LOG_TAG   "budget"

struct ks_store_script budget_script_reserve =
    KS_STORE_SCRIPT_INIT("reserve", budget_lua_reserve);
struct ks_store_script budget_script_settle =
    KS_STORE_SCRIPT_INIT("settle", budget_lua_settle);
struct ks_store_script budget_script_reserve_many =
    KS_STORE_SCRIPT_INIT("reserve_many", budget_lua_reserve_many);
struct ks_store_script budget_script_settle_many =
    KS_STORE_SCRIPT_INIT("settle_many", budget_lua_settle_many);
static struct ks_store_script script_read =
    KS_STORE_SCRIPT_INIT("read", budget_lua_read);
static struct ks_store_script script_adjust =
    KS_STORE_SCRIPT_INIT("adjust", budget_lua_adjust);

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

void ks_budget_owner_init(struct ks_budget_owner *o, int64_t live_ms)
{
    char raw[64];

    ks_store_unique_id(raw, sizeof(raw));
    if (ks_store_key_part(raw, o->id, sizeof(o->id)) < 0) {
        snprintf(o->id, sizeof(o->id), "w%" PRIx64, (uint64_t)ks_wall_ms());
    }
    o->live_ms = live_ms > 0 ? live_ms : KS_BUDGET_LIVE_MS;
}

int64_t budget_day_ttl_s(const char *day, int64_t now_ms)
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

int budget_fleet_keys(const struct ks_store *rs,
                      const char *owner,
                      char live[BUDGET_KEY_MAX],
                      char owned[BUDGET_KEY_MAX])
{
    const char *p = ks_store_prefix(rs);
    int n = snprintf(live, BUDGET_KEY_MAX, "%s" BUDGET_TAG ":live", p);
    int m = snprintf(owned, BUDGET_KEY_MAX, "%s" BUDGET_TAG ":w:%s", p,
                     owner ? owner : "");

    return n < 0 || n >= BUDGET_KEY_MAX || m < 0 || m >= BUDGET_KEY_MAX ? -1
                                                                        : 0;
}

int budget_keys_init(struct budget_keys *k,
                     const struct ks_store *rs,
                     const char *day,
                     const char *kind,
                     const char *name)
{
    const char *p = ks_store_prefix(rs);
    char part[BUDGET_KEY_MAX];
    int n;

    if (ks_store_key_part(name, part, sizeof(part)) < 0) {
        return -1;
    }
    n = snprintf(k->l, BUDGET_KEY_MAX, "%s" BUDGET_TAG ":limit:%s:%s", p, kind,
                 part);
    if (n < 0 || n >= BUDGET_KEY_MAX) {
        return -1;
    }
    if (!day) {
        return 0;
    }
    n = snprintf(k->h, BUDGET_KEY_MAX - 8, "%s" BUDGET_TAG ":%s:%s:%s", p, day,
                 kind, part);
    if (n < 0 || n >= BUDGET_KEY_MAX - 8) {
        return -1;
    }
    snprintf(k->z, BUDGET_KEY_MAX, "%s:res", k->h);
    snprintf(k->a, BUDGET_KEY_MAX, "%s:amt", k->h);
    snprintf(k->sw, BUDGET_KEY_MAX, "%s:swept", k->h);
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

void budget_put_num(char *buf, int64_t v)
{
    snprintf(buf, BUDGET_NUM_LEN, "%" PRId64, v);
}

bool budget_amount_ok(int64_t micro)
{
    return micro >= 0 && micro < MAX_MICRO;
}

enum ks_err budget_reserve_reply(const redisReply *r, const char **refused_by)
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

/* True when the request is usable: a tier, names that fit res, an amount
 * the scripts compute exactly, a positive TTL. Logs why not. */
static bool reserve_args_ok(const struct ks_budget_request *q,
                            const struct ks_budget_reservation *res)
{
    const char *tenant = q->tenant ? q->tenant : "";

    if (!q->tier || !q->tier[0] || strlen(q->tier) >= sizeof(res->tier) ||
        strlen(tenant) >= sizeof(res->tenant) ||
        !budget_amount_ok(q->cost_micro) || q->ttl_ms <= 0) {
        ks_log_error(LOG_TAG, "reserve: invalid arguments (tier '%s')",
                     q->tier ? q->tier : "");
        return false;
    }
    return true;
}

enum ks_err budget_reserve_prepare(struct ks_store *rs,
                                   const struct ks_budget_owner *owner,
                                   const struct ks_budget_request *q,
                                   int64_t now_ms,
                                   struct ks_budget_reservation *res,
                                   struct budget_reserve_cmd *c)
{
    int nb;

    memset(res, 0, sizeof(*res));
    if (!reserve_args_ok(q, res)) {
        return KS_ERR_INVALID;
    }
    ks_strlcpy(res->tier, q->tier, sizeof(res->tier));
    ks_strlcpy(res->tenant, q->tenant ? q->tenant : "", sizeof(res->tenant));
    ks_strlcpy(res->owner, owner ? owner->id : "", sizeof(res->owner));
    res->amount_micro = q->cost_micro;
    ks_budget_day(now_ms, res->day);
    nb = res->tenant[0] ? 2 : 1;
    if (budget_fleet_keys(rs, res->owner, c->live, c->owned) != 0 ||
        budget_keys_init(&c->k[0], rs, res->day, "tier", res->tier) != 0 ||
        (nb == 2 && budget_keys_init(&c->k[1], rs, res->day, "tenant",
                                     res->tenant) != 0)) {
        ks_log_error(LOG_TAG, "reserve: key too long (tier '%s')", res->tier);
        memset(res, 0, sizeof(*res));
        return KS_ERR_INVALID;
    }
    ks_store_unique_id(res->id, sizeof(res->id));
    c->keys[0] = c->live;
    c->keys[1] = c->owned;
    for (int i = 0; i < nb; i++) {
        const char *g[5] = {c->k[i].h, c->k[i].z, c->k[i].a, c->k[i].sw,
                            c->k[i].l};

        memcpy(&c->keys[2 + 5 * i], g, sizeof(g));
    }
    c->nkeys = 2 + 5 * nb;
    budget_put_num(c->cost, res->amount_micro);
    budget_put_num(c->ttl_ms, q->ttl_ms);
    budget_put_num(c->live_ms, owner ? owner->live_ms : 0);
    budget_put_num(c->ttl, budget_day_ttl_s(res->day, now_ms));
    budget_put_num(c->limits[0],
                   q->tier_limit_micro < 0 ? -1 : q->tier_limit_micro);
    budget_put_num(c->limits[1],
                   q->tenant_limit_micro < 0 ? -1 : q->tenant_limit_micro);
    c->args[0] = res->id;
    c->args[1] = c->cost;
    c->args[2] = c->ttl_ms;
    c->args[3] = res->owner;
    c->args[4] = c->live_ms;
    c->args[5] = c->ttl;
    c->args[6] = c->limits[0];
    c->args[7] = c->limits[1];
    c->nargs = 6 + nb;
    return KS_OK;
}

enum ks_err ks_budget_reserve(struct ks_store *rs,
                              const struct ks_budget_owner *owner,
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
    struct ks_budget_request q = {
        tier, tier_limit_micro, tenant, tenant_limit_micro, cost_micro, ttl_ms};
    struct budget_reserve_cmd c;
    redisReply *r = NULL;
    enum ks_err err;

    if (refused_by) {
        *refused_by = NULL;
    }
    err = budget_reserve_prepare(rs, owner, &q, now_ms, res, &c);
    if (err == KS_OK) {
        err = ks_store_script_run(rs, &budget_script_reserve, c.nkeys, c.keys,
                                  c.nargs, c.args, &r);
    }
    if (err == KS_OK) {
        err = budget_reserve_reply(r, refused_by);
    }
    if (r) {
        freeReplyObject(r);
    }
    if (err != KS_OK && (err != KS_ERR_RETRY || !ks_store_sent(rs))) {
        memset(res, 0, sizeof(*res)); /* else it may exist (budget.h) */
    }
    return err;
}

enum ks_err budget_settle_prepare(struct ks_store *rs,
                                  const struct ks_budget_reservation *res,
                                  int64_t actual_micro,
                                  int64_t now_ms,
                                  struct budget_settle_cmd *c)
{
    int nb = res->tenant[0] ? 2 : 1;
    int64_t ttl_s = budget_day_ttl_s(res->day, now_ms);

    if (!res->id[0] || !res->tier[0] || ttl_s < 0 ||
        !budget_amount_ok(actual_micro) ||
        budget_fleet_keys(rs, res->owner, c->live, c->owned) != 0 ||
        budget_keys_init(&c->k[0], rs, res->day, "tier", res->tier) != 0 ||
        (nb == 2 && budget_keys_init(&c->k[1], rs, res->day, "tenant",
                                     res->tenant) != 0)) {
        ks_log_error(LOG_TAG, "settle %s: invalid reservation or cost",
                     res->id);
        return KS_ERR_INVALID;
    }
    c->keys[0] = c->live;
    c->keys[1] = c->owned;
    for (int i = 0; i < nb; i++) {
        const char *g[4] = {c->k[i].h, c->k[i].z, c->k[i].a, c->k[i].sw};

        memcpy(&c->keys[2 + 4 * i], g, sizeof(g));
    }
    c->nkeys = 2 + 4 * nb;
    budget_put_num(c->actual, actual_micro);
    budget_put_num(c->ttl, ttl_s);
    c->args[0] = res->id;
    c->args[1] = c->actual;
    c->args[2] = c->ttl;
    c->nargs = 3;
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
    struct budget_settle_cmd c;
    redisReply *r = NULL;
    enum ks_err err = budget_settle_prepare(rs, res, actual_micro, now_ms, &c);

    if (err != KS_OK) {
        return err;
    }
    err = ks_store_script_run(rs, &budget_script_settle, c.nkeys, c.keys,
                              c.nargs, c.args, &r);
    if (err == KS_OK && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        ks_log_debug(LOG_TAG, "settle %s: already settled", res->id);
    }
    if (r) {
        freeReplyObject(r);
    }
    return err;
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
    char num[BUDGET_NUM_LEN], ttl[BUDGET_NUM_LEN];
    const char *keys[1] = {k.h}, *args[3] = {op, num, ttl};
    int64_t ttl_s = day ? budget_day_ttl_s(day, ks_wall_ms()) : -1;
    redisReply *r = NULL;
    enum ks_err err;

    if (!kind_ok(kind) || !name || !name[0] || ttl_s < 0 ||
        !budget_amount_ok(micro) ||
        budget_keys_init(&k, rs, day, kind, name) != 0) {
        ks_log_error(LOG_TAG, "%s: invalid budget %s/%s day %s", op,
                     kind ? kind : "", name ? name : "", day ? day : "");
        return KS_ERR_INVALID;
    }
    budget_put_num(num, micro);
    budget_put_num(ttl, ttl_s);
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

/* The read script's reply into st. */
static enum ks_err read_reply(const redisReply *r, struct ks_budget_state *st)
{
    int64_t v[5];

    for (size_t i = 0; i < 5; i++) {
        if (!reply_int(r, i, &v[i])) {
            ks_log_error(LOG_TAG, "read script: unexpected reply");
            return KS_ERR_UPSTREAM;
        }
    }
    st->limit_micro = v[0] < 0 ? KS_BUDGET_NO_LIMIT : v[0];
    st->limit_is_runtime = v[1] != 0;
    st->spent_micro = v[2];
    st->reserved_micro = v[3];
    st->expired_micro = v[4];
    return KS_OK;
}

/* ks_budget_read, renewing owner's liveness when owner is not NULL. */
static enum ks_err budget_read(struct ks_store *rs,
                               const struct ks_budget_owner *owner,
                               const char *kind,
                               const char *name,
                               const char *day,
                               int64_t config_limit_micro,
                               int64_t now_ms,
                               struct ks_budget_state *st)
{
    struct budget_keys k;
    char live[BUDGET_KEY_MAX], owned[BUDGET_KEY_MAX];
    char limit[BUDGET_NUM_LEN], ttl[BUDGET_NUM_LEN], live_ms[BUDGET_NUM_LEN];
    const char *keys[6] = {live, k.h, k.z, k.a, k.sw, k.l};
    const char *args[4] = {limit, ttl, owner ? owner->id : "", live_ms};
    int64_t ttl_s = day ? budget_day_ttl_s(day, now_ms) : -1;
    redisReply *r = NULL;
    enum ks_err err;

    memset(st, 0, sizeof(*st));
    st->limit_micro = KS_BUDGET_NO_LIMIT;
    if (!kind_ok(kind) || !name || !name[0] || ttl_s < 0 ||
        budget_fleet_keys(rs, NULL, live, owned) != 0 ||
        budget_keys_init(&k, rs, day, kind, name) != 0) {
        ks_log_error(LOG_TAG, "read: invalid budget %s/%s day %s",
                     kind ? kind : "", name ? name : "", day ? day : "");
        return KS_ERR_INVALID;
    }
    budget_put_num(limit, config_limit_micro < 0 ? -1 : config_limit_micro);
    budget_put_num(ttl, ttl_s);
    budget_put_num(live_ms, owner ? owner->live_ms : 0);
    err = ks_store_script_run(rs, &script_read, 6, keys, 4, args, &r);
    if (err != KS_OK) {
        return err;
    }
    err = read_reply(r, st);
    freeReplyObject(r);
    return err;
}

enum ks_err ks_budget_read(struct ks_store *rs,
                           const char *kind,
                           const char *name,
                           const char *day,
                           int64_t config_limit_micro,
                           int64_t now_ms,
                           struct ks_budget_state *st)
{
    return budget_read(rs, NULL, kind, name, day, config_limit_micro, now_ms,
                       st);
}

enum ks_err ks_budget_live_read(struct ks_store *rs,
                                const struct ks_budget_owner *owner,
                                const char *kind,
                                const char *name,
                                const char *day,
                                int64_t config_limit_micro,
                                struct ks_budget_state *st)
{
    return budget_read(rs, owner, kind, name, day, config_limit_micro,
                       ks_wall_ms(), st);
}

enum ks_err ks_budget_set_limit(struct ks_store *rs,
                                const char *kind,
                                const char *name,
                                int64_t micro)
{
    struct budget_keys k;
    char num[BUDGET_NUM_LEN];
    const char *argv[3] = {"SET", k.l, num};
    size_t lens[3];
    int argc = 3;
    redisReply *r;
    enum ks_err err = KS_OK;

    if (!kind_ok(kind) || !name || !name[0] ||
        (micro != KS_BUDGET_NO_LIMIT && !budget_amount_ok(micro)) ||
        budget_keys_init(&k, rs, NULL, kind, name) != 0) {
        ks_log_error(LOG_TAG, "set limit: invalid budget %s/%s",
                     kind ? kind : "", name ? name : "");
        return KS_ERR_INVALID;
    }
    budget_put_num(num, micro);
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
