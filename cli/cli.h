/*
 * cli.h - the subcommands of `kascade`, the operator and producer tool.
 * Each takes the arguments after its name (argv[0] is the subcommand) and
 * the loaded config, and returns the process exit status.
 * Ownership: argv and the config are borrowed; each subcommand frees
 * whatever it allocates before it returns.
 */
#ifndef KASCADE_CLI_CLI_H
#define KASCADE_CLI_CLI_H

#include "config/config.h"

int cli_submit(const struct ks_config *cfg, int argc, char **argv);
int cli_topics(const struct ks_config *cfg, int argc, char **argv);
int cli_dlq(const struct ks_config *cfg, int argc, char **argv);
int cli_budget(const struct ks_config *cfg, int argc, char **argv);
int cli_status(const struct ks_config *cfg, int argc, char **argv);

/* train, eval and tune need no config: main() runs them before loading it. */
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_tune(int argc, char **argv);

/* devbroker reads only topics and partitions from cfg. */
int cli_devbroker(const struct ks_config *cfg, int argc, char **argv);

/* Names of every topic kascade uses, for topics create and devbroker.
 * Returns the count; names[i] are heap strings the caller frees. */
size_t cli_topic_names(const struct ks_config *cfg, char ***names);

#endif
