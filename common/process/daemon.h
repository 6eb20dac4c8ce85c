/*
 * daemon.h - what every kascade daemon's main() shares: signal flags,
 * the common command line (-c FILE, -X key=value, --log-level) and the
 * config load that stops start-up with the file, key and reason.
 * Ownership: struct ks_cmdline borrows its strings from argv, but its
 * overrides array is the caller's to free; ks_daemon_config returns a
 * config the caller owns (ks_config_destroy). Call from main() only.
 */
#ifndef KASCADE_COMMON_PROCESS_DAEMON_H
#define KASCADE_COMMON_PROCESS_DAEMON_H

#include <signal.h>
#include <stddef.h>

#include "config/config.h"

/* Set by SIGTERM/SIGINT and SIGHUP; the handlers do nothing else. */
extern volatile sig_atomic_t ks_stop_requested;
extern volatile sig_atomic_t ks_reload_requested;

/* Installs the handlers (sigaction) and ignores SIGPIPE. */
void ks_daemon_signals(void);

struct ks_cmdline {
    const char *config_path; /* -c; default $KASCADE_CONFIG or kascade.json */
    const char **overrides;  /* -X values, borrowed from argv */
    size_t n_overrides;
    const char *log_level; /* --log-level, or NULL */
    const char *tier;      /* --tier (worker only), or NULL */
};

/* Parses argv. usage is printed on -h or an error. Returns 0 to go on,
 * 1 when -h was given (exit 0), -1 on a usage error (exit 2). The caller
 * frees cl->overrides. */
int ks_cmdline_parse(struct ks_cmdline *cl,
                     int argc,
                     char **argv,
                     const char *usage,
                     int want_tier);

/* Loads the config named by cl and applies the log level. Returns the
 * config, or NULL after logging "config: FILE: key 'K': reason". */
struct ks_config *ks_daemon_config(const struct ks_cmdline *cl);

#endif
