/*
 * route_fixture.h - what the router's test programs (test_route_cases,
 * test_route_rules) share: the directory of the routing fixtures
 * (tests/fixtures/routing/, with config.json and the case tables) and
 * reading a file whole.
 *
 * The fixture directory is $KASCADE_FIXTURES/routing (default:
 * ../fixtures/routing next to this source file, so the binaries run from
 * the repo root); find_fixture_dir() sets fixture_dir once, from main().
 * Ownership: read_text() returns what the caller frees. Single-threaded.
 */
#ifndef KASCADE_TESTS_ROUTE_FIXTURE_H
#define KASCADE_TESTS_ROUTE_FIXTURE_H

/* The routing fixture directory; "" until find_fixture_dir(). */
extern char fixture_dir[1024];

/* Sets fixture_dir from $KASCADE_FIXTURES or this source's place. */
void find_fixture_dir(void);

/* The whole file at path, NUL-terminated (caller frees), or NULL when it
 * cannot be opened. */
char *read_text(const char *path);

#endif
