/*
 * kascade - the operator and producer tool:
 *   kascade [-c FILE] [-X key=value]... SUBCOMMAND ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "cli.h"
#include "config/config.h"
#include "process/daemon.h"

#include "base/banned.h"

static const char usage[] =
    "usage: kascade [-c kascade.json] [-X key=value]... COMMAND [ARGS]\n"
    "commands:\n"
    "  submit FILE.jsonl [--wait] [-o results.jsonl] [--timeout SEC]\n"
    "                       produce tasks (one JSON per line; - for stdin)\n"
    "  topics create        create every kascade topic (idempotent)\n"
    "  dlq list [--max N]   show dead-lettered messages\n"
    "  dlq replay [--error CODE]\n"
    "                       send dead-lettered messages back, once each\n"
    "  budget show [--json] [--day YYYYMMDD]\n"
    "                       today's spend against each daily budget\n"
    "  budget set TIER USD|none, budget set-tenant NAME USD|none\n"
    "                       set (none: clear) a runtime daily limit\n"
    "  budget reset TIER [--yes]\n"
    "                       set today's spend of a tier back to 0\n"
    "  train --kind router|triage -i FILE.jsonl -o MODEL [--holdout 0.2]\n"
    "        [--epochs N] [--bits B] [--seed N]\n"
    "                       fit the learned difficulty score or the triage\n"
    "                       classifier (train --help for more)\n"
    "  eval --kind router|triage --model MODEL -i TEST.jsonl\n"
    "                       router: accuracy against share of strong calls,\n"
    "                       CPT(50%), CPT(80%); triage: accuracy, calibration\n"
    "  devbroker [--ready-file F]\n"
    "                       embedded in-memory Kafka on loopback (demo only)\n"
    "The config file defaults to $KASCADE_CONFIG or kascade.json.\n";

/* Splits "[-c F] [-X k=v]... CMD ..." at the command. */
static int global_opts(int argc,
                       char **argv,
                       const char **path,
                       const char **overrides,
                       size_t *n,
                       int *cmd)
{
    int i = 1;

    *path =
        getenv("KASCADE_CONFIG") ? getenv("KASCADE_CONFIG") : "kascade.json";
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            return -1;
        }
        if (strcmp(argv[i], "-c") == 0) {
            *path = argv[i + 1];
        } else if (strcmp(argv[i], "-X") == 0) {
            overrides[(*n)++] = argv[i + 1];
        } else {
            return -1;
        }
        i += 2;
    }
    *cmd = i;
    return i < argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char **overrides = ks_xcalloc((size_t)argc + 1, sizeof(*overrides));
    struct ks_config *cfg = NULL;
    const char *path, *cmd;
    char errstr[512];
    size_t n = 0;
    int c, r, status = 2;

    r = global_opts(argc, argv, &path, overrides, &n, &c);
    if (r != 0) {
        fputs(usage, r > 0 ? stdout : stderr);
        free(overrides);
        return r > 0 ? 0 : 2;
    }
    ks_daemon_signals();
    cmd = argv[c];
    if (strcmp(cmd, "train") == 0 || strcmp(cmd, "eval") == 0) {
        /* Offline commands: no config, no broker. */
        status = strcmp(cmd, "train") == 0 ? cli_train(argc - c, argv + c)
                                           : cli_eval(argc - c, argv + c);
        goto out;
    }
    if (strcmp(cmd, "devbroker") == 0) {
        /* The embedded broker is what supplies the bootstrap address. */
        overrides[n++] = "kafka.bootstrap.servers=127.0.0.1:0";
    }
    cfg = ks_config_load(path, overrides, n, errstr, sizeof(errstr));
    if (!cfg) {
        fprintf(stderr, "kascade: config: %s\n", errstr);
        goto out;
    }
    ks_log_set_level(cfg->log_level);
    if (strcmp(cmd, "submit") == 0) {
        status = cli_submit(cfg, argc - c, argv + c);
    } else if (strcmp(cmd, "topics") == 0) {
        status = cli_topics(cfg, argc - c, argv + c);
    } else if (strcmp(cmd, "dlq") == 0) {
        status = cli_dlq(cfg, argc - c, argv + c);
    } else if (strcmp(cmd, "budget") == 0) {
        status = cli_budget(cfg, argc - c, argv + c);
    } else if (strcmp(cmd, "devbroker") == 0) {
        status = cli_devbroker(cfg, argc - c, argv + c);
    } else {
        fprintf(stderr, "kascade: unknown command '%s'\n%s", cmd, usage);
    }

out:
    ks_config_destroy(cfg);
    free(overrides);
    return status;
}
