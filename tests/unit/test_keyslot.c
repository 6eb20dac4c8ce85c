/*
 * test_keyslot.c - every key one budget or rate-limit script call touches
 * lies in one Redis Cluster hash slot (docs/design.md section 7), so the
 * scripts run unchanged on a cluster.
 *
 * A real redis-server (redis_server.h) runs the calls while a second
 * connection watches them with MONITOR: each EVALSHA or EVAL line names
 * the call's declared keys, and the lines the script itself runs (tagged
 * "lua") name every key it touches, the ones a sweep derives from a dead
 * worker's reservations included. The slot is computed here, with our
 * own CRC16-XMODEM and the hash-tag rule of the Redis Cluster
 * specification, and must be the same for every key of one call.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "base/log.h"
#include "base/util.h"
#include "redis/budget.h"
#include "redis/ratelimit.h"
#include "redis/store.h"
#include "redis_server.h"

#include "base/banned.h"

#define PREFIX   "kt:"
#define ARG_MAX  64
#define ARG_LEN  512
#define SENTINEL "keyslot-test-end"

static struct redis_server srv = {.pid = -1};

/* ---- the slot, per the Redis Cluster specification ---------------------- */

static uint16_t crc16_xmodem(const char *buf, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021)
                               : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* The hash slot of key: of the part between the first '{' and the next
 * '}' when that part is not empty, else of the whole key. */
static unsigned key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len), *close;

    if (open) {
        close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close && close > open + 1) {
            return crc16_xmodem(open + 1, (size_t)(close - open - 1)) & 16383;
        }
    }
    return crc16_xmodem(key, len) & 16383;
}

static void crc16_matches_the_specification(void **state)
{
    (void)state;
    /* the check value of the specification's CRC16 */
    assert_int_equal(crc16_xmodem("123456789", 9), 0x31C3);
    assert_int_equal(key_slot("{user1000}.following", 20),
                     key_slot("{user1000}.followers", 20));
    assert_int_equal(key_slot("foo{}{bar}", 10),
                     crc16_xmodem("foo{}{bar}", 10) & 16383);
    assert_int_equal(key_slot("foo{{bar}}zap", 13),
                     crc16_xmodem("{bar", 4) & 16383);
}

/* ---- MONITOR lines ------------------------------------------------------ */

/* One MONITOR line: its source ("lua" or a client) and its quoted args. */
struct mline {
    bool lua;
    int argc;
    char argv[ARG_MAX][ARG_LEN];
    size_t lens[ARG_MAX];
};

static int unhex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : 0;
}

/* Reads one quoted, escaped argument at *p into out; advances *p. */
static size_t parse_arg(const char **p, char *out)
{
    const char *s = *p + 1; /* after the opening quote */
    size_t n = 0;

    while (*s && *s != '"') {
        char c = *s++;

        if (c == '\\' && *s) {
            c = *s++;
            if (c == 'n') {
                c = '\n';
            } else if (c == 'r') {
                c = '\r';
            } else if (c == 't') {
                c = '\t';
            } else if (c == 'x' && s[0] && s[1]) {
                c = (char)(unhex(s[0]) * 16 + unhex(s[1]));
                s += 2;
            }
        }
        if (n + 1 < ARG_LEN) {
            out[n++] = c;
        }
    }
    out[n] = '\0';
    *p = *s ? s + 1 : s;
    return n;
}

static void parse_line(const char *line, struct mline *m)
{
    const char *p = strchr(line, ']');

    memset(m, 0, sizeof(*m));
    m->lua = strstr(line, " lua]") != NULL;
    while (p && (p = strchr(p, '"')) != NULL && m->argc < ARG_MAX) {
        m->lens[m->argc] = parse_arg(&p, m->argv[m->argc]);
        m->argc++;
    }
}

/* ---- the check ---------------------------------------------------------- */

/* The slots seen in the current script call. */
struct call {
    bool open;
    int keys;
    unsigned slot;
};

static void see_key(struct call *c, const char *key, size_t len)
{
    unsigned slot = key_slot(key, len);

    if (c->keys > 0 && slot != c->slot) {
        fail_msg("key '%s' is in slot %u, not %u like the call's others", key,
                 slot, c->slot);
    }
    c->slot = slot;
    c->keys++;
}

/* Reads MONITOR lines until the sentinel; checks each script call's keys.
 * Returns the number of script calls seen; *min_keys is the fewest keys
 * one call had. */
