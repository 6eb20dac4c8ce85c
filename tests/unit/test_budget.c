/*
 * test_budget.c - daily budgets against a real redis-server: reservations
 * refused at the limit, atomically for tier and tenant; settle moving
 * reserved to spent once per id, even after the reservation expired and
 * was swept; runtime limits; day keys and their TTLs; many processes
 * never pushing spent past the limit; Redis down giving KS_ERR_RETRY.
 *
 * The group setup starts `redis-server` (from PATH) on a free port in a
 * temporary directory and the group teardown kills it and removes the
 * directory, also when tests fail; the server dies with this process
 * (PR_SET_PDEATHSIG) if the binary crashes. Without redis-server the group
 * setup fails with a message: a missing server is not a pass. Every test
 * starts from FLUSHALL with its own store (prefix "kt:").
 *
 * Times are pinned to noon UTC of today (t0) so that a test running across
 * midnight does not see two budget days.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <hiredis/hiredis.h>

#include "budget.h"
#include "config.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include "banned.h"

#define DAY_MS      (86400 * (int64_t)1000)
#define LONG_TTL_MS (10 * 60 * 1000)
#define PREFIX      "kt:"

/* The redis-server of the group. */
static struct {
    pid_t pid;
    int port;
    char dir[256];
    char config[300];
    redisContext *c; /* for FLUSHALL and for looking at the keys */
} srv = {.pid = -1};

/* What each test gets in *state. */
struct fixture {
    struct ks_config *cfg;
    struct ks_store *rs;
};

static int64_t t0; /* noon UTC today */
static char day0[9];

/* ---- the server --------------------------------------------------------- */

/* A local TCP port nobody listens on right now. */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static void spawn_redis(void)
{
    char port[16], log[300];
    int fd;

    snprintf(port, sizeof(port), "%d", srv.port);
    snprintf(log, sizeof(log), "%s/redis.log", srv.dir);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    execlp("redis-server", "redis-server", "--port", port, "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", srv.dir,
           "--daemonize", "no", (char *)NULL);
    _exit(127);
}

/* Waits up to 10 s for PING; false when the server died or never came. */
static bool wait_for_redis(void)
{
    struct timeval tv = {1, 0};
    int status;

    for (int i = 0; i < 500; i++) {
        if (waitpid(srv.pid, &status, WNOHANG) == srv.pid) {
            fprintf(stderr,
                    "test_budget: redis-server exited at once (status %d%s); "
                    "see %s/redis.log\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                    WIFEXITED(status) && WEXITSTATUS(status) == 127
                        ? ": not installed?"
                        : "",
                    srv.dir);
            srv.pid = -1;
            return false;
        }
        srv.c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
        if (srv.c && !srv.c->err) {
            redisReply *r = redisCommand(srv.c, "PING");

            if (r && r->type == REDIS_REPLY_STATUS) {
                freeReplyObject(r);
                return true;
            }
            if (r) {
                freeReplyObject(r);
            }
        }
        if (srv.c) {
            redisFree(srv.c);
            srv.c = NULL;
        }
        usleep(20 * 1000);
    }
    fprintf(stderr, "test_budget: redis-server did not answer PING\n");
    return false;
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char file[600];

    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
            unlink(file);
        }
    }
    closedir(d);
    rmdir(path);
}

static int group_teardown(void **state)
{
    (void)state;
    if (srv.c) {
        redisFree(srv.c);
        srv.c = NULL;
    }
    if (srv.pid > 0) {
        int status;

        kill(srv.pid, SIGTERM);
        for (int i = 0; i < 250; i++) {
            if (waitpid(srv.pid, &status, WNOHANG) == srv.pid) {
                srv.pid = -1;
                break;
            }
            usleep(20 * 1000);
        }
        if (srv.pid > 0) {
            kill(srv.pid, SIGKILL);
            waitpid(srv.pid, &status, 0);
            srv.pid = -1;
        }
    }
    if (srv.dir[0]) {
        remove_dir(srv.dir);
        srv.dir[0] = '\0';
    }
    return 0;
}

