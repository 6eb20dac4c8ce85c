/*
 * ratelimit.c - fleet-wide request and token rate limits per provider, as
 * one Lua script over a sliding one-minute log (see ratelimit.h for the
 * keys and the guarantee).
 *
 * Invariants of the script:
 * - a member is in the sorted set and in the tokens hash together or in
 *   neither, and `sum` is the total of the hash's values;
 * - a refused call changes nothing but the sweep of calls that already
 *   left the window (at most 1000 per run, so a long pause cannot make one
 *   run long; the rest go on the next runs, and until then they still
 *   count: the error is on the safe side);
 * - the wait of a refusal is exact: the time until enough of the oldest
 *   calls leave the window for this one to fit.
 * The script is run by ks_store_script_run (store.h): EVALSHA with its
 * SHA1 cached for the process, falling back to EVAL on NOSCRIPT.
 */
#include "redis/ratelimit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define KEY_MAX            512
#define STR_(x)            #x
#define STR(x)             STR_(x)
#define RATE_CALLS_MAX_STR STR(KS_RATELIMIT_CALLS_MAX)
#define NUM_LEN            24
#define LOG_TAG            "ratelimit"

/* KEYS: the set, the tokens hash, the sum. ARGV: now ms (0: the server's
 * clock), window ms, rpm, tpm (0: off), tokens, member id, requests (the
 * calls admitted together: agreement's k calls in flight). Each request is
 * one member (id, then id#2 .. id#k with 0 tokens: the tokens are the
 * first's), so rpm counts every call. More requests than rpm are admitted
 * only into an empty window, as more tokens than tpm are. Returns {1, 0}
 * when admitted, {0, wait ms} when refused. */
static const char rate_lua[] =
    "local z, h, s = KEYS[1], KEYS[2], KEYS[3]\n"
    "local now = tonumber(ARGV[1])\n"
    "if now <= 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local win, rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3]), "
    "tonumber(ARGV[4])\n"
    "local tok, id = tonumber(ARGV[5]), ARGV[6]\n"
    "local k = tonumber(ARGV[7] or '1')\n"
    "local function fmt(n) return string.format('%d', n) end\n"
    "local old = redis.call('ZRANGEBYSCORE', z, '-inf', now - win,\n"
    "                       'LIMIT', 0, 1000)\n"
    "local sum = tonumber(redis.call('GET', s) or '0')\n"
    "for _, m in ipairs(old) do\n"
    "  sum = sum - (tonumber(redis.call('HGET', h, m)) or 0)\n"
    "  redis.call('HDEL', h, m)\n"
    "  redis.call('ZREM', z, m)\n"
    "end\n"
    "if sum < 0 then sum = 0 end\n"
    "if #old > 0 then redis.call('SET', s, fmt(sum), 'PX', 2 * win) end\n"
    "local n = redis.call('ZCARD', z)\n"
    "local wait = 0\n"
    "if rpm > 0 and n > 0 and n + k > rpm then\n"
    "  local i = math.min(n + k - rpm, n) - 1\n"
    "  local e = redis.call('ZRANGE', z, i, i, 'WITHSCORES')\n"
    "  wait = tonumber(e[2]) + win - now\n"
    "end\n"
    "if tpm > 0 and n > 0 and sum + tok > tpm then\n"
    "  local need, freed, at = sum + tok - tpm, 0, now - win\n"
    "  local e = redis.call('ZRANGE', z, 0, 999, 'WITHSCORES')\n"
    "  for i = 1, #e, 2 do\n"
    "    freed = freed + (tonumber(redis.call('HGET', h, e[i])) or 0)\n"
    "    at = tonumber(e[i + 1])\n"
    "    if freed >= need then break end\n"
    "  end\n"
    "  if at + win - now > wait then wait = at + win - now end\n"
    "end\n"
    "if wait > 0 then return {0, wait} end\n"
    "redis.call('ZADD', z, now, id)\n"
    "redis.call('HSET', h, id, fmt(tok))\n"
    "for j = 2, k do\n"
    "  redis.call('ZADD', z, now, id .. '#' .. j)\n"
    "  redis.call('HSET', h, id .. '#' .. j, '0')\n"
    "end\n"
    "redis.call('SET', s, fmt(sum + tok), 'PX', 2 * win)\n"
    "redis.call('PEXPIRE', z, 2 * win)\n"
    "redis.call('PEXPIRE', h, 2 * win)\n"
    "return {1, 0}\n";

static struct ks_store_script rate_script =
    KS_STORE_SCRIPT_INIT("rate", rate_lua);

/* KEYS: as rate_lua. ARGV: member id. Takes an admitted call (and the
 * requests admitted with it, id#2 ..) that never started out of the
 * window: its requests and tokens no longer count. Returns 1, or 0 when
 * the member was not there (released already, or out of the window). */
