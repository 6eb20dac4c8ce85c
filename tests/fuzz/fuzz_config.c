/*
 * fuzz_config.c - the config reader (ks_config_load): the input is the
 * whole kascade.json, written to a scratch file since the reader takes a
 * path. The KASCADE_* environment is cleared once so runs repeat.
 */
#include "config/config.h"
#include "fuzz.h"

#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const env[] = {
        "KASCADE_BOOTSTRAP_SERVERS", "KASCADE_REDIS_URL",
        "KASCADE_TOPICS_PREFIX",     "KASCADE_METRICS_PORT",
        "KASCADE_LOG_LEVEL",
    };
    static int ready;
    char errstr[512];
    struct ks_config *cfg;

    if (!ready) {
        for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
            unsetenv(env[i]);
        }
        fuzz_quiet();
        ready = 1;
    }
    cfg =
        ks_config_load(fuzz_file(data, size), NULL, 0, errstr, sizeof(errstr));
    ks_config_destroy(cfg);
    return 0;
}