static bool write_config(void)
{
    FILE *f;

    snprintf(srv.config, sizeof(srv.config), "%s/kascade.json", srv.dir);
    f = fopen(srv.config, "w");
    if (!f) {
        return false;
    }
    fputs("{\"kafka\": {\"bootstrap.servers\": \"127.0.0.1:9092\"},\n"
          " \"tiers\": [{\"name\": \"only\", \"providers\": [{\"base_url\":"
          " \"http://127.0.0.1:8080/v1\", \"model\": \"m\"}]}]}\n",
          f);
    return fclose(f) == 0;
}

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    t0 = ks_wall_ms() / DAY_MS * DAY_MS + DAY_MS / 2;
    ks_budget_day(t0, day0);
    ks_log_set_level("error");
    snprintf(srv.dir, sizeof(srv.dir), "%s/kascade-budget-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(srv.dir) || !write_config()) {
        fprintf(stderr, "test_budget: cannot make a temp dir or config\n");
        srv.dir[0] = '\0';
        return -1;
    }
    srv.port = free_port();
    fflush(NULL);
    srv.pid = fork();
    if (srv.pid == 0) {
        spawn_redis();
    }
    if (srv.pid < 0 || !wait_for_redis()) {
        fprintf(stderr, "test_budget: SKIPPED for lack of a redis-server "
                        "(install redis-server 7 and put it on PATH): "
                        "FAILING, not passing\n");
        group_teardown(state);
        return -1;
    }
    return 0;
}

/* ---- fixtures and helpers ----------------------------------------------- */

/* A config and store for redis on port (caller destroys both). */
static struct fixture *fixture_new(int port)
{
    struct fixture *fx = ks_xcalloc(1, sizeof(*fx));
    char url[64], errstr[512];
    const char *ov[3] = {url, "redis.prefix=" PREFIX, "redis.timeout_ms=2000"};

    snprintf(url, sizeof(url), "redis.url=redis://127.0.0.1:%d", port);
    fx->cfg = ks_config_load(srv.config, ov, 3, errstr, sizeof(errstr));
    if (fx->cfg) {
        fx->rs = ks_store_new(fx->cfg, errstr, sizeof(errstr));
    }
    if (!fx->rs) {
        fprintf(stderr, "test_budget: %s\n", errstr);
    }
    return fx;
}

static void fixture_destroy(struct fixture *fx)
{
    if (fx) {
        ks_store_destroy(fx->rs);
        ks_config_destroy(fx->cfg);
        free(fx);
    }
}

static int setup(void **state)
{
    redisReply *r = redisCommand(srv.c, "FLUSHALL");
    struct fixture *fx;

    if (!r) {
        return -1;
    }
    freeReplyObject(r);
    fx = fixture_new(srv.port);
    *state = fx;
    return fx->rs ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_destroy(*state);
    *state = NULL;
    return 0;
}

static struct ks_store *store_of(void **state)
{
    return ((struct fixture *)*state)->rs;
}

/* A number from redis (an integer reply, or a string read as one; nil and
 * a missing field are 0). */
static long long raw_num(const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = 0;

    va_start(ap, fmt);
    r = redisvCommand(srv.c, fmt, ap);
    va_end(ap);
    if (!r) {
        fail_msg("redis: %s", srv.c->errstr);
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    } else if (r->type == REDIS_REPLY_STRING) {
        v = strtoll(r->str, NULL, 10);
    } else if (r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        fail_msg("redis error on %s", fmt);
    }
    freeReplyObject(r);
    return v;
}

/* The key of a budget: kind/name on day, with suffix ("", ":res", ...). */
static const char *bkey(const char *kind,
                        const char *name,
                        const char *day,
                        const char *suffix)
{
    static char keys[4][256];
    static int next;
    char *k = keys[next++ % 4];

    snprintf(k, 256, PREFIX "budget:%s:%s:%s%s", day, kind, name, suffix);
    return k;
}

