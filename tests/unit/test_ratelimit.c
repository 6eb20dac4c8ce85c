/*
 * test_ratelimit.c - fleet-wide rpm/tpm limits against a real
 * redis-server: a sliding one-minute window that admits up to rpm calls
 * and refuses the next with the exact wait, counts tokens against tpm,
 * lets calls in again as older ones leave the window, keeps tiers and
 * providers apart, expires its keys, holds under many processes at once,
 * and gives KS_ERR_RETRY when Redis is down.
 *
 * The server is started as in test_budget.c: `redis-server` from PATH on
 * a free port in a temporary directory, killed by the group teardown (and
 * with this process, PR_SET_PDEATHSIG). Without redis-server the group
 * setup fails with a message: a missing server is not a pass. Every test
 * starts from FLUSHALL with its own store (prefix "kt:"). Times are made
 * up (t0 plus offsets), except in the test of the server's clock.
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

#include "config.h"
#include "log.h"
#include "ratelimit.h"
#include "store.h"
#include "util.h"

#include "banned.h"

#define PREFIX "kt:"
#define WIN    KS_RATELIMIT_WINDOW_MS

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

static int64_t t0; /* made-up times start here */

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
            fprintf(
                stderr,
                "test_ratelimit: redis-server exited at once (status %d%s); "
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
    fprintf(stderr, "test_ratelimit: redis-server did not answer PING\n");
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
    t0 = ks_wall_ms();
    ks_log_set_level("error");
    snprintf(srv.dir, sizeof(srv.dir), "%s/kascade-ratelimit-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(srv.dir) || !write_config()) {
        fprintf(stderr, "test_ratelimit: cannot make a temp dir or config\n");
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
        fprintf(stderr, "test_ratelimit: SKIPPED for lack of a redis-server "
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
        fprintf(stderr, "test_ratelimit: %s\n", errstr);
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

/* One admission; fails the test on a Redis error. Returns admitted. */
static bool admit(void **state,
                  const char *tier,
                  int prov,
                  int64_t rpm,
                  int64_t tpm,
                  int64_t tokens,
                  int64_t now,
                  int64_t *wait)
{
    bool ok = false;
    int64_t w = -1;

    assert_int_equal(ks_ratelimit_admit(store_of(state), tier, prov, rpm, tpm,
                                        tokens, now, &ok, &w),
                     KS_OK);
    if (wait) {
        *wait = w;
    }
    if (ok) {
        assert_int_equal(w, 0);
    } else {
        assert_true(w > 0);
    }
    return ok;
}

static void ratelimit_admits_up_to_rpm_then_refuses_with_the_wait(void **state)
{
    int64_t wait;

    for (int i = 0; i < 5; i++) {
        assert_true(admit(state, "mid", 0, 5, 0, 10, t0 + i * 100, NULL));
    }
    assert_false(admit(state, "mid", 0, 5, 0, 10, t0 + 1000, &wait));
    /* The oldest call (t0) leaves the window at t0 + 60 s. */
    assert_int_equal(wait, t0 + WIN - (t0 + 1000));
    assert_false(admit(state, "mid", 0, 5, 0, 10, t0 + WIN - 1, &wait));
    assert_int_equal(wait, 1);
    /* A refusal records nothing: still 5 calls in the window. */
    assert_int_equal(raw_num("ZCARD " PREFIX "rate:mid:0"), 5);
}

static void ratelimit_window_slides_as_old_calls_leave(void **state)
{
    int64_t wait;

    for (int i = 0; i < 3; i++) {
        assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + i * 1000, NULL));
    }
    assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + WIN, NULL));
    assert_false(admit(state, "mid", 0, 3, 0, 1, t0 + WIN, &wait));
    assert_int_equal(wait, 1000); /* the second call leaves next */
    assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + WIN + 1000, NULL));
    assert_true(admit(state, "mid", 0, 3, 0, 1, t0 + WIN + 2000, NULL));
    /* No 60 s interval ever held more than rpm calls. */
    assert_false(admit(state, "mid", 0, 3, 0, 1, t0 + WIN + 2001, &wait));
    assert_int_equal(raw_num("ZCARD " PREFIX "rate:mid:0"), 3);
}

