/*
 * metrics.c - a small Prometheus registry.
 *
 * Series are found by linear search on their joined label values; the
 * label sets in kascade are small (tiers x reasons), so this stays cheap.
 * Histograms use fixed latency buckets in seconds.
 */
#include "base/metrics.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <pthread.h>

#include <microhttpd.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define MAX_LABELS 4
#define N_BUCKETS  12

static const double bucket_bounds[N_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

struct series {
    char *values[MAX_LABELS];
    double value; /* counter/gauge value, or histogram sum */
    unsigned long long buckets[N_BUCKETS + 1];
    unsigned long long count;
};

struct ks_metric_family {
    struct ks_metrics *m;
    char *name;
    char *help;
    enum ks_metric_type type;
    char *labels[MAX_LABELS];
    int n_labels;
    /* closed label sets (ks_metrics_label_closed): n_closed[j] > 0 means
     * label j takes only closed[j][...], anything else is "other" */
    char **closed[MAX_LABELS];
    size_t n_closed[MAX_LABELS];
    struct series *series;
    size_t n_series, cap_series;
};

struct ks_metrics {
    pthread_mutex_t lock;
    struct ks_metric_family **fams;
    size_t n_fams;
    bool healthy;
    char health_reason[128];
    struct MHD_Daemon *mhd;
};

struct ks_metrics *ks_metrics_new(void)
{
    struct ks_metrics *m = ks_xcalloc(1, sizeof(*m));

    pthread_mutex_init(&m->lock, NULL);
    m->healthy = true;
    return m;
}

static void family_free(struct ks_metric_family *fam)
{
    for (size_t i = 0; i < fam->n_series; i++) {
        for (int j = 0; j < fam->n_labels; j++) {
            free(fam->series[i].values[j]);
        }
    }
    for (int j = 0; j < fam->n_labels; j++) {
        free(fam->labels[j]);
        for (size_t k = 0; k < fam->n_closed[j]; k++) {
            free(fam->closed[j][k]);
        }
        free(fam->closed[j]);
    }
    free(fam->series);
    free(fam->name);
    free(fam->help);
    free(fam);
}

void ks_metrics_destroy(struct ks_metrics *m)
{
    if (!m) {
        return;
    }
    if (m->mhd) {
        MHD_stop_daemon(m->mhd);
    }
    for (size_t i = 0; i < m->n_fams; i++) {
        family_free(m->fams[i]);
    }
    free(m->fams);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

struct ks_metric_family *ks_metrics_family(struct ks_metrics *m,
                                           const char *name,
                                           const char *help,
                                           enum ks_metric_type type,
                                           const char *labels)
{
    struct ks_metric_family *fam = ks_xcalloc(1, sizeof(*fam));
    const char *p = labels;

    fam->m = m;
    fam->name = ks_xstrdup(name);
    fam->help = ks_xstrdup(help);
    fam->type = type;
    while (*p) {
        /* More labels than series can hold is a bug in the caller. */
        assert(fam->n_labels < MAX_LABELS);
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        fam->labels[fam->n_labels++] = ks_xstrndup(p, len);
        p += len + (comma ? 1 : 0);
    }
    pthread_mutex_lock(&m->lock);
    m->fams = ks_xrealloc(m->fams, (m->n_fams + 1) * sizeof(*m->fams));
    m->fams[m->n_fams++] = fam;
    pthread_mutex_unlock(&m->lock);
    return fam;
}

void ks_metrics_label_closed(struct ks_metric_family *fam,
                             const char *label,
                             const char *const *values,
                             size_t n)
{
    int j = 0;

    while (j < fam->n_labels && strcmp(fam->labels[j], label) != 0) {
        j++;
    }
    /* A label the family does not have is a bug in the caller. */
    assert(j < fam->n_labels);
    pthread_mutex_lock(&fam->m->lock);
    for (size_t k = 0; k < fam->n_closed[j]; k++) {
        free(fam->closed[j][k]);
    }
    free(fam->closed[j]);
    fam->closed[j] = ks_xcalloc(n + 1, sizeof(*fam->closed[j]));
    for (size_t k = 0; k < n; k++) {
        fam->closed[j][k] = ks_xstrdup(values[k]);
    }
    /* "other" is always in the set: an empty list still closes it. */
    fam->closed[j][n] = ks_xstrdup(KS_METRICS_OTHER);
    fam->n_closed[j] = n + 1;
    pthread_mutex_unlock(&fam->m->lock);
}

/* value, or "other" when label j is closed and value is not in its set. */
static const char *closed_value(const struct ks_metric_family *fam,
                                int j,
                                const char *value)
{
    if (fam->n_closed[j] == 0) {
        return value;
    }
    for (size_t k = 0; k < fam->n_closed[j]; k++) {
        if (strcmp(fam->closed[j][k], value) == 0) {
            return value;
        }
    }
    return KS_METRICS_OTHER;
}

/* Under the lock: the series for these values, created when new. */
static struct series *series_get(struct ks_metric_family *fam, va_list ap)
{
    const char *values[MAX_LABELS];
    struct series *s;

    for (int j = 0; j < fam->n_labels; j++) {
        values[j] = va_arg(ap, const char *);
        if (!values[j]) {
            values[j] = "";
        }
        values[j] = closed_value(fam, j, values[j]);
    }
    for (size_t i = 0; i < fam->n_series; i++) {
        int j;

        s = &fam->series[i];
        for (j = 0; j < fam->n_labels; j++) {
            if (strcmp(s->values[j], values[j]) != 0) {
                break;
            }
        }
        if (j == fam->n_labels) {
            return s;
        }
    }
    if (fam->n_series == fam->cap_series) {
        fam->cap_series = fam->cap_series ? fam->cap_series * 2 : 8;
        fam->series =
            ks_xrealloc(fam->series, fam->cap_series * sizeof(*fam->series));
    }
    s = &fam->series[fam->n_series++];
    memset(s, 0, sizeof(*s));
    for (int j = 0; j < fam->n_labels; j++) {
        s->values[j] = ks_xstrdup(values[j]);
    }
    return s;
}

void ks_metrics_add(struct ks_metric_family *fam, double delta, ...)
{
    struct series *s;
    va_list ap;

    pthread_mutex_lock(&fam->m->lock);
    va_start(ap, delta);
    s = series_get(fam, ap);
    va_end(ap);
    s->value += delta;
    if (fam->type == KS_METRIC_HISTOGRAM) {
        int b = 0;

        while (b < N_BUCKETS && delta > bucket_bounds[b]) {
            b++;
        }
        s->buckets[b]++;
        s->count++;
    }
    pthread_mutex_unlock(&fam->m->lock);
}

void ks_metrics_set(struct ks_metric_family *fam, double value, ...)
{
    struct series *s;
    va_list ap;

    pthread_mutex_lock(&fam->m->lock);
    va_start(ap, value);
    s = series_get(fam, ap);
    va_end(ap);
    s->value = value;
    pthread_mutex_unlock(&fam->m->lock);
}

void ks_metrics_set_health(struct ks_metrics *m, bool ok, const char *reason)
{
    pthread_mutex_lock(&m->lock);
    m->healthy = ok;
    ks_strlcpy(m->health_reason, reason ? reason : "",
               sizeof(m->health_reason));
    pthread_mutex_unlock(&m->lock);
}

/* Prometheus spells non-finite values +Inf, -Inf and NaN. */
static void render_value(struct ks_buf *out, double v)
{
    if (isnan(v)) {
        ks_buf_printf(out, " NaN\n");
    } else if (isinf(v)) {
        ks_buf_printf(out, " %sInf\n", v > 0 ? "+" : "-");
    } else {
        ks_buf_printf(out, " %.17g\n", v);
    }
}

/* HELP text escapes backslash and newline (label values also quotes). */
static void render_escaped(struct ks_buf *out, const char *s, bool quotes)
{
    for (const char *c = s; *c; c++) {
        if (*c == '\\' || (quotes && *c == '"')) {
            ks_buf_append(out, "\\", 1);
        }
        if (*c == '\n') {
            ks_buf_append(out, "\\n", 2);
        } else {
            ks_buf_append(out, c, 1);
        }
    }
}

static void render_labels(struct ks_buf *out,
                          const struct ks_metric_family *f,
                          const struct series *s,
                          const char *extra)
{
    if (f->n_labels == 0 && !extra) {
        return;
    }
    ks_buf_append(out, "{", 1);
    for (int j = 0; j < f->n_labels; j++) {
        ks_buf_printf(out, "%s%s=\"", j ? "," : "", f->labels[j]);
        render_escaped(out, s->values[j], true);
        ks_buf_append(out, "\"", 1);
    }
    if (extra) {
        ks_buf_printf(out, "%s%s", f->n_labels ? "," : "", extra);
    }
    ks_buf_append(out, "}", 1);
}

static void render_histogram(struct ks_buf *out,
                             const struct ks_metric_family *f,
                             const struct series *s)
{
    unsigned long long cum = 0;
    char le[32];

    for (int b = 0; b <= N_BUCKETS; b++) {
        cum += s->buckets[b];
        if (b < N_BUCKETS) {
            snprintf(le, sizeof(le), "le=\"%g\"", bucket_bounds[b]);
        } else {
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        }
        ks_buf_printf(out, "%s_bucket", f->name);
        render_labels(out, f, s, le);
        ks_buf_printf(out, " %llu\n", cum);
    }
    ks_buf_printf(out, "%s_sum", f->name);
    render_labels(out, f, s, NULL);
    render_value(out, s->value);
    ks_buf_printf(out, "%s_count", f->name);
    render_labels(out, f, s, NULL);
    ks_buf_printf(out, " %llu\n", s->count);
}

char *ks_metrics_render(struct ks_metrics *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    struct ks_buf out;

    ks_buf_init(&out);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_fams; i++) {
        const struct ks_metric_family *f = m->fams[i];

        ks_buf_printf(&out, "# HELP %s ", f->name);
        render_escaped(&out, f->help, false);
        ks_buf_printf(&out, "\n# TYPE %s %s\n", f->name, types[f->type]);
        for (size_t k = 0; k < f->n_series; k++) {
            if (f->type == KS_METRIC_HISTOGRAM) {
                render_histogram(&out, f, &f->series[k]);
                continue;
            }
            ks_buf_append(&out, f->name, strlen(f->name));
            render_labels(&out, f, &f->series[k], NULL);
            render_value(&out, f->series[k].value);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return ks_buf_take(&out);
}

static enum MHD_Result respond(struct MHD_Connection *conn,
                               unsigned int code,
                               char *body,
                               const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result r;

    MHD_add_response_header(resp, "Content-Type", type);
    r = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result handle(void *cls,
                              struct MHD_Connection *conn,
                              const char *url,
                              const char *method,
                              const char *version,
                              const char *upload_data,
                              size_t *upload_data_size,
                              void **req_cls)
{
    struct ks_metrics *m = cls;
    char reason[160];
    bool ok;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(method, "GET") != 0) {
        return respond(conn, 405, ks_xstrdup("method not allowed\n"),
                       "text/plain");
    }
    if (strcmp(url, "/metrics") == 0) {
        return respond(conn, 200, ks_metrics_render(m),
                       "text/plain; version=0.0.4");
    }
    if (strcmp(url, "/healthz") == 0) {
        pthread_mutex_lock(&m->lock);
        ok = m->healthy;
        snprintf(reason, sizeof(reason), "%s\n", ok ? "ok" : m->health_reason);
        pthread_mutex_unlock(&m->lock);
        return respond(conn, ok ? 200 : 503, ks_xstrdup(reason), "text/plain");
    }
    return respond(conn, 404, ks_xstrdup("not found\n"), "text/plain");
}

int ks_metrics_serve(struct ks_metrics *m,
                     const char *host,
                     int port,
                     char *errstr,
                     size_t errstr_size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};

    if (port == 0) {
        return 0;
    }
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(errstr, errstr_size,
                 "metrics.host '%s' is not an IPv4 "
                 "address",
                 host);
        return -1;
    }
    m->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
        NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!m->mhd) {
        snprintf(errstr, errstr_size,
                 "cannot serve metrics on %s:%d (port "
                 "in use?)",
                 host, port);
        return -1;
    }
    return 0;
}
