/*
 * metrics_fixture.c - the per-test registry of the metrics test programs
 * (see metrics_fixture.h).
 */
#include "metrics_fixture.h"

#include <stddef.h>

#include "base/metrics.h"

#include "base/banned.h"

int metrics_setup(void **state)
{
    *state = ks_metrics_new();
    return *state ? 0 : -1;
}

int metrics_teardown(void **state)
{
    ks_metrics_destroy(*state);
    return 0;
}
