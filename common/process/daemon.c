/* daemon.c - signal flags and the shared command line of the daemons. */
#include "process/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <getopt.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

volatile sig_atomic_t ks_stop_requested;
volatile sig_atomic_t ks_reload_requested;

static void on_stop(int sig)
{
    (void)sig;
    ks_stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    ks_reload_requested = 1;
}

void ks_daemon_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

int ks_cmdline_parse(struct ks_cmdline *cl,
                     int argc,
                     char **argv,
                     const char *usage,
                     int want_tier)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"tier", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(cl, 0, sizeof(*cl));
    cl->config_path = getenv("KASCADE_CONFIG");
    if (!cl->config_path) {
        cl->config_path = "kascade.json";
    }
    cl->overrides = ks_xcalloc((size_t)argc + 1, sizeof(*cl->overrides));
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:X:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cl->config_path = optarg;
            break;
        case 'X':
            cl->overrides[cl->n_overrides++] = optarg;
            break;
        case 'l':
            cl->log_level = optarg;
            break;
        case 't':
            if (!want_tier) {
                goto bad;
            }
            cl->tier = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            goto bad;
        }
    }
    if (optind != argc || (want_tier && !cl->tier)) {
        goto bad;
    }
    return 0;

bad:
    fputs(usage, stderr);
    return -1;
}

struct ks_config *ks_daemon_config(const struct ks_cmdline *cl)
{
    char errstr[512];
    struct ks_config *cfg;

    cfg = ks_config_load(cl->config_path, cl->overrides, cl->n_overrides,
                         errstr, sizeof(errstr));
    if (!cfg) {
        ks_log_error("config", "%s", errstr);
        return NULL;
    }
    if (ks_log_set_level(cl->log_level ? cl->log_level : cfg->log_level) != 0) {
        ks_log_error("config", "--log-level must be error, warn, info or "
                               "debug");
        ks_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}
