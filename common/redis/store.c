/*
 * store.c - hiredis connection management, GET/SET of size-capped values,
 * pipelines and the Lua script runner; done.c builds the done records on it.
 *
 * Invariant: rs->c is either NULL or a connection with no error; any reply
 * error of the connection kind frees it.
 *
 * Errors are classified once, here: no reply (unreachable, timeout, broken
 * connection) is KS_ERR_RETRY, the policy of redis down (wait, or
 * budget.fail_open); an error reply (WRONGTYPE, a script's error(), OOM
 * command not allowed) is KS_ERR_UPSTREAM, permanent for the one call,
 * and never a reason to fail open. An error reply by which Redis says it
 * cannot serve anything right now (LOADING after a restart, BUSY behind a
 * slow script, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, READONLY after a
 * failover) is the same as no reply: KS_ERR_RETRY, never a task's
 * permanent error (a restart used to send tasks to the DLQ with code
 * `redis` and drop settles). Reconnects are spaced by a
 * backoff (doubling to 2 s) so a down Redis costs one failed connect per
 * backoff, not one per task.
 *
 * Scripts: store_script.c.
 */
#include "redis/store.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/store_reply.h"

#include "base/banned.h"

#define LOG_TAG "store"
#define NUM_LEN 24

struct ks_store {
    char host[256];
    int port;
    int db;
    char *username; /* ACL user; NULL: AUTH with the password alone */
    char *password;
    char *prefix;
    int64_t timeout_ms;
    int64_t done_ttl_s;
    size_t max_value;
    redisContext *c;
    int64_t next_attempt_ms;
    int64_t backoff_ms;
    char last_error[256]; /* the last error reply, for DLQ details */
    /* ks_store_pipeline_send's commands: sent, their replies not taken by
     * ks_store_pipeline_recv yet; any other command reads them first
     * into held (the connection answers in order). */
    size_t unread; /* sent, not read from the connection */
    size_t n_held; /* read into held */
    redisReply **held;
    bool lost; /* the connection broke before every reply came */
    bool sent; /* the last command or pipeline reached the connection and
                  got no "cannot serve" answer: it may have run */
    ks_store_pump_fn *pump; /* run while a reply is awaited (may be NULL) */
    void *pump_arg;
};

/* True when r is an error reply by which Redis says it cannot serve any
 * command right now: the caller treats it as no reply (KS_ERR_RETRY). */
static bool reply_unavailable(const redisReply *r)
{
    static const char *const prefixes[] = {
        "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY",
    };

    if (!r || r->type != REDIS_REPLY_ERROR || !r->str) {
        return false;
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);

        if (strncmp(r->str, prefixes[i], n) == 0 &&
            (r->str[n] == ' ' || r->str[n] == '\0')) {
            return true;
        }
    }
    return false;
}

/* Remembers the text of an error reply r for ks_store_last_error. */
static void note_error(struct ks_store *rs, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR) {
        ks_strlcpy(rs->last_error, r->str ? r->str : "error reply",
                   sizeof(rs->last_error));
    }
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(struct ks_store *rs,
                     const char *url,
                     char *errstr,
                     size_t errstr_size)
{
    const char *p = url + strlen("redis://");
    const char *at = strchr(p, '@'), *colon, *slash;
    int64_t v;
    char num[16];

    if (at) {
        const char *pw = memchr(p, ':', (size_t)(at - p));

        if (pw) {
            rs->password = ks_xstrndup(pw + 1, (size_t)(at - pw - 1));
            if (pw > p) {
                rs->username = ks_xstrndup(p, (size_t)(pw - p));
            }
        }
        p = at + 1;
    }
    slash = strchr(p, '/');
    colon = strchr(p, ':');
    if (colon && slash && colon > slash) {
        colon = NULL;
    }
    {
        const char *end = colon ? colon : slash ? slash : p + strlen(p);

        if (end == p || (size_t)(end - p) >= sizeof(rs->host)) {
            goto bad;
        }
        memcpy(rs->host, p, (size_t)(end - p));
        rs->host[end - p] = '\0';
    }
    rs->port = 6379;
    if (colon) {
        size_t n = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);

        if (n == 0 || n >= sizeof(num)) {
            goto bad;
        }
        memcpy(num, colon + 1, n);
        num[n] = '\0';
        if (ks_parse_int64(num, 1, 65535, &v) != 0) {
            goto bad;
        }
        rs->port = (int)v;
    }
    if (slash && slash[1]) {
        if (ks_parse_int64(slash + 1, 0, 1000, &v) != 0) {
            goto bad;
        }
        rs->db = (int)v;
    }
    return 0;