static long long field(const char *kind, const char *name, const char *f)
{
    return raw_num("HGET %s %s", bkey(kind, name, day0, ""), f);
}

static enum ks_err reserve(void **state,
                           const char *tier,
                           int64_t tier_limit,
                           const char *tenant,
                           int64_t tenant_limit,
                           int64_t cost,
                           int64_t now,
                           int64_t ttl_ms,
                           struct ks_budget_reservation *res,
                           const char **refused_by)
{
    return ks_budget_reserve(store_of(state), tier, tier_limit, tenant,
                             tenant_limit, cost, now, ttl_ms, res, refused_by);
}

static void assert_state(void **state,
                         const char *kind,
                         const char *name,
                         const char *day,
                         int64_t now,
                         int64_t spent,
                         int64_t reserved)
{
    struct ks_budget_state st;

    assert_int_equal(
        ks_budget_read(store_of(state), kind, name, day, -1, now, &st), KS_OK);
    assert_int_equal(st.spent_micro, spent);
    assert_int_equal(st.reserved_micro, reserved);
}

/* ---- tests -------------------------------------------------------------- */

static void budget_day_is_the_utc_date(void **state)
{
    char day[9];

    (void)state;
    ks_budget_day(0, day);
    assert_string_equal(day, "19700101");
    ks_budget_day(1709251199999, day); /* 2024-02-29T23:59:59.999Z */
    assert_string_equal(day, "20240229");
    ks_budget_day(1709251200000, day);
    assert_string_equal(day, "20240301");
    ks_budget_day(-1, day);
    assert_string_equal(day, "19691231");
}

static void budget_reserve_refuses_when_limit_reached(void **state)
{
    struct ks_budget_reservation res;
    const char *by = "unset";

    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 600, t0, LONG_TTL_MS, &res, &by),
        KS_OK);
    assert_null(by);
    assert_string_equal(res.day, day0);
    assert_string_equal(res.tier, "t");
    assert_int_equal(res.amount_micro, 600);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 500, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_string_equal(by, "tier");
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 400, t0, LONG_TTL_MS, &res, &by),
        KS_OK);
    assert_state(state, "tier", "t", day0, t0, 0, 1000);
}

