/*
 * test_metrics.c - the Prometheus registry: the exact exposition text of
 * counters, gauges and histograms (cumulative buckets, _sum, _count,
 * escaped label values), and the real HTTP server answering /metrics and
 * /healthz on a free local port, read with plain sockets.
 */
#include <errno.h>
#include <math.h>
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
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/metrics.h"
#include "base/util.h"

#include "base/banned.h"

static int setup(void **state)
{
    *state = ks_metrics_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    ks_metrics_destroy(*state);
    return 0;
}

/* Renders m and compares the whole text. */
static void assert_render(struct ks_metrics *m, const char *want)
{
    char *got = ks_metrics_render(m);

    assert_non_null(got);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "--- got:\n%s--- want:\n%s---\n", got, want);
        free(got);
        fail_msg("rendered text differs");
    }
    free(got);
}

/* ---- rendering ---------------------------------------------------------- */

static void metrics_empty_registry_renders_nothing(void **state)
{
    assert_render(*state, "");
}

static void metrics_family_without_series_renders_help_and_type(void **state)
{
    struct ks_metrics *m = *state;

    ks_metrics_family(m, "kascade_dlq_total", "Tasks sent to the DLQ.",
                      KS_METRIC_COUNTER, "error");
    assert_render(m, "# HELP kascade_dlq_total Tasks sent to the DLQ.\n"
                     "# TYPE kascade_dlq_total counter\n");
}

static void metrics_counter_sums_by_label_values(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *routed = ks_metrics_family(
        m, "kascade_tasks_routed_total", "Tasks routed, by tier and reason.",
        KS_METRIC_COUNTER, "tier,reason");

    ks_metrics_add(routed, 1, "local", "task_type");
    ks_metrics_add(routed, 1, "mid", "default_tier");
    ks_metrics_add(routed, 1, "local", "task_type");
    ks_metrics_add(routed, 1, "local", "min_tier");
    ks_metrics_add(routed, 1, "local", "task_type");
    ks_metrics_add(routed, 4, "mid", "default_tier");
    assert_render(
        m, "# HELP kascade_tasks_routed_total Tasks routed, by tier and "
           "reason.\n"
           "# TYPE kascade_tasks_routed_total counter\n"
           "kascade_tasks_routed_total{tier=\"local\",reason=\"task_type\"} 3\n"
           "kascade_tasks_routed_total{tier=\"mid\",reason=\"default_tier\"} "
           "5\n"
           "kascade_tasks_routed_total{tier=\"local\",reason=\"min_tier\"} "
           "1\n");
}

static void metrics_closed_label_counts_values_outside_its_set_as_other(
    void **state)
{
    static const char *const reasons[] = {"low_confidence", "escalate_flag"};
    struct ks_metrics *m = *state;
    struct ks_metric_family *esc =
        ks_metrics_family(m, "kascade_escalations_total", "Escalations.",
                          KS_METRIC_COUNTER, "from_tier,reason");
    char reason[64];

    ks_metrics_label_closed(esc, "reason", reasons, 2);
    ks_metrics_add(esc, 1, "local", "low_confidence");
    /* free text from a message: one series however many values */
    for (int i = 0; i < 1000; i++) {
        snprintf(reason, sizeof(reason), "ignore previous instructions %d", i);
        ks_metrics_add(esc, 1, "local", reason);
    }
    ks_metrics_add(esc, 1, "local", "escalate_flag");
    ks_metrics_add(esc, 1, "local", NULL);
    assert_render(m, "# HELP kascade_escalations_total Escalations.\n"
                     "# TYPE kascade_escalations_total counter\n"
                     "kascade_escalations_total{from_tier=\"local\","
                     "reason=\"low_confidence\"} 1\n"
                     "kascade_escalations_total{from_tier=\"local\","
                     "reason=\"other\"} 1001\n"
                     "kascade_escalations_total{from_tier=\"local\","
                     "reason=\"escalate_flag\"} 1\n");
}

static void metrics_closed_label_set_can_be_replaced(void **state)
{
    static const char *const a[] = {"local"};
    static const char *const b[] = {"mid"};
    struct ks_metrics *m = *state;
    struct ks_metric_family *f = ks_metrics_family(m, "kascade_x_total", "X.",
                                                   KS_METRIC_COUNTER, "tier");

    ks_metrics_label_closed(f, "tier", a, 1);
    ks_metrics_label_closed(f, "tier", b, 1);
    ks_metrics_add(f, 1, "local");
    ks_metrics_add(f, 1, "mid");
    ks_metrics_add(f, 1, "other");
    assert_render(m, "# HELP kascade_x_total X.\n"
                     "# TYPE kascade_x_total counter\n"
                     "kascade_x_total{tier=\"other\"} 2\n"
                     "kascade_x_total{tier=\"mid\"} 1\n");
}

