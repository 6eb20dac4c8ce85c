/*
 * kascade-worker --tier NAME - one member of a tier's pool.
 * main() reads top to bottom: args, config, init, loop, drain, destroy.
 */
#include <stdlib.h>

#include <curl/curl.h>

#include "base/log.h"
#include "process/daemon.h"
#include "worker.h"

#include "base/banned.h"

static const char usage[] =
    "usage: kascade-worker --tier NAME [-c kascade.json] [-X key=value]... "
    "[--log-level LEVEL]\n"
    "  Consumes <prefix>tier.NAME, calls the tier's model, publishes "
    "Results.\n  SIGTERM finishes in-flight calls, commits and exits.\n";

int main(int argc, char **argv)
{
    struct ks_cmdline cl;
    struct ks_config *cfg = NULL;
    struct worker *w = NULL;
    char errstr[512];
    int r, status = 1;

    r = ks_cmdline_parse(&cl, argc, argv, usage, 1);
    if (r != 0) {
        free(cl.overrides);
        return r > 0 ? 0 : 2;
    }
    ks_daemon_signals();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cfg = ks_daemon_config(&cl);
    if (!cfg) {
        goto out;
    }
    w = worker_new(cfg, cl.tier, errstr, sizeof(errstr));
    if (!w) {
        ks_log_error("worker", "start-up failed: %s", errstr);
        goto out;
    }
    status = worker_run(w) == 0 ? 0 : 1;

out:
    worker_destroy(w);
    ks_config_destroy(cfg);
    curl_global_cleanup();
    free(cl.overrides);
    return status;
}