static void budget_reserve_checks_tenant_and_tier_atomically(void **state)
{
    struct ks_budget_reservation res;
    const char *by = NULL;

    assert_int_equal(reserve(state, "t", 10000, "acme", 1000, 1000, t0,
                             LONG_TTL_MS, &res, &by),
                     KS_OK);
    assert_string_equal(res.tenant, "acme");
    /* the tenant is full: nothing changes on the tier */
    assert_int_equal(
        reserve(state, "t", 10000, "acme", 1000, 1, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_string_equal(by, "tenant");
    assert_int_equal(field("tier", "t", "reserved"), 1000);
    assert_int_equal(raw_num("HLEN %s", bkey("tier", "t", day0, ":amt")), 1);
    assert_int_equal(raw_num("ZCARD %s", bkey("tier", "t", day0, ":res")), 1);
    /* the tier is full: nothing is created for the other tenant */
    assert_int_equal(reserve(state, "t", 10000, "beta", 100000, 9001, t0,
                             LONG_TTL_MS, &res, &by),
                     KS_ERR_BUDGET);
    assert_string_equal(by, "tier");
    assert_int_equal(raw_num("EXISTS %s %s %s",
                             bkey("tenant", "beta", day0, ""),
                             bkey("tenant", "beta", day0, ":res"),
                             bkey("tenant", "beta", day0, ":amt")),
                     0);
    assert_int_equal(field("tier", "t", "reserved"), 1000);
    assert_int_equal(field("tenant", "acme", "reserved"), 1000);
}

static void budget_settle_moves_reserved_to_spent_and_releases_the_rest(
    void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(reserve(state, "t", 1000, "acme", 1000, 600, t0,
                             LONG_TTL_MS, &res, NULL),
                     KS_OK);
    assert_int_equal(ks_budget_settle(store_of(state), &res, 250, t0 + 5),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 5, 250, 0);
    assert_state(state, "tenant", "acme", day0, t0 + 5, 250, 0);
    assert_int_equal(raw_num("EXISTS %s %s", bkey("tier", "t", day0, ":amt"),
                             bkey("tier", "t", day0, ":res")),
                     0);
    /* the 350 reserved and not spent can be reserved again */
    assert_int_equal(reserve(state, "t", 1000, "acme", 1000, 750, t0 + 6,
                             LONG_TTL_MS, &res, NULL),
                     KS_OK);
}

static void budget_settle_twice_counts_once(void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(
        reserve(state, "t", 1000, "acme", -1, 600, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_settle(store_of(state), &res, 250, t0), KS_OK);
    assert_int_equal(ks_budget_settle(store_of(state), &res, 250, t0), KS_OK);
    assert_int_equal(ks_budget_settle(store_of(state), &res, 400, t0), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 250, 0);
    assert_state(state, "tenant", "acme", day0, t0, 250, 0);
}

static void budget_expired_reservation_is_swept_and_budget_usable_again(
    void **state)
{
    struct ks_budget_reservation res;
    const char *by;

    assert_int_equal(reserve(state, "t", 1000, "", -1, 600, t0, 50, &res, NULL),
                     KS_OK);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 500, t0 + 10, 50, &res, &by),
        KS_ERR_BUDGET);
    /* 100 ms later the worker that took 600 is presumed dead */
    assert_int_equal(reserve(state, "t", 1000, "", -1, 500, t0 + 100,
                             LONG_TTL_MS, &res, &by),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 100, 0, 500);
    assert_int_equal(raw_num("HLEN %s", bkey("tier", "t", day0, ":amt")), 1);
    assert_int_equal(raw_num("ZCARD %s", bkey("tier", "t", day0, ":res")), 1);
}

static void budget_late_settle_of_swept_reservation_still_counts_spend(
    void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(
        reserve(state, "t", 1000, "acme", 1000, 600, t0, 50, &res, NULL),
        KS_OK);
    /* reading the tier sweeps the tier only; the tenant's stays open */
    assert_state(state, "tier", "t", day0, t0 + 100, 0, 0);
    assert_int_equal(field("tenant", "acme", "reserved"), 600);
    assert_int_equal(ks_budget_settle(store_of(state), &res, 300, t0 + 200),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 200, 300, 0);
    assert_state(state, "tenant", "acme", day0, t0 + 200, 300, 0);
    assert_int_equal(raw_num("EXISTS %s", bkey("tier", "t", day0, ":swept")),
                     0);
    /* and a second settle still counts once */
    assert_int_equal(ks_budget_settle(store_of(state), &res, 300, t0 + 300),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 300, 300, 0);
    assert_state(state, "tenant", "acme", day0, t0 + 300, 300, 0);
}

static void budget_runtime_limit_overrides_config(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;
    const char *by;
    struct ks_store *rs = store_of(state);

    assert_int_equal(ks_budget_set_limit(rs, "tier", "t", 5000), KS_OK);
    assert_int_equal(raw_num("GET " PREFIX "limit:tier:t"), 5000);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 3000, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_read(rs, "tier", "t", day0, 1000, t0, &st),
                     KS_OK);
    assert_int_equal(st.limit_micro, 5000);
    assert_true(st.limit_is_runtime);

    assert_int_equal(ks_budget_set_limit(rs, "tier", "t", KS_BUDGET_NO_LIMIT),
                     KS_OK);
    assert_int_equal(ks_budget_read(rs, "tier", "t", day0, 1000, t0, &st),
                     KS_OK);
    assert_int_equal(st.limit_micro, 1000);
    assert_false(st.limit_is_runtime);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 1, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);

    /* a runtime 0 stops an unlimited tenant */
    assert_int_equal(ks_budget_set_limit(rs, "tenant", "acme", 0), KS_OK);
    assert_int_equal(
        reserve(state, "u", -1, "acme", -1, 1, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_string_equal(by, "tenant");
}

static void budget_unlimited_budget_never_refuses(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(reserve(state, "t", KS_BUDGET_NO_LIMIT, "acme",
                                 KS_BUDGET_NO_LIMIT, 1000000000000000, t0,
                                 LONG_TTL_MS, &res, NULL),
                         KS_OK);
    }
    assert_int_equal(ks_budget_read(store_of(state), "tier", "t", day0,
                                    KS_BUDGET_NO_LIMIT, t0, &st),
                     KS_OK);
    assert_int_equal(st.limit_micro, KS_BUDGET_NO_LIMIT);
    assert_int_equal(st.reserved_micro, 3000000000000000);
}