static void metrics_counter_without_labels_has_no_braces(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *f =
        ks_metrics_family(m, "kascade_redeliveries_total", "Redelivered tasks.",
                          KS_METRIC_COUNTER, "");

    ks_metrics_add(f, 1);
    ks_metrics_add(f, 1);
    assert_render(m, "# HELP kascade_redeliveries_total Redelivered tasks.\n"
                     "# TYPE kascade_redeliveries_total counter\n"
                     "kascade_redeliveries_total 2\n");
}

static void metrics_families_render_in_registration_order(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *b =
        ks_metrics_family(m, "b_total", "B.", KS_METRIC_COUNTER, "");
    struct ks_metric_family *a =
        ks_metrics_family(m, "a_total", "A.", KS_METRIC_COUNTER, "");

    ks_metrics_add(a, 1);
    ks_metrics_add(b, 2);
    assert_render(m, "# HELP b_total B.\n# TYPE b_total counter\nb_total 2\n"
                     "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n");
}

static void metrics_gauge_set_replaces_the_value(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *inflight = ks_metrics_family(
        m, "kascade_inflight", "Calls in flight.", KS_METRIC_GAUGE, "tier");

    ks_metrics_set(inflight, 12, "mid");
    ks_metrics_set(inflight, 3, "local");
    ks_metrics_set(inflight, 2.5, "mid");
    ks_metrics_add(inflight, -1, "local");
    assert_render(m, "# HELP kascade_inflight Calls in flight.\n"
                     "# TYPE kascade_inflight gauge\n"
                     "kascade_inflight{tier=\"mid\"} 2.5\n"
                     "kascade_inflight{tier=\"local\"} 2\n");
}

static void metrics_help_text_is_escaped(void **state)
{
    struct ks_metrics *m = *state;

    ks_metrics_family(m, "x", "a\\b\nc", KS_METRIC_COUNTER, "");
    assert_render(m, "# HELP x a\\\\b\\nc\n# TYPE x counter\n");
}

static void metrics_infinite_values_use_prometheus_spelling(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *g =
        ks_metrics_family(m, "g", "G.", KS_METRIC_GAUGE, "k");

    ks_metrics_set(g, INFINITY, "a");
    ks_metrics_set(g, -INFINITY, "b");
    ks_metrics_set(g, NAN, "c");
    assert_render(m, "# HELP g G.\n# TYPE g gauge\ng{k=\"a\"} +Inf\n"
                     "g{k=\"b\"} -Inf\ng{k=\"c\"} NaN\n");
}

static void metrics_gauge_renders_fractional_usd(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *spent = ks_metrics_family(
        m, "kascade_budget_spent_usd", "Spent today.", KS_METRIC_GAUGE, "tier");

    ks_metrics_set(spent, 0.125, "frontier");
    ks_metrics_set(spent, 0, "mid");
    assert_render(m, "# HELP kascade_budget_spent_usd Spent today.\n"
                     "# TYPE kascade_budget_spent_usd gauge\n"
                     "kascade_budget_spent_usd{tier=\"frontier\"} 0.125\n"
                     "kascade_budget_spent_usd{tier=\"mid\"} 0\n");
}

static void metrics_histogram_buckets_are_cumulative(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *h =
        ks_metrics_family(m, "kascade_request_duration_seconds",
                          "Model call latency.", KS_METRIC_HISTOGRAM, "tier");

    /* Binary fractions keep _sum exact. 0.5 sits on a bound: le is <=. */
    ks_metrics_add(h, 0.00390625, "mid");
    ks_metrics_add(h, 0.015625, "mid");
    ks_metrics_add(h, 0.015625, "mid");
    ks_metrics_add(h, 0.5, "mid");
    ks_metrics_add(h, 64, "mid");
    assert_render(
        m,
        "# HELP kascade_request_duration_seconds Model call latency.\n"
        "# TYPE kascade_request_duration_seconds histogram\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"0.005\"} "
        "1\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"0.01\"} 1\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"0.025\"} "
        "3\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"0.05\"} 3\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"0.1\"} 3\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"0.25\"} 3\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"0.5\"} 4\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"1\"} 4\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"2.5\"} 4\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"5\"} 4\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"10\"} 4\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"30\"} 4\n"
        "kascade_request_duration_seconds_bucket{tier=\"mid\",le=\"+Inf\"} "
        "5\n"
        "kascade_request_duration_seconds_sum{tier=\"mid\"} 64.53515625\n"
        "kascade_request_duration_seconds_count{tier=\"mid\"} 5\n");
}