bad:
    snprintf(errstr, errstr_size,
             "redis.url: expected "
             "redis://[[user]:password@]host[:port][/db]");
    return -1;
}

struct ks_store *ks_store_new(const struct ks_config *cfg,
                              char *errstr,
                              size_t errstr_size)
{
    struct ks_store *rs = ks_xcalloc(1, sizeof(*rs));

    if (parse_url(rs, cfg->redis_url, errstr, errstr_size) != 0) {
        ks_store_destroy(rs);
        return NULL;
    }
    rs->prefix = ks_xstrdup(cfg->redis_prefix);
    rs->timeout_ms = cfg->redis_timeout_ms;
    rs->done_ttl_s = cfg->done_ttl_s;
    rs->max_value = cfg->limits.max_message_bytes * 2;
    rs->backoff_ms = 100;
    return rs;
}

void ks_store_destroy(struct ks_store *rs)
{
    if (!rs) {
        return;
    }
    if (rs->c) {
        redisFree(rs->c);
    }
    for (size_t i = 0; i < rs->n_held; i++) {
        freeReplyObject(rs->held[i]);
    }
    free(rs->held);
    free(rs->username);
    free(rs->password);
    free(rs->prefix);
    free(rs);
}

void ks_store_set_pump(struct ks_store *rs, ks_store_pump_fn *pump, void *arg)
{
    rs->pump = pump;
    rs->pump_arg = arg;
}

/* Reads one reply, as redisGetReply; with a pump, see store_reply.h. */
static int get_reply(struct ks_store *rs, void **out)
{
    if (!rs->pump) {
        return redisGetReply(rs->c, out);
    }
    return ks_store_reply_pumped(rs->c, rs->timeout_ms, rs->pump, rs->pump_arg,
                                 out);
}

static void drop(struct ks_store *rs, const char *why)
{
    ks_log_warn("store", "redis %s:%d: %s", rs->host, rs->port, why);
    redisFree(rs->c);
    rs->c = NULL;
    if (rs->unread > 0) {
        rs->lost = true; /* the deferred replies will never come */
        rs->unread = 0;
    }
}

/* Reads the replies of a ks_store_pipeline_send still on the connection
 * into rs->held, so that the next command reads its own. Returns 0, or
 * -1 with the connection dropped. */
static int read_unread(struct ks_store *rs)
{
    while (rs->unread > 0) {
        void *r = NULL;

        if (get_reply(rs, &r) != REDIS_OK || !r) {
            drop(rs, rs->c->errstr[0] ? rs->c->errstr : "connection lost");
            return -1;
        }
        rs->held[rs->n_held++] = r;
        rs->unread--;
    }
    return 0;
}

/* Runs one set-up command on a new connection: AUTH or SELECT. Returns 0,
 * or -1 with the connection dropped and Redis's reason logged (never the
 * password: the command is not logged). */
static int setup_command(struct ks_store *rs,
                         redisReply *reply,
                         const char *what)
{
    char why[300];

    if (reply && reply->type != REDIS_REPLY_ERROR) {
        freeReplyObject(reply);
        return 0;
    }
    snprintf(why, sizeof(why), "%s refused: %s", what,
             reply ? reply->str : rs->c->errstr);
    if (reply) {
        freeReplyObject(reply);
    }
    drop(rs, why);
    return -1;
}

/* AUTH (as the URL's ACL user, if any) and SELECT on a new connection. */
static int login(struct ks_store *rs)
{
    if (rs->password &&
        setup_command(
            rs,
            rs->username
                ? redisCommand(rs->c, "AUTH %s %s", rs->username, rs->password)
                : redisCommand(rs->c, "AUTH %s", rs->password),
            "AUTH") != 0) {
        return -1;
    }
    if (rs->db && setup_command(rs, redisCommand(rs->c, "SELECT %d", rs->db),
                                "SELECT") != 0) {
        return -1;
    }
    return 0;
}

/* Connects when there is no connection and a retry is due. Returns 0
 * when connected. */