static void assert_ttl_in_range(const char *key, long long lo, long long hi)
{
    long long ttl = raw_num("TTL %s", key);

    if (ttl < lo || ttl > hi) {
        fail_msg("TTL of %s is %lld, expected %lld..%lld", key, ttl, lo, hi);
    }
}

static void budget_day_keys_expire_two_days_after_their_day(void **state)
{
    struct ks_budget_reservation res;
    int64_t now = ks_wall_ms();
    int64_t day_end = now / DAY_MS * DAY_MS + DAY_MS;
    long long want = (long long)((day_end + 2 * DAY_MS - now) / 1000);
    char day[9];

    ks_budget_day(now, day);
    assert_int_equal(
        reserve(state, "t", -1, "acme", -1, 600, now, 1, &res, NULL), KS_OK);
    assert_ttl_in_range(bkey("tier", "t", day, ""), want - 3, want + 1);
    assert_ttl_in_range(bkey("tier", "t", day, ":res"), want - 3, want + 1);
    assert_ttl_in_range(bkey("tier", "t", day, ":amt"), want - 3, want + 1);
    assert_ttl_in_range(bkey("tenant", "acme", day, ""), want - 3, want + 1);
    /* a sweep keeps the expired id, with the same TTL */
    assert_state(state, "tier", "t", day, now + 10, 0, 0);
    assert_ttl_in_range(bkey("tier", "t", day, ":swept"), want - 3, want + 1);
    assert_true(want > 2 * 86400 && want <= 3 * 86400);
    /* runtime limits have no day and no TTL */
    assert_int_equal(ks_budget_set_limit(store_of(state), "tier", "t", 5),
                     KS_OK);
    assert_int_equal(raw_num("TTL " PREFIX "limit:tier:t"), -1);
}

static void budget_day_rollover_uses_a_fresh_budget(void **state)
{
    struct ks_budget_reservation res, next;
    int64_t tomorrow = t0 - DAY_MS / 2 + DAY_MS + 1000;
    char day1[9];
    const char *by;

    ks_budget_day(tomorrow, day1);
    assert_string_not_equal(day1, day0);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 1000, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 1, t0, LONG_TTL_MS, &next, &by),
        KS_ERR_BUDGET);
    assert_int_equal(reserve(state, "t", 1000, "", -1, 1000, tomorrow,
                             LONG_TTL_MS, &next, NULL),
                     KS_OK);
    assert_string_equal(next.day, day1);
    /* a call that started yesterday is paid from yesterday's budget */
    assert_int_equal(ks_budget_settle(store_of(state), &res, 700, tomorrow),
                     KS_OK);
    assert_state(state, "tier", "t", day0, tomorrow, 700, 0);
    assert_state(state, "tier", "t", day1, tomorrow, 0, 1000);
}

static void budget_reset_keeps_the_old_spend_in_reset_micro(void **state)
{
    struct ks_budget_reservation res;
    struct ks_store *rs = store_of(state);

    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 700, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_settle(rs, &res, 700, t0), KS_OK);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 200, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(ks_budget_reset(rs, "tier", "t", day0), KS_OK);
    assert_int_equal(field("tier", "t", "spent"), 0);
    assert_int_equal(field("tier", "t", "reset_micro"), 700);
    assert_int_equal(field("tier", "t", "reserved"), 200);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 800, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    /* resets add up; resetting nothing changes nothing */
    assert_int_equal(ks_budget_add_spent(rs, day0, "tier", "t", 50), KS_OK);
    assert_int_equal(ks_budget_reset(rs, "tier", "t", day0), KS_OK);
    assert_int_equal(ks_budget_reset(rs, "tier", "t", day0), KS_OK);
    assert_int_equal(field("tier", "t", "reset_micro"), 750);
    assert_int_equal(ks_budget_reset(rs, "tenant", "nobody", day0), KS_OK);
    assert_int_equal(raw_num("EXISTS %s", bkey("tenant", "nobody", day0, "")),
                     0);
}

