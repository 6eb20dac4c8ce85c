/*
 * metrics.h - Prometheus counters, gauges and histograms, served with
 * /healthz on metrics.port by libmicrohttpd (docs/design.md section 10).
 *
 * Families are registered at start-up; series are created on first use
 * with their label values. Updates take a mutex (the HTTP thread renders
 * under the same mutex), so every function here is thread-safe.
 *
 * Ownership: the caller owns the registry (ks_metrics_destroy); the
 * registry owns every family and series, and family handles are borrowed,
 * valid until it is destroyed. ks_metrics_render returns a string the
 * caller frees.
 */
#ifndef KASCADE_COMMON_BASE_METRICS_H
#define KASCADE_COMMON_BASE_METRICS_H

#include <stdbool.h>
#include <stddef.h>

enum ks_metric_type {
    KS_METRIC_COUNTER = 0,
    KS_METRIC_GAUGE,
    KS_METRIC_HISTOGRAM,
};

struct ks_metrics;
struct ks_metric_family;

/* Returns a new registry the caller owns. */
struct ks_metrics *ks_metrics_new(void);

/* Stops the server (if any) and frees everything. Accepts NULL. */
void ks_metrics_destroy(struct ks_metrics *m);

/* Registers a family. labels is a comma-separated list of label names
 * ("tier,reason"), or "" for none. Returns a handle owned by m. */
struct ks_metric_family *ks_metrics_family(struct ks_metrics *m,
                                           const char *name,
                                           const char *help,
                                           enum ks_metric_type type,
                                           const char *labels);

/* The value a closed label takes for anything outside its set. */
#define KS_METRICS_OTHER "other"

/* Closes label (one of fam's label names) to the n values given (copied;
 * "other" is added): any other value is counted as "other", so a value
 * taken from a message or a model can never create a series of its own.
 * Call again to replace the set (a config reload). */
void ks_metrics_label_closed(struct ks_metric_family *fam,
                             const char *label,
                             const char *const *values,
                             size_t n);

/* Adds delta to the series with these label values (as many as the family
 * has labels, in order). For a histogram, observes delta instead. */
void ks_metrics_add(struct ks_metric_family *fam, double delta, ...);

/* Sets a gauge series. */
void ks_metrics_set(struct ks_metric_family *fam, double value, ...);

/* Sets what /healthz answers: 200 "ok", or 503 with reason. */
void ks_metrics_set_health(struct ks_metrics *m, bool ok, const char *reason);

/* Renders the exposition text into a new string the caller frees. */
char *ks_metrics_render(struct ks_metrics *m);

/* Starts serving on host:port (port 0: not served). Returns 0, or -1 with
 * the reason in errstr. */
int ks_metrics_serve(struct ks_metrics *m,
                     const char *host,
                     int port,
                     char *errstr,
                     size_t errstr_size);

#endif
