/*
 * kascade-router - reads tasks, decides their tier, republishes them.
 * main() reads top to bottom: args, config, init, loop, drain, destroy.
 */
#include <stdlib.h>

#include "daemon.h"
#include "log.h"
#include "router.h"

#include "banned.h"

static const char usage[] =
    "usage: kascade-router [-c kascade.json] [-X key=value]... "
    "[--log-level LEVEL]\n"
    "  Consumes <prefix>tasks and <prefix>escalations, routes each task to\n"
    "  <prefix>tier.<tier>, dead-letters bad input to <prefix>dlq.\n"
    "  SIGHUP reloads the config; SIGTERM drains and exits.\n";

int main(int argc, char **argv)
{
    struct ks_cmdline cl;
    struct ks_config *cfg = NULL;
    struct router *rt = NULL;
    char errstr[512];
    int r, status = 1;

    r = ks_cmdline_parse(&cl, argc, argv, usage, 0);
    if (r != 0) {
        free(cl.overrides);
        return r > 0 ? 0 : 2;
    }
    ks_daemon_signals();
    cfg = ks_daemon_config(&cl);
    if (!cfg) {
        goto out;
    }
    rt = router_new(cfg, &cl, errstr, sizeof(errstr));
    cfg = NULL; /* the router owns it now */
    if (!rt) {
        ks_log_error("router", "start-up failed: %s", errstr);
        goto out;
    }
    status = router_run(rt) == 0 ? 0 : 1;

out:
    router_destroy(rt);
    ks_config_destroy(cfg);
    free(cl.overrides);
    return status;
}
