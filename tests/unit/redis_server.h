/*
 * redis_server.h - a throwaway real redis-server for the unit tests that
 * need one (test_budget_*, test_ratelimit, ...), and the cmocka fixture of a
 * config and store connected to it.
 *
 * redis_server_start() starts `redis-server` from PATH on a free port of
 * 127.0.0.1 in a new temporary directory (no persistence, log in
 * <dir>/redis.log), waits for PING, and writes a minimal kascade.json
 * there for the fixtures. The server dies with the test process
 * (PR_SET_PDEATHSIG) if the binary crashes; redis_server_stop() kills it
 * and removes the directory. Without redis-server, start fails with a
 * message: a missing server is not a pass. Single-threaded: call from the
 * test's main thread (group setup and teardown); forked children may use
 * the fields read-only.
 */
#ifndef KASCADE_TESTS_REDIS_SERVER_H
#define KASCADE_TESTS_REDIS_SERVER_H

#include <stdbool.h>

#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "config/config.h"
#include "redis/store.h"

/* One server; embed it with {.pid = -1}. Owned by the caller; its
 * fields are filled by redis_server_start() and read by the tests. */
struct redis_server {
    const char *name; /* "budget": messages say "test_budget: ..." */
    pid_t pid;        /* the server process, -1 when none */
    int port;
    char dir[256];    /* the temporary directory, "" when none */
    char config[300]; /* <dir>/kascade.json */
    redisContext *c;  /* owned: for FLUSHALL and for looking at keys */
};

/* Starts the server of test "name" (borrowed; a string literal). Returns
 * true when it answers PING; false with a message on stderr, and
 * everything already started stopped again. */
bool redis_server_start(struct redis_server *srv, const char *name);

/* Kills the server (SIGTERM, then SIGKILL after 5 s), frees srv->c and
 * removes the directory. Safe to call twice and after a failed start. */
void redis_server_stop(struct redis_server *srv);

/* A cmocka group teardown: redis_server_stop() of *state, the server the
 * group setup put there (borrowed). Returns 0. */
int redis_server_group_teardown(void **state);

/* A local TCP port nobody listens on right now (-1 on failure): for a
 * store that must find Redis down. */
int redis_server_free_port(void);

/* A number from redis through srv->c (an integer reply, or a string read
 * as one; nil and a missing field are 0). Fails the running cmocka test
 * on a connection or error reply. */
long long redis_server_num(struct redis_server *srv, const char *fmt, ...);

/* What each test gets in *state: both owned by the fixture. */
struct redis_fixture {
    struct ks_config *cfg;
    struct ks_store *rs; /* NULL when the store could not be made */
};

/* A config (srv->config with redis.url on port, redis.prefix=prefix and
 * redis.timeout_ms=2000) and a store for it; caller owns the result and
 * frees it with redis_fixture_destroy(). On failure fx->rs is NULL and
 * the reason is on stderr. prefix is borrowed for the call. */
struct redis_fixture *redis_fixture_new(const struct redis_server *srv,
                                        int port,
                                        const char *prefix);

/* Accepts NULL. */
void redis_fixture_destroy(struct redis_fixture *fx);

/* The per-test setup: FLUSHALL, then a fixture on srv's port into
 * *state. Returns 0, or -1 when Redis or the store failed. */
int redis_fixture_setup(struct redis_server *srv,
                        const char *prefix,
                        void **state);

/* A cmocka per-test teardown: destroys the fixture in *state and clears
 * it. Returns 0. */
int redis_fixture_teardown(void **state);

/* The store of the fixture in *state; borrowed, valid until the test's
 * teardown. */
struct ks_store *redis_fixture_store(void **state);

#endif