static void budget_add_spent_adds(void **state)
{
    struct ks_store *rs = store_of(state);
    struct ks_budget_reservation res;
    const char *by;

    assert_int_equal(ks_budget_add_spent(rs, day0, "tier", "t", 250), KS_OK);
    assert_int_equal(ks_budget_add_spent(rs, day0, "tier", "t", 250), KS_OK);
    assert_int_equal(ks_budget_add_spent(rs, day0, "tenant", "acme", 5), KS_OK);
    assert_state(state, "tier", "t", day0, t0, 500, 0);
    assert_state(state, "tenant", "acme", day0, t0, 5, 0);
    assert_true(raw_num("TTL %s", bkey("tier", "t", day0, "")) > 0);
    /* replayed spend counts against the limit */
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 501, t0, LONG_TTL_MS, &res, &by),
        KS_ERR_BUDGET);
    assert_int_equal(ks_budget_add_spent(rs, day0, "queue", "t", 1),
                     KS_ERR_INVALID);
}

static void budget_reservation_ids_are_unique(void **state)
{
    struct ks_budget_reservation res;
    char ids[50][48], host[64] = "", want[80];

    gethostname(host, sizeof(host));
    snprintf(want, sizeof(want), "%.12s-%ld-", host, (long)getpid());
    for (int i = 0; i < 50; i++) {
        assert_int_equal(
            reserve(state, "t", -1, "", -1, 1, t0, LONG_TTL_MS, &res, NULL),
            KS_OK);
        assert_memory_equal(res.id, want, strlen(want));
        ks_strlcpy(ids[i], res.id, sizeof(ids[i]));
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(ids[i], ids[j]);
        }
    }
}

static void budget_script_flush_falls_back_to_eval(void **state)
{
    struct ks_budget_reservation res;

    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 100, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_int_equal(raw_num("SCRIPT FLUSH"), 0);
    assert_int_equal(ks_budget_settle(store_of(state), &res, 50, t0), KS_OK);
    assert_int_equal(
        reserve(state, "t", 1000, "", -1, 100, t0, LONG_TTL_MS, &res, NULL),
        KS_OK);
    assert_state(state, "tier", "t", day0, t0, 50, 100);
}

static void budget_settle_many_settles_each_once_in_one_batch(void **state)
{
    struct ks_budget_reservation res[3];
    int64_t actual[3] = {100, 0, 250};
    enum ks_err errs[3];

    assert_int_equal(reserve(state, "t", 10000, "acme", -1, 300, t0,
                             LONG_TTL_MS, &res[0], NULL),
                     KS_OK);
    assert_int_equal(
        reserve(state, "t", 10000, "", -1, 300, t0, LONG_TTL_MS, &res[1], NULL),
        KS_OK);
    assert_int_equal(reserve(state, "t", 10000, "acme", -1, 300, t0,
                             LONG_TTL_MS, &res[2], NULL),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0, 0, 900);
    assert_int_equal(ks_budget_settle_many(store_of(state), 3, res, actual,
                                           t0 + 1, errs),
                     KS_OK);
    assert_int_equal(errs[0], KS_OK);
    assert_int_equal(errs[2], KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 1, 350, 0);
    assert_state(state, "tenant", "acme", day0, t0 + 1, 350, 0);
    /* again, after the script cache is gone: counted once, and the
     * batch falls back to loading the script */
    assert_int_equal(raw_num("SCRIPT FLUSH"), 0);
    assert_int_equal(ks_budget_settle_many(store_of(state), 3, res, actual,
                                           t0 + 2, errs),
                     KS_OK);
    assert_state(state, "tier", "t", day0, t0 + 2, 350, 0);
}

