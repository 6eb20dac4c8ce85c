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
 * The script is run with EVALSHA (its SHA1 cached for the process after
 * SCRIPT LOAD), falling back to EVAL on NOSCRIPT, like budget.c.
 */
#include "ratelimit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "util.h"

#include "banned.h"

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

static char rate_sha[41]; /* "" until SCRIPT LOAD answered; under lock */
static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;

/* "<host>-<pid>-<random>-<counter>": unique across the fleet. */
static void member_id(char *id, size_t size)
{
    static _Atomic uint64_t counter;
    static _Atomic uint32_t salt;
    char host[64] = "host";
    uint32_t s = salt;

    if (s == 0) {
        if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
            s = (uint32_t)ks_mono_ms() ^ (uint32_t)ks_wall_ms();
        }
        s |= 1;
        salt = s;
    }
    if (gethostname(host, sizeof(host)) != 0) {
        ks_strlcpy(host, "host", sizeof(host));
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(id, size, "%.12s-%ld-%08" PRIx32 "-%" PRIx64, host, (long)getpid(),
             s, ++counter);
}

static enum ks_err load_script(struct ks_store *rs, char sha[41])
{
    const char *argv[3] = {"SCRIPT", "LOAD", rate_lua};
    size_t lens[3] = {6, 4, sizeof(rate_lua) - 1};
    redisReply *r = ks_store_command(rs, 3, argv, lens);
    enum ks_err err = KS_ERR_RETRY;

    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        pthread_mutex_lock(&rate_lock);
        memcpy(rate_sha, r->str, 40);
        rate_sha[40] = '\0';
        memcpy(sha, rate_sha, 41);
        pthread_mutex_unlock(&rate_lock);
        err = KS_OK;
    } else {
        ks_log_error(LOG_TAG, "SCRIPT LOAD: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
    }
    freeReplyObject(r);
    return err;
}

/* Runs the script with argv[3..argc) as keys and arguments. */
static redisReply *run_script(struct ks_store *rs, int argc, const char **argv)
{
    size_t lens[16];
    char sha[41];
    redisReply *r;

    pthread_mutex_lock(&rate_lock);
    memcpy(sha, rate_sha, 41);
    pthread_mutex_unlock(&rate_lock);
    if (!sha[0] && load_script(rs, sha) != KS_OK) {
        return NULL;
    }
    argv[0] = "EVALSHA";
    argv[1] = sha;
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    r = ks_store_command(rs, argc, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = rate_lua;
        lens[0] = 4;
        lens[1] = sizeof(rate_lua) - 1;
        r = ks_store_command(rs, argc, argv, lens);
    }
    return r;
}

enum ks_err ks_ratelimit_admit(struct ks_store *rs,
                               const char *tier,
                               int provider,
                               int64_t rpm,
                               int64_t tpm,
                               int64_t tokens,
                               int64_t now_ms,
                               bool *admitted,
                               int64_t *wait_ms)
{
    char z[KEY_MAX], h[KEY_MAX + 8], s[KEY_MAX + 8], id[64];
    char now[NUM_LEN], win[NUM_LEN], nrpm[NUM_LEN], ntpm[NUM_LEN],
        ntok[NUM_LEN];
    const char *argv[3 + 3 + 6];
    enum ks_err err = KS_ERR_RETRY;
    redisReply *r;
    int n;

    *admitted = false;
    *wait_ms = 0;
    if (!tier || !*tier || provider < 0 || rpm < 0 || tpm < 0 || tokens < 0 ||
        now_ms < 0) {
        return KS_ERR_INVALID;
    }
    n = snprintf(z, sizeof(z), "%srate:%s:%d", ks_store_prefix(rs), tier,
                 provider);
    if (n < 0 || n >= (int)sizeof(z)) {
        return KS_ERR_INVALID;
    }
    snprintf(h, sizeof(h), "%s:tok", z);
    snprintf(s, sizeof(s), "%s:sum", z);
    member_id(id, sizeof(id));
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(win, sizeof(win), "%d", KS_RATELIMIT_WINDOW_MS);
    snprintf(nrpm, sizeof(nrpm), "%" PRId64, rpm);
    snprintf(ntpm, sizeof(ntpm), "%" PRId64, tpm);
    snprintf(ntok, sizeof(ntok), "%" PRId64, tokens);
    argv[2] = "3";
    argv[3] = z;
    argv[4] = h;
    argv[5] = s;
    argv[6] = now;
    argv[7] = win;
    argv[8] = nrpm;
    argv[9] = ntpm;
    argv[10] = ntok;
    argv[11] = id;
    r = run_script(rs, 12, argv);
    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        *admitted = r->element[0]->integer == 1;
        *wait_ms = *admitted ? 0 : r->element[1]->integer;
        if (!*admitted && *wait_ms < 1) {
            *wait_ms = 1;
        }
        err = KS_OK;
    } else {
        ks_log_error(LOG_TAG, "rate script failed: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
    }
    freeReplyObject(r);
    return err;
}
