/*
 * redis_server.c - the throwaway redis-server of test_budget_* and
 * test_ratelimit (see redis_server.h).
 *
 * Invariant: srv->pid > 0 exactly while a server process of ours may be
 * alive, srv->dir[0] exactly while the directory exists; stop undoes what
 * is set and clears it, so it is safe after any partial start.
 */
#include "redis_server.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>

#include "base/util.h"

#include "base/banned.h"

int redis_server_free_port(void)
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

/* In the child: becomes the server (or exits 127). */
static void spawn(const struct redis_server *srv)
{
    char port[16], log[300];
    int fd;

    snprintf(port, sizeof(port), "%d", srv->port);
    snprintf(log, sizeof(log), "%s/redis.log", srv->dir);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    execlp("redis-server", "redis-server", "--port", port, "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", srv->dir,
           "--daemonize", "no", (char *)NULL);
    _exit(127);
}

/* Waits up to 10 s for PING; false when the server died or never came. */
static bool wait_for_ping(struct redis_server *srv)
{
    struct timeval tv = {1, 0};
    int status;

    for (int i = 0; i < 500; i++) {
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            fprintf(stderr,
                    "test_%s: redis-server exited at once (status %d%s); "
                    "see %s/redis.log\n",
                    srv->name, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                    WIFEXITED(status) && WEXITSTATUS(status) == 127
                        ? ": not installed?"
                        : "",
                    srv->dir);
            srv->pid = -1;
            return false;
        }
        srv->c = redisConnectWithTimeout("127.0.0.1", srv->port, tv);
        if (srv->c && !srv->c->err) {
            redisReply *r = redisCommand(srv->c, "PING");

            if (r && r->type == REDIS_REPLY_STATUS) {
                freeReplyObject(r);
                return true;
            }
            if (r) {
                freeReplyObject(r);
            }
        }
        if (srv->c) {
            redisFree(srv->c);
            srv->c = NULL;
        }
        usleep(20 * 1000);
    }
    fprintf(stderr, "test_%s: redis-server did not answer PING\n", srv->name);
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

void redis_server_stop(struct redis_server *srv)
{
    if (srv->c) {
        redisFree(srv->c);
        srv->c = NULL;
    }
    if (srv->pid > 0) {
        int status;

        kill(srv->pid, SIGTERM);
        for (int i = 0; i < 250; i++) {
            if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
                srv->pid = -1;
                break;
            }
            usleep(20 * 1000);
        }
        if (srv->pid > 0) {
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &status, 0);
            srv->pid = -1;
        }
    }
    if (srv->dir[0]) {
        remove_dir(srv->dir);
        srv->dir[0] = '\0';
    }
}

int redis_server_group_teardown(void **state)
{
    redis_server_stop(*state);
    return 0;
}

/* <dir>/kascade.json: the least config that loads (one tier); the
 * fixtures override the redis keys. */
static bool write_config(struct redis_server *srv)
{
    FILE *f;

    snprintf(srv->config, sizeof(srv->config), "%s/kascade.json", srv->dir);
    f = fopen(srv->config, "w");
    if (!f) {
        return false;
    }
    fputs("{\"kafka\": {\"bootstrap.servers\": \"127.0.0.1:9092\"},\n"
          " \"tiers\": [{\"name\": \"only\", \"providers\": [{\"base_url\":"
          " \"http://127.0.0.1:8080/v1\", \"model\": \"m\"}]}]}\n",
          f);
    return fclose(f) == 0;
}

bool redis_server_start(struct redis_server *srv, const char *name)
{
    const char *tmp = getenv("TMPDIR");

    srv->name = name;
    snprintf(srv->dir, sizeof(srv->dir), "%s/kascade-%s-XXXXXX",
             tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(srv->dir) || !write_config(srv)) {
        fprintf(stderr, "test_%s: cannot make a temp dir or config\n", name);
        srv->dir[0] = '\0';
        return false;
    }
    srv->port = redis_server_free_port();
    fflush(NULL);
    srv->pid = fork();
    if (srv->pid == 0) {
        spawn(srv);
    }
    if (srv->pid < 0 || !wait_for_ping(srv)) {
        fprintf(stderr,
                "test_%s: SKIPPED for lack of a redis-server "
                "(install redis-server 7 and put it on PATH): "
                "FAILING, not passing\n",
                name);
        redis_server_stop(srv);
        return false;
    }
    return true;
}

long long redis_server_num(struct redis_server *srv, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = 0;

    va_start(ap, fmt);
    r = redisvCommand(srv->c, fmt, ap);
    va_end(ap);
    if (!r) {
        fail_msg("redis: %s", srv->c->errstr);
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

struct redis_fixture *redis_fixture_new(const struct redis_server *srv,
                                        int port,
                                        const char *prefix)
{
    struct redis_fixture *fx = ks_xcalloc(1, sizeof(*fx));
    char url[64], pfx[128], errstr[512];
    const char *ov[3] = {url, pfx, "redis.timeout_ms=2000"};

    snprintf(url, sizeof(url), "redis.url=redis://127.0.0.1:%d", port);
    snprintf(pfx, sizeof(pfx), "redis.prefix=%s", prefix);
    fx->cfg = ks_config_load(srv->config, ov, 3, errstr, sizeof(errstr));
    if (fx->cfg) {
        fx->rs = ks_store_new(fx->cfg, errstr, sizeof(errstr));
    }
    if (!fx->rs) {
        fprintf(stderr, "test_%s: %s\n", srv->name, errstr);
    }
    return fx;
}

void redis_fixture_destroy(struct redis_fixture *fx)
{
    if (fx) {
        ks_store_destroy(fx->rs);
        ks_config_destroy(fx->cfg);
        free(fx);
    }
}

int redis_fixture_setup(struct redis_server *srv,
                        const char *prefix,
                        void **state)
{
    redisReply *r = redisCommand(srv->c, "FLUSHALL");
    struct redis_fixture *fx;

    if (!r) {
        return -1;
    }
    freeReplyObject(r);
    fx = redis_fixture_new(srv, srv->port, prefix);
    *state = fx;
    return fx->rs ? 0 : -1;
}

int redis_fixture_teardown(void **state)
{
    redis_fixture_destroy(*state);
    *state = NULL;
    return 0;
}

struct ks_store *redis_fixture_store(void **state)
{
    return ((struct redis_fixture *)*state)->rs;
}
