/*
 * config_fixture.c - the shared fixture files, environment and load
 * helpers of the config test programs (see config_fixture.h).
 */
#include "config_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/banned.h"

static const char *const env_vars[] = {
    "KASCADE_BOOTSTRAP_SERVERS", "KASCADE_REDIS_URL", "KASCADE_TOPICS_PREFIX",
    "KASCADE_METRICS_PORT",      "KASCADE_LOG_LEVEL",
};

char errstr[512];

/* The path of fixture name; static buffer, valid until the next call. */
const char *fixture(const char *name)
{
    static char path[1024];
    const char *dir = getenv("KASCADE_FIXTURES");

    if (dir && *dir) {
        snprintf(path, sizeof(path), "%s/config/%s", dir, name);
    } else {
        const char *file = __FILE__;
        const char *slash = strrchr(file, '/');
        int dirlen = slash ? (int)(slash - file) + 1 : 0;

        snprintf(path, sizeof(path), "%.*s../fixtures/config/%s", dirlen, file,
                 name);
    }
    return path;
}

static void clear_env(void)
{
    for (size_t i = 0; i < N_OF(env_vars); i++) {
        unsetenv(env_vars[i]);
    }
}

int config_setup(void **state)
{
    (void)state;
    clear_env();
    memset(errstr, 0, sizeof(errstr));
    return 0;
}

int config_teardown(void **state)
{
    ks_config_destroy(*state);
    *state = NULL;
    clear_env();
    return 0;
}

/* Loads a fixture that must be valid; the config is freed by teardown. */
struct ks_config *load_ok(void **state,
                          const char *name,
                          const char *const *overrides,
                          size_t n)
{
    struct ks_config *cfg =
        ks_config_load(fixture(name), overrides, n, errstr, sizeof(errstr));

    if (!cfg) {
        fail_msg("%s did not load: %s", name, errstr);
    }
    *state = cfg;
    return cfg;
}

/* The value of librdkafka property key, or NULL. */
const char *kafka_prop(const struct ks_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return cfg->kafka[i].value;
        }
    }
    return NULL;
}

void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) {
        fail_msg("\"%s\" lacks \"%s\"", haystack, needle);
    }
}

/* Loads a fixture that must be refused with "FILE: key 'KEY': ...REASON". */
void assert_refused(const char *name,
                    const char *const *overrides,
                    size_t n,
                    const char *key,
                    const char *reason)
{
    char want[1100];
    struct ks_config *cfg;
    const char *path = fixture(name);

    cfg = ks_config_load(path, overrides, n, errstr, sizeof(errstr));
    if (cfg) {
        ks_config_destroy(cfg);
        fail_msg("%s loaded, expected a refusal of key '%s'", name,
                 key ? key : "(none)");
    }
    if (key) {
        snprintf(want, sizeof(want), "%s: key '%s': ", path, key);
    } else {
        snprintf(want, sizeof(want), "%s: ", path);
    }
    if (strncmp(errstr, want, strlen(want)) != 0) {
        fail_msg("\"%s\" does not start with \"%s\"", errstr, want);
    }
    assert_contains(errstr, reason);
}