static void budget_garbage_runtime_limit_fails_closed(void **state)
{
    struct ks_budget_reservation res;
    struct ks_budget_state st;

    assert_int_equal(raw_num("SET " PREFIX "limit:tier:t lots"), 0);
    assert_int_equal(
        reserve(state, "t", -1, "", -1, 100, t0, LONG_TTL_MS, &res, NULL),
        KS_ERR_RETRY);
    assert_int_equal(
        ks_budget_read(store_of(state), "tier", "t", day0, -1, t0, &st),
        KS_ERR_RETRY);
    assert_int_equal(raw_num("EXISTS %s", bkey("tier", "t", day0, "")), 0);
}

static void budget_redis_down_gives_retry(void **state)
{
    struct fixture *fx = fixture_new(free_port());
    struct ks_budget_reservation res = {0}, open = {
                                                .id = "h-1-1",
                                                .tier = "t",
                                                .amount_micro = 5,
                                            };
    struct ks_budget_state st;

    (void)state;
    assert_non_null(fx->rs);
    ks_strlcpy(open.day, day0, sizeof(open.day));
    for (int i = 0; i < 2; i++) { /* connect refused, then in backoff */
        assert_int_equal(ks_budget_reserve(fx->rs, "t", 1000, "acme", 1000, 1,
                                           t0, LONG_TTL_MS, &res, NULL),
                         KS_ERR_RETRY);
        assert_int_equal(ks_budget_settle(fx->rs, &open, 5, t0), KS_ERR_RETRY);
        assert_int_equal(
            ks_budget_read(fx->rs, "tier", "t", day0, 1000, t0, &st),
            KS_ERR_RETRY);
        assert_int_equal(ks_budget_set_limit(fx->rs, "tier", "t", 1),
                         KS_ERR_RETRY);
        assert_int_equal(ks_budget_add_spent(fx->rs, day0, "tier", "t", 1),
                         KS_ERR_RETRY);
        assert_int_equal(ks_budget_reset(fx->rs, "tier", "t", day0),
                         KS_ERR_RETRY);
    }
    fixture_destroy(fx);
}

/* ---- many processes against one limit ----------------------------------- */

#define N_CHILDREN   8
#define N_ROUNDS     300
#define SHARED_LIMIT 1000000 /* $1.00 */

struct child_report {
    int64_t spent;  /* sum of the actual costs settled */
    int64_t errors; /* anything but KS_OK or KS_ERR_BUDGET */
    int64_t granted, refused;
};

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One worker process: reserve up to 5000, settle a random part of it, and
 * abandon one reservation in ten (a crash: it expires after 20 ms). */
static void child_run(int wfd)
{
    struct fixture *fx = fixture_new(srv.port);
    struct child_report rep = {0};
    uint64_t rnd = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull | 1;
    int64_t start = ks_wall_ms();

    for (int i = 0; fx->rs && i < N_ROUNDS; i++) {
        struct ks_budget_reservation res;
        int64_t cost = 1 + (int64_t)(next_random(&rnd) % 5000);
        bool crash = next_random(&rnd) % 10 == 0;
        int64_t now = t0 + (ks_wall_ms() - start);
        enum ks_err err =
            ks_budget_reserve(fx->rs, "shared", SHARED_LIMIT, "", -1, cost, now,
                              crash ? 20 : LONG_TTL_MS, &res, NULL);

        if (err == KS_ERR_BUDGET) {
            rep.refused++;
        } else if (err != KS_OK) {
            rep.errors++;
        } else if (rep.granted++, !crash) {
            int64_t actual =
                (int64_t)(next_random(&rnd) % (uint64_t)(cost + 1));

            if (ks_budget_settle(fx->rs, &res, actual, now) == KS_OK) {
                rep.spent += actual;
            } else {
                rep.errors++;
            }
        }
    }
    if (!fx->rs) {
        rep.errors++;
    }
    fixture_destroy(fx);
    if (write(wfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep)) {
        _exit(2);
    }
    _exit(0); /* not exit(): the parent's cmocka and LSan state is not ours */
}