static int ensure_connected(struct ks_store *rs)
{
    struct timeval tv = {rs->timeout_ms / 1000, (rs->timeout_ms % 1000) * 1000};
    int64_t now = ks_mono_ms();

    if (rs->c) {
        return 0;
    }
    if (now < rs->next_attempt_ms) {
        return -1;
    }
    rs->c = redisConnectWithTimeout(rs->host, rs->port, tv);
    if (!rs->c || rs->c->err) {
        ks_log_warn("store", "cannot connect to redis %s:%d: %s", rs->host,
                    rs->port, rs->c ? rs->c->errstr : "out of memory");
        if (rs->c) {
            redisFree(rs->c);
            rs->c = NULL;
        }
        goto backoff;
    }
    redisSetTimeout(rs->c, tv);
    if (login(rs) != 0) {
        goto backoff; /* a wrong password is retried as slowly */
    }
    rs->backoff_ms = 100;
    ks_log_info("store", "connected to redis %s:%d", rs->host, rs->port);
    return 0;

backoff:
    rs->next_attempt_ms = now + rs->backoff_ms;
    rs->backoff_ms = rs->backoff_ms * 2 > 2000 ? 2000 : rs->backoff_ms * 2;
    return -1;
}

/* Runs argv on the connection (reconnecting when due). */
redisReply *ks_store_command(struct ks_store *rs,
                             int argc,
                             const char **argv,
                             const size_t *argvlen)
{
    redisReply *reply;

    rs->sent = false;
    if (rs->c && read_unread(rs) != 0) {
        return NULL;
    }
    if (ensure_connected(rs) != 0) {
        return NULL;
    }
    rs->sent = true;
    if (redisAppendCommandArgv(rs->c, argc, argv, argvlen) != REDIS_OK ||
        get_reply(rs, (void **)&reply) != REDIS_OK) {
        reply = NULL;
    }
    if (!reply) {
        drop(rs, rs->c->errstr[0] ? rs->c->errstr : "connection lost");
    }
    note_error(rs, reply);
    if (reply_unavailable(reply)) {
        ks_log_warn(LOG_TAG, "redis cannot serve now: %s", reply->str);
        freeReplyObject(reply);
        rs->sent = false; /* refused, not run */
        return NULL;      /* as if no reply: KS_ERR_RETRY for the caller */
    }
    return reply;
}

bool ks_store_sent(const struct ks_store *rs)
{
    return rs->sent;
}

enum ks_err ks_store_pipeline(struct ks_store *rs,
                              size_t n,
                              const struct ks_store_cmd *cmds,
                              redisReply **replies)
{
    size_t got = 0;

    memset(replies, 0, n * sizeof(*replies));
    rs->sent = false;
    if (n == 0) {
        return KS_OK;
    }
    if (rs->c && read_unread(rs) != 0) {
        return KS_ERR_RETRY;
    }
    if (ensure_connected(rs) != 0) {
        return KS_ERR_RETRY;
    }
    rs->sent = true;
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommandArgv(rs->c, cmds[i].argc, cmds[i].argv,
                                   cmds[i].argvlen) != REDIS_OK) {
            goto fail;
        }
    }
    for (; got < n; got++) {
        void *r = NULL;

        if (get_reply(rs, &r) != REDIS_OK || !r) {
            goto fail;
        }
        replies[got] = r;
        note_error(rs, r);
    }
    for (size_t i = 0; i < n; i++) {
        if (reply_unavailable(replies[i])) {
            /* Redis cannot serve now (LOADING, BUSY...): the whole batch
             * is retried, as for a broken connection, which stays up. */
            ks_log_warn(LOG_TAG, "redis cannot serve now: %s", replies[i]->str);
            for (size_t j = 0; j < n; j++) {
                freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
            rs->sent = false; /* refused, not run */
            return KS_ERR_RETRY;
        }
    }
    return KS_OK;

fail:
    /* A connection broken half way: the replies read so far stand alone
     * for nothing, so the whole batch is retried. */
    for (size_t i = 0; i < got; i++) {
        freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    drop(rs, rs->c->errstr[0] ? rs->c->errstr : "connection lost");
    return KS_ERR_RETRY;
}

/* Frees what a deferred pipeline left: replies read and not taken. */
static void deferred_reset(struct ks_store *rs)
{
    for (size_t i = 0; i < rs->n_held; i++) {
        freeReplyObject(rs->held[i]);
    }
    free(rs->held);
    rs->held = NULL;
    rs->n_held = 0;
    rs->lost = false;
}

enum ks_err ks_store_pipeline_send(struct ks_store *rs,
                                   size_t n,
                                   const struct ks_store_cmd *cmds)
{
    int done = 0;

    if (rs->unread > 0 || rs->held || rs->lost) {
        ks_log_error(LOG_TAG, "a deferred pipeline is still open: bug");
        return KS_ERR_INVALID;
    }
    if (n == 0) {
        return KS_OK;
    }
    if (ensure_connected(rs) != 0) {
        return KS_ERR_RETRY;
    }
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommandArgv(rs->c, cmds[i].argc, cmds[i].argv,
                                   cmds[i].argvlen) != REDIS_OK) {
            goto fail;
        }
    }
    while (!done) { /* out now, so Redis works while the caller does */
        if (redisBufferWrite(rs->c, &done) != REDIS_OK) {
            goto fail;
        }
    }
    rs->held = ks_xcalloc(n, sizeof(*rs->held));
    rs->unread = n;
    return KS_OK;