static const char release_lua[] =
    "local z, h, s, id = KEYS[1], KEYS[2], KEYS[3], ARGV[1]\n"
    "if redis.call('ZREM', z, id) == 0 then return 0 end\n"
    "local tok = tonumber(redis.call('HGET', h, id)) or 0\n"
    "redis.call('HDEL', h, id)\n"
    "for j = 2, " RATE_CALLS_MAX_STR " do\n"
    "  if redis.call('ZREM', z, id .. '#' .. j) == 0 then break end\n"
    "  redis.call('HDEL', h, id .. '#' .. j)\n"
    "end\n"
    "local sum = (tonumber(redis.call('GET', s) or '0')) - tok\n"
    "if sum < 0 then sum = 0 end\n"
    "local ttl = redis.call('PTTL', s)\n"
    "if ttl > 0 then\n"
    "  redis.call('SET', s, string.format('%d', sum), 'PX', ttl)\n"
    "end\n"
    "return 1\n";

static struct ks_store_script release_script =
    KS_STORE_SCRIPT_INIT("rate_release", release_lua);

/* The three keys of tier's provider: <p>rate:{<tier>:<provider>}, :tok and
 * :sum; the hash tag puts them in one Redis Cluster slot. Returns 0, or -1
 * when the tier cannot name a key. */
static int rate_keys(struct ks_store *rs,
                     const char *tier,
                     int provider,
                     char z[KEY_MAX],
                     char h[KEY_MAX + 8],
                     char s[KEY_MAX + 8])
{
    char part[KEY_MAX];
    int n;

    /* The tier encoded (store.h), so no tier name forms another's key;
     * '{' and '}' are encoded too, so the tag is always ours. */
    if (ks_store_key_part(tier, part, sizeof(part)) < 0) {
        return -1;
    }
    n = snprintf(z, KEY_MAX, "%srate:{%s:%d}", ks_store_prefix(rs), part,
                 provider);
    if (n < 0 || n >= KEY_MAX) {
        return -1;
    }
    snprintf(h, KEY_MAX + 8, "%s:tok", z);
    snprintf(s, KEY_MAX + 8, "%s:sum", z);
    return 0;
}

/* One admission's keys and arguments, for a single call or a pipeline. */
struct rate_cmd {
    char z[KEY_MAX], h[KEY_MAX + 8], s[KEY_MAX + 8], id[64];
    char now[NUM_LEN], win[NUM_LEN], rpm[NUM_LEN], tpm[NUM_LEN], tok[NUM_LEN];
    char calls[NUM_LEN];
    const char *keys[3], *args[7];
};

static enum ks_err rate_prepare(struct ks_store *rs,
                                const struct ks_ratelimit_request *q,
                                int64_t now_ms,
                                struct rate_cmd *c)
{
    if (!q->tier || !*q->tier || q->provider < 0 || q->rpm < 0 || q->tpm < 0 ||
        q->tokens < 0 || now_ms < 0 || q->calls < 0 ||
        q->calls > KS_RATELIMIT_CALLS_MAX ||
        rate_keys(rs, q->tier, q->provider, c->z, c->h, c->s) != 0) {
        return KS_ERR_INVALID;
    }
    ks_store_unique_id(c->id, sizeof(c->id));
    snprintf(c->now, NUM_LEN, "%" PRId64, now_ms);
    snprintf(c->win, NUM_LEN, "%d", KS_RATELIMIT_WINDOW_MS);
    snprintf(c->rpm, NUM_LEN, "%" PRId64, q->rpm);
    snprintf(c->tpm, NUM_LEN, "%" PRId64, q->tpm);
    snprintf(c->tok, NUM_LEN, "%" PRId64, q->tokens);
    snprintf(c->calls, NUM_LEN, "%d", q->calls > 0 ? q->calls : 1);
    c->keys[0] = c->z;
    c->keys[1] = c->h;
    c->keys[2] = c->s;
    c->args[0] = c->now;
    c->args[1] = c->win;
    c->args[2] = c->rpm;
    c->args[3] = c->tpm;
    c->args[4] = c->tok;
    c->args[5] = c->id;
    c->args[6] = c->calls;
    return KS_OK;
}

/* The script's reply r into a (member from c). */
static enum ks_err rate_reply(const redisReply *r,
                              const struct rate_cmd *c,
                              struct ks_ratelimit_answer *a)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER) {
        ks_log_error(LOG_TAG, "rate script: unexpected reply");
        return KS_ERR_UPSTREAM;
    }
    a->admitted = r->element[0]->integer == 1;
    a->wait_ms = a->admitted ? 0 : r->element[1]->integer;
    if (a->admitted) {
        ks_strlcpy(a->member, c->id, sizeof(a->member));
    }
    if (!a->admitted && a->wait_ms < 1) {
        a->wait_ms = 1;
    }
    return KS_OK;
}

static enum ks_err admit_one(struct ks_store *rs,
                             const struct ks_ratelimit_request *q,
                             int64_t now_ms,
                             struct ks_ratelimit_answer *a)
{
    struct rate_cmd c;
    redisReply *r = NULL;
    enum ks_err err;

