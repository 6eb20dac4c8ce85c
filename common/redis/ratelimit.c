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
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define KEY_MAX 512
#define NUM_LEN 24
#define LOG_TAG "ratelimit"

/* KEYS: the set, the tokens hash, the sum. ARGV: now ms (0: the server's
 * clock), window ms, rpm, tpm (0: off), tokens, member id. Returns {1, 0}
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
    "if rpm > 0 and n >= rpm then\n"
    "  local e = redis.call('ZRANGE', z, n - rpm, n - rpm, 'WITHSCORES')\n"
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
    "redis.call('SET', s, fmt(sum + tok), 'PX', 2 * win)\n"
    "redis.call('PEXPIRE', z, 2 * win)\n"
    "redis.call('PEXPIRE', h, 2 * win)\n"
    "return {1, 0}\n";

static struct ks_store_script rate_script =
    KS_STORE_SCRIPT_INIT("rate", rate_lua);

/* KEYS: as rate_lua. ARGV: member id. Takes an admitted call that never
 * started out of the window: its request and tokens no longer count.
 * Returns 1, or 0 when the member was not there (released already, or
 * out of the window). */
static const char release_lua[] =
    "local z, h, s, id = KEYS[1], KEYS[2], KEYS[3], ARGV[1]\n"
    "if redis.call('ZREM', z, id) == 0 then return 0 end\n"
    "local tok = tonumber(redis.call('HGET', h, id)) or 0\n"
    "redis.call('HDEL', h, id)\n"
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
    char z[KEY_MAX], h[KEY_MAX + 8], s[KEY_MAX + 8], id[64];
    char now[NUM_LEN], win[NUM_LEN], nrpm[NUM_LEN], ntpm[NUM_LEN],
        ntok[NUM_LEN];
    const char *keys[3] = {z, h, s};
    const char *args[6] = {now, win, nrpm, ntpm, ntok, id};
    enum ks_err err = KS_ERR_RETRY;
    redisReply *r = NULL;

    *admitted = false;
    *wait_ms = 0;
    if (member) {
        member[0] = '\0';
    }
    if (!tier || !*tier || provider < 0 || rpm < 0 || tpm < 0 || tokens < 0 ||
        now_ms < 0 || rate_keys(rs, tier, provider, z, h, s) != 0) {
        return KS_ERR_INVALID;
    }
    ks_store_unique_id(id, sizeof(id));
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(win, sizeof(win), "%d", KS_RATELIMIT_WINDOW_MS);
    snprintf(nrpm, sizeof(nrpm), "%" PRId64, rpm);
    snprintf(ntpm, sizeof(ntpm), "%" PRId64, tpm);
    snprintf(ntok, sizeof(ntok), "%" PRId64, tokens);
    err = ks_store_script_run(rs, &rate_script, 3, keys, 6, args, &r);
    if (err != KS_OK) {
        return err;
    }
    err = KS_ERR_UPSTREAM;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        *admitted = r->element[0]->integer == 1;
        *wait_ms = *admitted ? 0 : r->element[1]->integer;
        if (*admitted && member) {
            ks_strlcpy(member, id, KS_RATELIMIT_MEMBER_MAX);
        }
        if (!*admitted && *wait_ms < 1) {
            *wait_ms = 1;
        }
        err = KS_OK;
    } else {
        ks_log_error(LOG_TAG, "rate script: unexpected reply");
    }
    freeReplyObject(r);
    return err;
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