static int check_monitor(redisContext *mon, int *min_keys)
{
    struct mline *m = malloc(sizeof(*m));
    struct call c = {0};
    int calls = 0;
    redisReply *r;

    *min_keys = 1 << 30;
    assert_non_null(m);
    while (redisGetReply(mon, (void **)&r) == REDIS_OK) {
        bool end;

        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        parse_line(r->str, m);
        freeReplyObject(r);
        end = m->argc >= 2 && strcmp(m->argv[1], SENTINEL) == 0;
        if (!m->lua && c.open) { /* the call before this line is over */
            *min_keys = c.keys < *min_keys ? c.keys : *min_keys;
            c.open = false;
        }
        if (end) {
            break;
        }
        if (!m->lua && m->argc >= 3 &&
            (strcasecmp(m->argv[0], "EVALSHA") == 0 ||
             strcasecmp(m->argv[0], "EVAL") == 0)) {
            int nkeys = (int)strtol(m->argv[2], NULL, 10);

            c = (struct call){.open = true};
            calls++;
            for (int i = 0; i < nkeys && 3 + i < m->argc; i++) {
                see_key(&c, m->argv[3 + i], m->lens[3 + i]);
            }
        } else if (m->lua && c.open && m->argc >= 2 &&
                   strcasecmp(m->argv[0], "TIME") != 0) {
            see_key(&c, m->argv[1], m->lens[1]); /* every command's key */
        }
    }
    free(m);
    return calls;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The calls a worker, the router and the CLI make, with a dead worker's
 * reservations swept, a late settle and a released rate-limit slot. */
static void run_calls(struct ks_store *rs)
{
    struct ks_budget_owner dead, alive;
    struct ks_budget_reservation a, b, many[2];
    struct ks_budget_request q[2] = {{"t", 1000, "acme", 500, 10, 60000},
                                     {"t", 1000, "", -1, 10, 60000}};
    struct ks_budget_state st;
    const char *by[2];
    enum ks_err errs[2];
    int64_t now = ks_wall_ms(), actual[2] = {3, 4};
    char member[KS_RATELIMIT_MEMBER_MAX], day[9];
    bool ok;
    int64_t wait;

    ks_budget_day(now, day);
    ks_budget_owner_init(&dead, 100);
    ks_budget_owner_init(&alive, 5000);
    assert_int_equal(ks_budget_set_limit(rs, "tenant", "acme", 900), KS_OK);
    assert_int_equal(ks_budget_reserve(rs, &dead, "t", 1000, "acme", -1, 50,
                                       now, 60000, &a, NULL),
                     KS_OK);
    assert_int_equal(ks_budget_reserve(rs, &alive, "t", 1000, "beta", -1, 50,
                                       now, 20, &b, NULL),
                     KS_OK);
    sleep_ms(250); /* dead's liveness lapses, b expires */
    assert_int_equal(
        ks_budget_live_read(rs, &alive, "tier", "t", day, 1000, &st), KS_OK);
    assert_int_equal(st.expired_micro, 100);
    assert_int_equal(ks_budget_read(rs, "tenant", "beta", day, -1, now, &st),
                     KS_OK);
    assert_int_equal(ks_budget_settle(rs, &a, 20, now), KS_OK);
    assert_int_equal(
        ks_budget_reserve_many(rs, &alive, 2, q, now, many, by, errs), KS_OK);
    assert_int_equal(ks_budget_settle_many(rs, 2, many, actual, now, errs),
                     KS_OK);
    assert_int_equal(ks_budget_add_spent(rs, day, "tenant", "acme", 1), KS_OK);
    assert_int_equal(
        ks_ratelimit_admit(rs, "t", 1, 10, 100, 5, 0, &ok, &wait, member),
        KS_OK);
    assert_true(ok);
    assert_int_equal(ks_ratelimit_release(rs, "t", 1, member), KS_OK);
}

static void every_script_call_stays_in_one_slot(void **state)
{
    struct redis_fixture *fx = NULL;
    redisContext *mon = redisConnect("127.0.0.1", srv.port);
    struct timeval tv = {10, 0};
    redisReply *r;
    int calls, min_keys;

    (void)state;
    assert_non_null(mon);
    assert_int_equal(mon->err, 0);
    redisSetTimeout(mon, tv);
    r = redisCommand(mon, "MONITOR");
    assert_non_null(r);
    freeReplyObject(r);
    fx = redis_fixture_new(&srv, srv.port, PREFIX);
    assert_non_null(fx->rs);
    run_calls(fx->rs);
    r = redisCommand(srv.c, "ECHO %s", SENTINEL);
    assert_non_null(r);
    freeReplyObject(r);
    calls = check_monitor(mon, &min_keys);
    print_message("%d script calls, each with at least %d keys\n", calls,
                  min_keys);
    /* not vacuous: every call was seen, each touching several keys */
    assert_true(calls >= 10);
    assert_true(min_keys >= 3);
    redis_fixture_destroy(fx);
    redisFree(mon);
}

static int group_setup(void **state)
{
    *state = &srv;
    ks_log_set_level("error");
    return redis_server_start(&srv, "keyslot") ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc16_matches_the_specification),
        cmocka_unit_test(every_script_call_stays_in_one_slot),
    };

    return cmocka_run_group_tests(tests, group_setup,
                                  redis_server_group_teardown);
}
