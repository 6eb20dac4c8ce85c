/*
 * test_metrics_http.c - the registry's real HTTP server: /metrics and
 * /healthz answered on a free local port and read with plain sockets,
 * 404 and 405, refused hosts and ports in use, and destroy stopping the
 * server. The per-test registry is metrics_fixture.h's.
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/metrics.h"
#include "base/util.h"
#include "metrics_fixture.h"

#include "base/banned.h"

/* ---- HTTP --------------------------------------------------------------- */

struct http_reply {
    int status;
    char *head; /* status line and headers */
    char *body;
};

static void http_reply_fini(struct http_reply *r)
{
    free(r->head);
    free(r->body);
}

/* A port nobody listens on right now: bind :0, read it, close. */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    close(fd);
    assert_true(port > 0);
    return port;
}

static int connect_local(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return -1;
    }
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends "METHOD path HTTP/1.0" and reads the reply to EOF. Returns 0, or
 * -1 when the connection fails. */
static int http_request(int port,
                        const char *method,
                        const char *path,
                        struct http_reply *r)
{
    char req[256];
    char chunk[4096];
    struct ks_buf buf;
    const char *sep;
    ssize_t n;
    int len, fd = connect_local(port);

    memset(r, 0, sizeof(*r));
    if (fd < 0) {
        return -1;
    }
    len = snprintf(req, sizeof(req),
                   "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (write(fd, req, (size_t)len) != len) {
        close(fd);
        return -1;
    }
    ks_buf_init(&buf);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        ks_buf_append(&buf, chunk, (size_t)n);
    }
    close(fd);
    if (sscanf(buf.data, "HTTP/1.%*d %d", &r->status) != 1 ||
        !(sep = strstr(buf.data, "\r\n\r\n"))) {
        fprintf(stderr, "bad HTTP reply: %s\n", buf.data);
        ks_buf_fini(&buf);
        return -1;
    }
    r->head = ks_xstrndup(buf.data, (size_t)(sep - buf.data));
    r->body = ks_xstrdup(sep + 4);
    ks_buf_fini(&buf);
    return 0;
}

/* Serves m on a free port; retries when another process took it first. */
static int serve(struct ks_metrics *m)
{
    char errstr[256];

    for (int attempt = 0; attempt < 5; attempt++) {
        int port = free_port();

        if (ks_metrics_serve(m, "127.0.0.1", port, errstr, sizeof(errstr)) ==
            0) {
            return port;
        }
    }
    fail_msg("cannot serve: %s", errstr);
    return -1;
}

static void assert_get(int port, const char *path, int status, const char *body)
{
    struct http_reply r;

    if (http_request(port, "GET", path, &r) != 0) {
        fail_msg("GET %s failed", path);
    }
    if (r.status != status || strcmp(r.body, body) != 0) {
        fprintf(stderr, "GET %s -> %d\n%s\n", path, r.status, r.body);
        http_reply_fini(&r);
        fail_msg("expected %d with the body above to be \"%s\"", status, body);
    }
    http_reply_fini(&r);
}

static void metrics_serves_exposition_text_over_http(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *routed =
        ks_metrics_family(m, "kascade_tasks_routed_total", "Tasks routed.",
                          KS_METRIC_COUNTER, "tier,reason");
    struct http_reply r;
    int port;

    ks_metrics_add(routed, 3, "local", "task_type");
    port = serve(m);
    assert_int_equal(http_request(port, "GET", "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(
        strstr(r.head, "\r\nContent-Type: text/plain; version=0.0.4"));
    assert_string_equal(
        r.body,
        "# HELP kascade_tasks_routed_total Tasks routed.\n"
        "# TYPE kascade_tasks_routed_total counter\n"
        "kascade_tasks_routed_total{tier=\"local\",reason=\"task_type\"} 3\n");
    http_reply_fini(&r);
}

static void metrics_http_sees_updates_after_serving_starts(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *g =
        ks_metrics_family(m, "g", "G.", KS_METRIC_GAUGE, "");
    int port = serve(m);

    assert_get(port, "/metrics", 200, "# HELP g G.\n# TYPE g gauge\n");
    ks_metrics_set(g, 7);
    assert_get(port, "/metrics", 200, "# HELP g G.\n# TYPE g gauge\ng 7\n");
}

static void metrics_healthz_answers_ok_by_default(void **state)
{
    int port = serve(*state);

    assert_get(port, "/healthz", 200, "ok\n");
}

static void metrics_healthz_answers_503_with_the_reason(void **state)
{
    struct ks_metrics *m = *state;
    int port = serve(m);

    ks_metrics_set_health(m, false, "redis down");
    assert_get(port, "/healthz", 503, "redis down\n");
    /* /metrics keeps answering while unhealthy. */
    assert_get(port, "/metrics", 200, "");
    ks_metrics_set_health(m, true, NULL);
    assert_get(port, "/healthz", 200, "ok\n");
}

static void metrics_unknown_path_is_404(void **state)
{
    int port = serve(*state);

    assert_get(port, "/", 404, "not found\n");
    assert_get(port, "/metrics/extra", 404, "not found\n");
}

static void metrics_non_get_is_405(void **state)
{
    struct http_reply r;
    int port = serve(*state);

    assert_int_equal(http_request(port, "DELETE", "/metrics", &r), 0);
    assert_int_equal(r.status, 405);
    http_reply_fini(&r);
}

static void metrics_port_zero_serves_nothing(void **state)
{
    char errstr[128] = "";

    assert_int_equal(
        ks_metrics_serve(*state, "127.0.0.1", 0, errstr, sizeof(errstr)), 0);
    assert_string_equal(errstr, "");
}

static void metrics_serve_refuses_a_host_that_is_not_ipv4(void **state)
{
    char errstr[128] = "";

    assert_int_equal(ks_metrics_serve(*state, "localhost", free_port(), errstr,
                                      sizeof(errstr)),
                     -1);
    assert_non_null(strstr(errstr, "'localhost' is not an IPv4 address"));
}

static void metrics_serve_reports_a_port_in_use(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    char errstr[128] = "";
    char want[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port, r;

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    r = ks_metrics_serve(*state, "127.0.0.1", port, errstr, sizeof(errstr));
    close(fd);
    assert_int_equal(r, -1);
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    assert_non_null(strstr(errstr, want));
}

static void metrics_destroy_stops_the_server(void **state)
{
    struct ks_metrics *m = *state;
    int port = serve(m);
    int fd;

    assert_get(port, "/healthz", 200, "ok\n");
    ks_metrics_destroy(m);
    *state = NULL;
    fd = connect_local(port);
    if (fd >= 0) {
        close(fd);
        fail_msg("port %d still accepts connections", port);
    }
    assert_int_equal(errno, ECONNREFUSED);
}

static void metrics_destroy_accepts_null(void **state)
{
    (void)state;
    ks_metrics_destroy(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, metrics_setup, metrics_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(metrics_serves_exposition_text_over_http),
        T(metrics_http_sees_updates_after_serving_starts),
        T(metrics_healthz_answers_ok_by_default),
        T(metrics_healthz_answers_503_with_the_reason),
        T(metrics_unknown_path_is_404),
        T(metrics_non_get_is_405),
        T(metrics_port_zero_serves_nothing),
        T(metrics_serve_refuses_a_host_that_is_not_ipv4),
        T(metrics_serve_reports_a_port_in_use),
        T(metrics_destroy_stops_the_server),
        cmocka_unit_test(metrics_destroy_accepts_null),
    };

    return cmocka_run_group_tests_name("metrics_http", tests, NULL, NULL);
}