fail:
    drop(rs, rs->c->errstr[0] ? rs->c->errstr : "connection lost");
    return KS_ERR_RETRY;
}

enum ks_err ks_store_pipeline_recv(struct ks_store *rs,
                                   size_t n,
                                   redisReply **replies)
{
    bool unavailable = false;

    memset(replies, 0, n * sizeof(*replies));
    if (n == 0) {
        return KS_OK;
    }
    if (rs->unread + rs->n_held != n && !rs->lost) {
        ks_log_error(LOG_TAG, "deferred pipeline of %zu read as %zu: bug",
                     rs->unread + rs->n_held, n);
        deferred_reset(rs);
        return KS_ERR_INVALID;
    }
    if (rs->lost || (rs->c && read_unread(rs) != 0) || rs->lost) {
        deferred_reset(rs); /* half a batch stands for nothing: retried */
        return KS_ERR_RETRY;
    }
    for (size_t i = 0; i < n; i++) {
        note_error(rs, rs->held[i]);
        unavailable |= reply_unavailable(rs->held[i]);
    }
    if (unavailable) { /* as ks_store_pipeline: the batch is retried */
        ks_log_warn(LOG_TAG, "redis cannot serve now (deferred pipeline)");
        deferred_reset(rs);
        return KS_ERR_RETRY;
    }
    memcpy(replies, rs->held, n * sizeof(*replies));
    rs->n_held = 0;
    deferred_reset(rs);
    return KS_OK;
}

enum ks_err ks_store_ping(struct ks_store *rs)
{
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = ks_store_command(rs, 1, argv, lens);

    if (!r) {
        return KS_ERR_RETRY;
    }
    freeReplyObject(r);
    return KS_OK;
}

enum ks_err ks_store_get(struct ks_store *rs,
                         const char *key,
                         char **valuep,
                         size_t *lenp)
{
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, strlen(key)};
    redisReply *r;
    enum ks_err err = KS_OK;

    *valuep = NULL;
    *lenp = 0;
    r = ks_store_command(rs, 2, argv, lens);
    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_STRING) {
        if (r->len <= rs->max_value) {
            *valuep = ks_xstrndup(r->str, r->len);
            *lenp = r->len;
        } else {
            ks_log_warn("store", "%s: %zu bytes, over the cap: ignored", key,
                        (size_t)r->len);
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        ks_log_warn("store", "GET %s: %s", key, r->str);
        err = KS_ERR_UPSTREAM;
    }
    freeReplyObject(r);
    return err;
}

enum ks_err ks_store_set(struct ks_store *rs,
                         const char *key,
                         const void *value,
                         size_t len)
{
    char ttl[32];
    const char *argv[5] = {"SET", key, value, "EX", ttl};
    size_t lens[5] = {3, strlen(key), len, 2, 0};
    redisReply *r;
    enum ks_err err = KS_OK;

    snprintf(ttl, sizeof(ttl), "%" PRId64, rs->done_ttl_s);
    lens[4] = strlen(ttl);
    r = ks_store_command(rs, 5, argv, lens);
    if (!r) {
        return KS_ERR_RETRY;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        ks_log_warn("store", "SET %s: %s", key, r->str);
        err = KS_ERR_UPSTREAM;
    }
    freeReplyObject(r);
    return err;
}

const char *ks_store_last_error(const struct ks_store *rs)
{
    return rs->last_error;
}

const char *ks_store_prefix(const struct ks_store *rs)
{
    return rs->prefix;
}

size_t ks_store_max_value(const struct ks_store *rs)
{
    return rs->max_value;
}

int64_t ks_store_ttl_s(const struct ks_store *rs)
{
    return rs->done_ttl_s;
}