static void ratelimit_counts_tokens_against_tpm(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 0, 1000, 400, t0, NULL));
    assert_true(admit(state, "mid", 0, 0, 1000, 400, t0 + 10, NULL));
    assert_false(admit(state, "mid", 0, 0, 1000, 300, t0 + 20, &wait));
    /* 100 tokens too many: the first call's 400 must leave first. */
    assert_int_equal(wait, t0 + WIN - (t0 + 20));
    assert_true(admit(state, "mid", 0, 0, 1000, 200, t0 + 30, NULL));
    assert_int_equal(raw_num("GET " PREFIX "rate:mid:0:sum"), 1000);
    assert_false(admit(state, "mid", 0, 0, 1000, 1, t0 + 40, &wait));
    assert_true(admit(state, "mid", 0, 0, 1000, 300, t0 + WIN, NULL));
    assert_int_equal(raw_num("GET " PREFIX "rate:mid:0:sum"), 900);
}

static void ratelimit_call_over_tpm_waits_for_an_empty_window(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 0, 100, 10, t0, NULL));
    assert_false(admit(state, "mid", 0, 0, 100, 500, t0 + 1, &wait));
    assert_int_equal(wait, WIN - 1);
    assert_true(admit(state, "mid", 0, 0, 100, 500, t0 + WIN, NULL));
    assert_false(admit(state, "mid", 0, 0, 100, 1, t0 + WIN + 1, &wait));
}

static void ratelimit_rpm_and_tpm_both_apply(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 2, 100, 90, t0, NULL));
    /* rpm has room, tpm does not. */
    assert_false(admit(state, "mid", 0, 2, 100, 20, t0 + 5, &wait));
    assert_int_equal(wait, WIN - 5);
    assert_true(admit(state, "mid", 0, 2, 100, 10, t0 + 6, NULL));
    /* tpm is full and so is rpm. */
    assert_false(admit(state, "mid", 0, 2, 100, 0, t0 + 7, &wait));
    assert_int_equal(wait, WIN - 7);
}

static void ratelimit_keeps_tiers_and_providers_apart(void **state)
{
    assert_true(admit(state, "mid", 0, 1, 0, 1, t0, NULL));
    assert_true(admit(state, "mid", 1, 1, 0, 1, t0, NULL));
    assert_true(admit(state, "frontier", 0, 1, 0, 1, t0, NULL));
    assert_false(admit(state, "mid", 0, 1, 0, 1, t0 + 1, NULL));
    assert_false(admit(state, "mid", 1, 1, 0, 1, t0 + 1, NULL));
}

static void ratelimit_keys_expire_after_two_windows(void **state)
{
    long long ttl;

    assert_true(admit(state, "mid", 0, 10, 100, 1, t0, NULL));
    ttl = raw_num("PTTL " PREFIX "rate:mid:0");
    assert_true(ttl > 0 && ttl <= 2 * WIN);
    ttl = raw_num("PTTL " PREFIX "rate:mid:0:tok");
    assert_true(ttl > 0 && ttl <= 2 * WIN);
    ttl = raw_num("PTTL " PREFIX "rate:mid:0:sum");
    assert_true(ttl > 0 && ttl <= 2 * WIN);
    /* Calls that left the window are swept from the set and the hash. */
    assert_true(admit(state, "mid", 0, 10, 100, 1, t0 + WIN, NULL));
    assert_int_equal(raw_num("ZCARD " PREFIX "rate:mid:0"), 1);
    assert_int_equal(raw_num("HLEN " PREFIX "rate:mid:0:tok"), 1);
}

