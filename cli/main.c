/*
 * kascade - the operator and producer tool:
 *   kascade [-c FILE] [-X key=value]... SUBCOMMAND ...
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "cli.h"
#include "config/config.h"
#include "process/daemon.h"

#include "base/banned.h"

/* Each command and its lines of the usage; the whole usage lists them
 * all, `kascade COMMAND --help` its own, without reading a config. */
static const struct command {
    const char *name;
    const char *help;
} commands[] = {
    {"submit",
     "  submit FILE.jsonl [--wait] [-o results.jsonl] [--timeout SEC]\n"
     "                       produce tasks (one JSON per line; - for "
     "stdin);\n"
     "                       a line that cannot be a task is reported as\n"
     "                       'line N: reason' and skipped; progress on "
     "stderr\n"},
    {"topics", "  topics create [--tenant NAME]...\n"
               "                       create every kascade topic "
               "(idempotent), and\n"
               "                       each tenant's tasks topic "
               "(topics.tenant_topics)\n"},
    {"dlq", "  dlq list [--max N]   show dead-lettered messages\n"
            "  dlq replay [--error CODE]\n"
            "                       send dead-lettered messages back, once "
            "each\n"},
    {"budget",
     "  budget show [--json] [--day YYYYMMDD]\n"
     "                       today's spend against each daily budget\n"
     "  budget set TIER USD|none, budget set-tenant NAME USD|none\n"
     "                       set (none: clear) a runtime daily limit\n"
     "  budget reset TIER [--yes]\n"
     "                       set today's spend of a tier back to 0\n"},
    {"status",
     "  status [--json] [--watch [SEC]] [--metrics URL[,URL...]]\n"
     "                       the fleet on one screen: lag, members, rates, "
     "spend,\n"
     "                       circuits (from the workers' /metrics), DLQ\n"},
    {"train", "  train --kind router|triage -i FILE.jsonl -o MODEL [--holdout "
              "0.2]\n"
              "        [--epochs N] [--bits B] [--seed N]\n"
              "                       fit the learned difficulty score or the "
              "triage\n"
              "                       classifier (train --help for more)\n"},
    {"eval", "  eval -i OUTCOMES.jsonl [--verifier V] [--score-model M] "
             "[--svg-dir D]\n"
             "                       quality, cost, latency per tier and "
             "type; routing and\n"
             "                       cascade curves, CPT, APGR, sweeps, "
             "reliability, plots\n"
             "  eval --kind router|triage --model MODEL -i TEST.jsonl\n"
             "                       router: accuracy against share of strong "
             "calls,\n"
             "                       CPT(50%), CPT(80%); triage: accuracy, "
             "calibration\n"},
    {"tune", "  tune -i TRAIN.jsonl --target top-1|Q [--test TEST.jsonl] "
             "[-o FRAG.json]\n"
             "  tune --check CONFIG -i OUTCOMES.jsonl\n"
             "                       thresholds at the least cost for a "
             "quality target,\n"
             "                       or what a config's give (tune --help)\n"},
    {"devbroker", "  devbroker [--ready-file F]\n"
                  "                       embedded in-memory Kafka on loopback "
                  "(demo only)\n"},
};

#define USAGE_HEAD                                                             \
    "usage: kascade [-c kascade.json] [-X key=value]... COMMAND [ARGS]\n"
#define USAGE_TAIL                                                             \
    "The config file defaults to $KASCADE_CONFIG or kascade.json.\n"

static void print_usage(FILE *fp)
{
    fputs(USAGE_HEAD "commands:\n", fp);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fputs(commands[i].help, fp);
    }
    fputs(USAGE_TAIL, fp);
}

static const struct command *command_of(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

/* Does the command's own part of argv ask for help? */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return true;
        }
    }
    return false;
}

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
        print_usage(r > 0 ? stdout : stderr);
        free(overrides);
        return r > 0 ? 0 : 2;
    }
    ks_daemon_signals();
    cmd = argv[c];
    if (!command_of(cmd)) {
        fprintf(stderr, "kascade: unknown command '%s'\n", cmd);
        print_usage(stderr);
        goto out;
    }
    if (strcmp(cmd, "train") == 0 || strcmp(cmd, "eval") == 0 ||
        strcmp(cmd, "tune") == 0) {
        /* Offline commands: no config, no broker. */
        status = strcmp(cmd, "train") == 0  ? cli_train(argc - c, argv + c)
                 : strcmp(cmd, "eval") == 0 ? cli_eval(argc - c, argv + c)
                                            : cli_tune(argc - c, argv + c);
        goto out;
    }
    if (wants_help(argc - c, argv + c)) {
        /* No config needed to read how a command is used. */
        fputs(USAGE_HEAD, stdout);
        fputs(command_of(cmd)->help, stdout);
        fputs(USAGE_TAIL, stdout);
        status = 0;
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
    } else if (strcmp(cmd, "status") == 0) {
        status = cli_status(cfg, argc - c, argv + c);
    } else {
        status = cli_devbroker(cfg, argc - c, argv + c);
    }

out:
    ks_config_destroy(cfg);
    free(overrides);
    return status;
}
