/*
 * test_metrics_render.c - the Prometheus registry's exposition text: the
 * exact text of counters, gauges and histograms (cumulative buckets, _sum,
 * _count, escaped help and label values, closed label sets), and
 * concurrent adds that lose nothing. The per-test registry is
 * metrics_fixture.h's.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "base/metrics.h"
#include "metrics_fixture.h"

#include "base/banned.h"

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

#define T(f) cmocka_unit_test_setup_teardown(f, metrics_setup, metrics_teardown)

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
    };

    return cmocka_run_group_tests_name("metrics_render", tests, NULL, NULL);
}