    memset(a, 0, sizeof(*a));
    err = rate_prepare(rs, q, now_ms, &c);
    if (err == KS_OK) {
        err = ks_store_script_run(rs, &rate_script, 3, c.keys, 7, c.args, &r);
    }
    if (err == KS_OK) {
        err = rate_reply(r, &c, a);
    }
    if (r) {
        freeReplyObject(r);
    }
    a->err = err;
    return err;
}

enum ks_err ks_ratelimit_admit(struct ks_store *rs,
                               const char *tier,
                               int provider,
                               int64_t rpm,
                               int64_t tpm,
                               int64_t tokens,
                               int64_t now_ms,
                               bool *admitted,
                               int64_t *wait_ms,
                               char member[KS_RATELIMIT_MEMBER_MAX])
{
    struct ks_ratelimit_request q = {tier, provider, rpm, tpm, tokens};
    struct ks_ratelimit_answer a;
    enum ks_err err = admit_one(rs, &q, now_ms, &a);

    *admitted = err == KS_OK && a.admitted;
    *wait_ms = err == KS_OK ? a.wait_ms : 0;
    if (member) {
        ks_strlcpy(member, a.member, KS_RATELIMIT_MEMBER_MAX);
    }
    return err;
}

/* The EVALSHA argv of c into argv and lens; returns argc (13). */
static int rate_argv(const struct rate_cmd *c,
                     const char *sha,
                     const char **argv,
                     size_t *lens)
{
    int k = 0;

    argv[k++] = "EVALSHA";
    argv[k++] = sha;
    argv[k++] = "3";
    for (int i = 0; i < 3; i++) {
        argv[k++] = c->keys[i];
    }
    for (int i = 0; i < 7; i++) {
        argv[k++] = c->args[i];
    }
    for (int i = 0; i < k; i++) {
        lens[i] = strlen(argv[i]);
    }
    return k;
}

enum ks_err ks_ratelimit_admit_many(struct ks_store *rs,
                                    size_t n,
                                    const struct ks_ratelimit_request *req,
                                    struct ks_ratelimit_answer *ans)
{
    enum {
        ARGC = 13
    };
    size_t m = 0, *slot = ks_xcalloc(n ? n : 1, sizeof(*slot));
    struct rate_cmd *c = ks_xcalloc(n ? n : 1, sizeof(*c));
    struct ks_store_cmd *cmds = ks_xcalloc(n ? n : 1, sizeof(*cmds));
    const char **argv = ks_xcalloc((n ? n : 1) * ARGC, sizeof(*argv));
    size_t *lens = ks_xcalloc((n ? n : 1) * ARGC, sizeof(*lens));
    redisReply **replies = ks_xcalloc(n ? n : 1, sizeof(*replies));
    enum ks_err sha_err, all = KS_OK;
    char sha[41];

    sha_err = ks_store_script_sha(rs, &rate_script, sha);
    for (size_t i = 0; i < n; i++) {
        memset(&ans[i], 0, sizeof(ans[i]));
        ans[i].err = sha[0] ? rate_prepare(rs, &req[i], 0, &c[m]) : sha_err;
        if (ans[i].err != KS_OK) {
            continue;
        }
        cmds[m].argc = rate_argv(&c[m], sha, &argv[m * ARGC], &lens[m * ARGC]);
        cmds[m].argv = &argv[m * ARGC];
        cmds[m].argvlen = &lens[m * ARGC];
        slot[m++] = i;
    }
    if (m > 0 && ks_store_pipeline(rs, m, cmds, replies) != KS_OK) {
        for (size_t j = 0; j < m; j++) {
            ans[slot[j]].err = KS_ERR_RETRY;
        }
    }
    for (size_t j = 0; j < m; j++) {
        size_t i = slot[j];

        if (!replies[j]) {
            continue;
        }
        if (replies[j]->type == REDIS_REPLY_ERROR) {
            admit_one(rs, &req[i], 0, &ans[i]); /* NOSCRIPT, or the error */
        } else {
            ans[i].err = rate_reply(replies[j], &c[j], &ans[i]);
        }
        freeReplyObject(replies[j]);
    }
    for (size_t i = 0; i < n; i++) {
        all = ans[i].err != KS_OK ? ans[i].err : all;
    }
    free(replies);
    free(lens);
    free(argv);
    free(cmds);
    free(c);
    free(slot);
    return all;
}

enum ks_err ks_ratelimit_release(struct ks_store *rs,
                                 const char *tier,
                                 int provider,
                                 const char *member)
{
    char z[KEY_MAX], h[KEY_MAX + 8], s[KEY_MAX + 8];
    const char *keys[3] = {z, h, s};
    const char *args[1] = {member};
    redisReply *r = NULL;
    enum ks_err err;

    if (!tier || !*tier || provider < 0 || !member || !member[0] ||
        rate_keys(rs, tier, provider, z, h, s) != 0) {
        return KS_ERR_INVALID;
    }
    err = ks_store_script_run(rs, &release_script, 3, keys, 1, args, &r);
    if (r) {
        freeReplyObject(r);
    }
    return err;
}
