/*
 * metrics_fixture.h - what the metrics test programs (test_metrics_render,
 * test_metrics_http) share: a fresh registry for each test.
 *
 * Ownership: the registry is the test's *state, made by metrics_setup()
 * and destroyed by metrics_teardown() (a test that destroys it itself sets
 * *state to NULL). Single-threaded: cmocka calls both from the main thread.
 */
#ifndef KASCADE_TESTS_METRICS_FIXTURE_H
#define KASCADE_TESTS_METRICS_FIXTURE_H

/* cmocka per-test setup: a new struct ks_metrics in *state. Returns 0, or
 * -1 when it could not be made. */
int metrics_setup(void **state);

/* cmocka per-test teardown: destroys the registry in *state (NULL is
 * fine). Returns 0. */
int metrics_teardown(void **state);

#endif
