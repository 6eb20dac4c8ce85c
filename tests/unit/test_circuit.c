/*
 * test_circuit.c - the provider circuit breaker's state machine, driven
 * with a made-up monotonic clock: it opens after N consecutive failures,
 * stays open for the cool-down, lets exactly one probe through when half
 * open, closes on the probe's success and re-opens on its failure; calls
 * begun before a state change do not count after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../workers/circuit.h"

#include "base/banned.h"

#define COOLDOWN 30000
#define PROBE_TO 65000

/* One call through the breaker at now: begin, then record ok. */
static void call(struct circuit *c, int64_t now, bool ok)
{
    int64_t at = -1;

    assert_true(circuit_allow(c, now, &at));
    circuit_record(c, circuit_begin(c, now), ok, now);
}

static void circuit_opens_after_n_consecutive_failures(void **state)
{
    struct circuit c;
    int64_t at = -1;

    (void)state;
    circuit_init(&c, 3, COOLDOWN, PROBE_TO);
    call(&c, 100, false);
    call(&c, 200, false);
    assert_int_equal(c.state, CIRCUIT_CLOSED);
    call(&c, 300, false);
    assert_int_equal(c.state, CIRCUIT_OPEN);
    assert_int_equal(c.opened, 1);
    assert_false(circuit_allow(&c, 301, &at));
    assert_int_equal(at, 300 + COOLDOWN);
    assert_false(circuit_allow(&c, 300 + COOLDOWN - 1, &at));
    assert_int_equal(c.state, CIRCUIT_OPEN);
}

static void circuit_success_resets_the_failure_count(void **state)
{
    struct circuit c;

    (void)state;
    circuit_init(&c, 3, COOLDOWN, PROBE_TO);
    call(&c, 1, false);
    call(&c, 2, false);
    call(&c, 3, true);
    call(&c, 4, false);
    call(&c, 5, false);
    assert_int_equal(c.state, CIRCUIT_CLOSED);
    call(&c, 6, false);
    assert_int_equal(c.state, CIRCUIT_OPEN);
}

static void circuit_half_open_lets_exactly_one_probe_through(void **state)
{
    struct circuit c;
    int64_t at = -1, t;

    (void)state;
    circuit_init(&c, 1, COOLDOWN, PROBE_TO);
    call(&c, 0, false);
    t = COOLDOWN;
    assert_true(circuit_allow(&c, t, &at));
    assert_int_equal(c.state, CIRCUIT_HALF_OPEN);
    circuit_begin(&c, t);
    /* While the probe is out nobody else goes, however often they ask. */
    for (int i = 1; i <= 100; i++) {
        at = -1;
        assert_false(circuit_allow(&c, t + i * 10, &at));
        assert_true(at > t + i * 10);
        assert_true(at <= t + PROBE_TO);
    }
    assert_int_equal(c.state, CIRCUIT_HALF_OPEN);
}

static void circuit_probe_success_closes_it(void **state)
{
    struct circuit c;
    int64_t at = -1;
    uint64_t probe;

    (void)state;
    circuit_init(&c, 2, COOLDOWN, PROBE_TO);
    call(&c, 0, false);
    call(&c, 1, false);
    assert_true(circuit_allow(&c, 1 + COOLDOWN, &at));
    probe = circuit_begin(&c, 1 + COOLDOWN);
    assert_true(circuit_record(&c, probe, true, 2 + COOLDOWN));
    assert_int_equal(c.state, CIRCUIT_CLOSED);
    assert_true(circuit_allow(&c, 3 + COOLDOWN, &at));
    /* Closed afresh: it takes N new failures to open again. */
    call(&c, 4 + COOLDOWN, false);
    assert_int_equal(c.state, CIRCUIT_CLOSED);
    call(&c, 5 + COOLDOWN, false);
    assert_int_equal(c.state, CIRCUIT_OPEN);
}

static void circuit_probe_failure_reopens_it_for_a_full_cooldown(void **state)
{
    struct circuit c;
    int64_t at = -1, t = COOLDOWN + 50;
    uint64_t probe;

    (void)state;
    circuit_init(&c, 1, COOLDOWN, PROBE_TO);
    call(&c, 50, false);
    assert_true(circuit_allow(&c, t, &at));
    probe = circuit_begin(&c, t);
    assert_true(circuit_record(&c, probe, false, t + 500));
    assert_int_equal(c.state, CIRCUIT_OPEN);
    assert_int_equal(c.opened, 2);
    assert_false(circuit_allow(&c, t + 501, &at));
    assert_int_equal(at, t + 500 + COOLDOWN);
    assert_true(circuit_allow(&c, t + 500 + COOLDOWN, &at));
    assert_int_equal(c.state, CIRCUIT_HALF_OPEN);
}

static void circuit_ignores_calls_begun_before_it_opened(void **state)
{
    struct circuit c;
    int64_t at = -1;
    uint64_t old[4], probe;

    (void)state;
    circuit_init(&c, 2, COOLDOWN, PROBE_TO);
    for (int i = 0; i < 4; i++) {
        assert_true(circuit_allow(&c, i, &at));
        old[i] = circuit_begin(&c, i);
    }
    circuit_record(&c, old[0], false, 10);
    assert_true(circuit_record(&c, old[1], false, 11));
    assert_int_equal(c.state, CIRCUIT_OPEN);
    /* The other two in-flight calls end while it is open... */
    assert_false(circuit_record(&c, old[2], false, 12));
    assert_int_equal(c.opened, 1);
    assert_int_equal(c.open_until, 11 + COOLDOWN);
    /* ...or while it is half open: neither counts as the probe. */
    assert_true(circuit_allow(&c, 11 + COOLDOWN, &at));
    probe = circuit_begin(&c, 11 + COOLDOWN);
    assert_false(circuit_record(&c, old[3], true, 12 + COOLDOWN));
    assert_int_equal(c.state, CIRCUIT_HALF_OPEN);
    assert_true(circuit_record(&c, probe, true, 13 + COOLDOWN));
    assert_int_equal(c.state, CIRCUIT_CLOSED);
}

static void circuit_gives_up_a_probe_that_never_reports(void **state)
{
    struct circuit c;
    int64_t at = -1, t = COOLDOWN;
    uint64_t lost, probe;

    (void)state;
    circuit_init(&c, 1, COOLDOWN, PROBE_TO);
    call(&c, 0, false);
    assert_true(circuit_allow(&c, t, &at));
    lost = circuit_begin(&c, t);
    assert_false(circuit_allow(&c, t + PROBE_TO - 1, &at));
    assert_true(circuit_allow(&c, t + PROBE_TO, &at));
    probe = circuit_begin(&c, t + PROBE_TO);
    /* The lost probe reporting late says nothing any more. */
    assert_false(circuit_record(&c, lost, false, t + PROBE_TO + 1));
    assert_int_equal(c.state, CIRCUIT_HALF_OPEN);
    assert_true(circuit_record(&c, probe, true, t + PROBE_TO + 2));
    assert_int_equal(c.state, CIRCUIT_CLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(circuit_opens_after_n_consecutive_failures),
        cmocka_unit_test(circuit_success_resets_the_failure_count),
        cmocka_unit_test(circuit_half_open_lets_exactly_one_probe_through),
        cmocka_unit_test(circuit_probe_success_closes_it),
        cmocka_unit_test(circuit_probe_failure_reopens_it_for_a_full_cooldown),
        cmocka_unit_test(circuit_ignores_calls_begun_before_it_opened),
        cmocka_unit_test(circuit_gives_up_a_probe_that_never_reports),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
