/*
 * config_fixture.h - what the config test programs (test_config_read,
 * test_config_refuse, test_config_override) share: the fixture files, a
 * clean environment around each test, and loading a file that must load
 * or must be refused with "FILE: key 'KEY': ...REASON".
 *
 * Fixtures live in tests/fixtures/config/; their directory is
 * $KASCADE_FIXTURES (default: ../fixtures next to this source file, so the
 * binary runs from the repo root). Every test starts and ends with the
 * KASCADE_* variables config.c reads unset (config_setup and
 * config_teardown), so the caller's environment cannot leak in.
 *
 * Ownership: fixture() returns a static buffer, valid until the next
 * call; the config of load_ok() is the test's *state, freed by
 * config_teardown. errstr holds the last load's error. Single-threaded.
 */
#ifndef KASCADE_TESTS_CONFIG_FIXTURE_H
#define KASCADE_TESTS_CONFIG_FIXTURE_H

#include <stddef.h>

#include "config/config.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The error of the last load; cleared by config_setup. */
extern char errstr[512];

/* The path of fixture name; static buffer, valid until the next call. */
const char *fixture(const char *name);

/* cmocka per-test setup and teardown: clear the KASCADE_* variables and
 * errstr; the teardown also frees the config in *state. Return 0. */
int config_setup(void **state);
int config_teardown(void **state);

/* Loads a fixture that must be valid; the config is freed by teardown. */
struct ks_config *load_ok(void **state,
                          const char *name,
                          const char *const *overrides,
                          size_t n);

/* The value of librdkafka property key, or NULL. */
const char *kafka_prop(const struct ks_config *cfg, const char *key);

/* Fails the test unless needle occurs in haystack. */
void assert_contains(const char *haystack, const char *needle);

/* Loads a fixture that must be refused with "FILE: key 'KEY': ...REASON". */
void assert_refused(const char *name,
                    const char *const *overrides,
                    size_t n,
                    const char *key,
                    const char *reason);

#endif