static void ratelimit_zero_now_uses_the_server_clock(void **state)
{
    int64_t wait;

    assert_true(admit(state, "mid", 0, 2, 0, 1, 0, NULL));
    assert_true(admit(state, "mid", 0, 2, 0, 1, 0, NULL));
    assert_false(admit(state, "mid", 0, 2, 0, 1, 0, &wait));
    assert_true(wait > WIN - 5000 && wait <= WIN);
}

static void ratelimit_script_flush_falls_back_to_eval(void **state)
{
    redisReply *r;

    assert_true(admit(state, "mid", 0, 2, 0, 1, t0, NULL));
    r = redisCommand(srv.c, "SCRIPT FLUSH");
    assert_non_null(r);
    freeReplyObject(r);
    assert_true(admit(state, "mid", 0, 2, 0, 1, t0 + 1, NULL));
    assert_false(admit(state, "mid", 0, 2, 0, 1, t0 + 2, NULL));
}

static void ratelimit_rejects_bad_arguments(void **state)
{
    bool ok = true;
    int64_t wait = 5;

    assert_int_equal(
        ks_ratelimit_admit(store_of(state), "", 0, 1, 0, 1, t0, &ok, &wait),
        KS_ERR_INVALID);
    assert_false(ok);
    assert_int_equal(
        ks_ratelimit_admit(store_of(state), "mid", -1, 1, 0, 1, t0, &ok, &wait),
        KS_ERR_INVALID);
    assert_int_equal(
        ks_ratelimit_admit(store_of(state), "mid", 0, -1, 0, 1, t0, &ok, &wait),
        KS_ERR_INVALID);
}

static void ratelimit_redis_down_gives_retry(void **state)
{
    struct fixture *fx = fixture_new(free_port());
    bool ok = true;
    int64_t wait = 0;

    (void)state;
    assert_non_null(fx->rs);
    assert_int_equal(
        ks_ratelimit_admit(fx->rs, "mid", 0, 10, 0, 1, t0, &ok, &wait),
        KS_ERR_RETRY);
    assert_false(ok);
    fixture_destroy(fx);
}

#define PROCS      4
#define TRIES      40
#define SHARED_RPM 50

/* Many processes at once never get more than rpm calls admitted. */
static void ratelimit_concurrent_processes_never_exceed_rpm(void **state)
{
    pid_t pids[PROCS];
    int total = 0;

    (void)state;
    fflush(NULL);
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct fixture *fx = fixture_new(srv.port);
            int n = 0;

            for (int i = 0; i < TRIES && fx->rs; i++) {
                bool ok = false;
                int64_t wait;

                if (ks_ratelimit_admit(fx->rs, "mid", 0, SHARED_RPM, 0, 1,
                                       t0 + i, &ok, &wait) != KS_OK) {
                    _exit(255);
                }
                n += ok;
            }
            _exit(fx->rs ? n : 255);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;

        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_true(WEXITSTATUS(status) != 255);
        total += WEXITSTATUS(status);
    }
    assert_int_equal(total, SHARED_RPM);
    assert_int_equal(raw_num("ZCARD " PREFIX "rate:mid:0"), SHARED_RPM);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(ratelimit_admits_up_to_rpm_then_refuses_with_the_wait),
        T(ratelimit_window_slides_as_old_calls_leave),
        T(ratelimit_counts_tokens_against_tpm),
        T(ratelimit_call_over_tpm_waits_for_an_empty_window),
        T(ratelimit_rpm_and_tpm_both_apply),
        T(ratelimit_keeps_tiers_and_providers_apart),
        T(ratelimit_keys_expire_after_two_windows),
        T(ratelimit_zero_now_uses_the_server_clock),
        T(ratelimit_script_flush_falls_back_to_eval),
        T(ratelimit_rejects_bad_arguments),
        T(ratelimit_redis_down_gives_retry),
        T(ratelimit_concurrent_processes_never_exceed_rpm),
    };
#undef T
    return cmocka_run_group_tests_name("ratelimit", tests, group_setup,
                                       group_teardown);
}