/* Polls spent and reserved until every child has exited; returns the
 * number of polls that saw spent + reserved above the limit. */
static int watch_children(const pid_t *pids, int *polls)
{
    int running = N_CHILDREN, bad = 0;
    const char *key = bkey("tier", "shared", day0, "");

    *polls = 0;
    while (running > 0) {
        redisReply *r = redisCommand(srv.c, "HMGET %s spent reserved", key);

        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            long long spent =
                r->element[0]->str ? strtoll(r->element[0]->str, NULL, 10) : 0;
            long long reserved =
                r->element[1]->str ? strtoll(r->element[1]->str, NULL, 10) : 0;

            bad += spent + reserved > SHARED_LIMIT || reserved < 0;
            (*polls)++;
        }
        if (r) {
            freeReplyObject(r);
        }
        running = 0;
        for (int i = 0; i < N_CHILDREN; i++) {
            running += pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == 0;
        }
    }
    return bad;
}

static void budget_concurrent_reservations_never_exceed_the_limit(void **state)
{
    pid_t pids[N_CHILDREN];
    int fds[N_CHILDREN][2], polls, bad;
    struct child_report total = {0}, rep;
    struct ks_budget_state st;

    fflush(NULL);
    for (int i = 0; i < N_CHILDREN; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[i][0]);
            child_run(fds[i][1]);
        }
        close(fds[i][1]);
    }
    bad = watch_children(pids, &polls);
    for (int i = 0; i < N_CHILDREN; i++) {
        ssize_t n = read(fds[i][0], &rep, sizeof(rep));

        close(fds[i][0]);
        assert_int_equal(n, sizeof(rep));
        total.spent += rep.spent;
        total.errors += rep.errors;
        total.granted += rep.granted;
        total.refused += rep.refused;
    }
    print_message("%d polls; %lld granted, %lld refused, spent %lld\n", polls,
                  (long long)total.granted, (long long)total.refused,
                  (long long)total.spent);
    assert_int_equal(bad, 0);
    assert_int_equal(total.errors, 0);
    assert_true(total.refused > 0); /* the limit was really reached */
    /* a minute on, every abandoned reservation has expired */
    assert_int_equal(ks_budget_read(store_of(state), "tier", "shared", day0,
                                    SHARED_LIMIT, t0 + 60000, &st),
                     KS_OK);
    assert_int_equal(st.reserved_micro, 0);
    assert_int_equal(st.spent_micro, total.spent);
    assert_true(st.spent_micro <= SHARED_LIMIT);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(budget_day_is_the_utc_date),
        T(budget_reserve_refuses_when_limit_reached),
        T(budget_reserve_checks_tenant_and_tier_atomically),
        T(budget_settle_moves_reserved_to_spent_and_releases_the_rest),
        T(budget_settle_twice_counts_once),
        T(budget_expired_reservation_is_swept_and_budget_usable_again),
        T(budget_late_settle_of_swept_reservation_still_counts_spend),
        T(budget_runtime_limit_overrides_config),
        T(budget_unlimited_budget_never_refuses),
        T(budget_day_keys_expire_two_days_after_their_day),
        T(budget_day_rollover_uses_a_fresh_budget),
        T(budget_reset_keeps_the_old_spend_in_reset_micro),
        T(budget_add_spent_adds),
        T(budget_reservation_ids_are_unique),
        T(budget_script_flush_falls_back_to_eval),
    T(budget_settle_many_settles_each_once_in_one_batch),
        T(budget_garbage_runtime_limit_fails_closed),
        T(budget_redis_down_gives_retry),
        T(budget_concurrent_reservations_never_exceed_the_limit),
    };
#undef T
    return cmocka_run_group_tests_name("budget", tests, group_setup,
                                       group_teardown);
}