static void metrics_histogram_without_labels_has_only_le(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *h =
        ks_metrics_family(m, "lat", "L.", KS_METRIC_HISTOGRAM, "");
    char *text;

    ks_metrics_add(h, 2);
    text = ks_metrics_render(m);
    assert_non_null(text);
    assert_non_null(strstr(text, "\nlat_bucket{le=\"1\"} 0\n"));
    assert_non_null(strstr(text, "\nlat_bucket{le=\"2.5\"} 1\n"));
    assert_non_null(strstr(text, "\nlat_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(text, "\nlat_sum 2\nlat_count 1\n"));
    free(text);
}

static void metrics_label_values_are_escaped(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *dlq = ks_metrics_family(
        m, "kascade_dlq_total", "DLQ.", KS_METRIC_COUNTER, "error");

    ks_metrics_add(dlq, 1, "say \"hi\"");
    ks_metrics_add(dlq, 1, "C:\\tmp");
    ks_metrics_add(dlq, 1, "two\nlines");
    assert_render(m, "# HELP kascade_dlq_total DLQ.\n"
                     "# TYPE kascade_dlq_total counter\n"
                     "kascade_dlq_total{error=\"say \\\"hi\\\"\"} 1\n"
                     "kascade_dlq_total{error=\"C:\\\\tmp\"} 1\n"
                     "kascade_dlq_total{error=\"two\\nlines\"} 1\n");
}

static void metrics_null_label_value_renders_empty(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *f =
        ks_metrics_family(m, "x_total", "X.", KS_METRIC_COUNTER, "tier");

    ks_metrics_add(f, 1, (const char *)NULL);
    ks_metrics_add(f, 1, "");
    assert_render(m, "# HELP x_total X.\n# TYPE x_total counter\n"
                     "x_total{tier=\"\"} 2\n");
}

struct adder {
    struct ks_metric_family *fam;
    const char *tier;
};

static void *add_many(void *arg)
{
    struct adder *a = arg;

    for (int i = 0; i < 20000; i++) {
        ks_metrics_add(a->fam, 1, a->tier, "task_type");
    }
    return NULL;
}

static void metrics_concurrent_adds_are_not_lost(void **state)
{
    struct ks_metrics *m = *state;
    struct ks_metric_family *f =
        ks_metrics_family(m, "c_total", "C.", KS_METRIC_COUNTER, "tier,reason");
    /* Threads on one series and on series created concurrently. */
    struct adder adders[6] = {{f, "mid"},   {f, "mid"},  {f, "mid"},
                              {f, "local"}, {f, "open"}, {f, "frontier"}};
    pthread_t th[6];
    char *text;

    for (int i = 0; i < 6; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, add_many, &adders[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
    }
    text = ks_metrics_render(m);
    assert_non_null(strstr(text, "c_total{tier=\"mid\",reason=\"task_type\"} "
                                 "60000\n"));
    assert_non_null(strstr(text, "c_total{tier=\"local\",reason=\"task_type\"}"
                                 " 20000\n"));
    assert_non_null(strstr(text, "c_total{tier=\"open\",reason=\"task_type\"} "
                                 "20000\n"));
    assert_non_null(strstr(
        text, "c_total{tier=\"frontier\",reason=\"task_type\"} 20000\n"));
    free(text);
}

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

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(metrics_empty_registry_renders_nothing),
        T(metrics_family_without_series_renders_help_and_type),
        T(metrics_counter_sums_by_label_values),
        T(metrics_counter_without_labels_has_no_braces),
        T(metrics_closed_label_counts_values_outside_its_set_as_other),
        T(metrics_closed_label_set_can_be_replaced),
        T(metrics_families_render_in_registration_order),
        T(metrics_gauge_set_replaces_the_value),
        T(metrics_gauge_renders_fractional_usd),
        T(metrics_help_text_is_escaped),
        T(metrics_infinite_values_use_prometheus_spelling),
        T(metrics_histogram_buckets_are_cumulative),
        T(metrics_histogram_without_labels_has_only_le),
        T(metrics_label_values_are_escaped),
        T(metrics_null_label_value_renders_empty),
        T(metrics_concurrent_adds_are_not_lost),
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

    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
