/*
 * sim_stats.h - the simulator's counters behind GET /stats: chat requests
 * received, normal answers, errors by kind, requests in flight. All fields
 * are atomics: any connection thread may bump them at any time.
 */
#ifndef KASCADE_MODELSIM_SIM_STATS_H
#define KASCADE_MODELSIM_SIM_STATS_H

#include <stdatomic.h>

#include "sim_fault.h"

struct sim_stats {
    atomic_llong requests; /* chat requests received */
    atomic_llong ok;       /* answered 200 with a well-formed completion */
    atomic_llong errors[SIM_KIND_COUNT];
    atomic_llong inflight;    /* chat requests received and not yet finished */
    atomic_llong replay_hit;  /* ok answers taken from the --replay file */
    atomic_llong replay_miss; /* ok answers to prompts the file lacks */
    atomic_llong escalated;   /* ok answers that were {"escalate": true} */
};

void sim_stats_init(struct sim_stats *st);

/* Zeroes the counters. inflight is a gauge of live requests and is kept,
 * or it would go negative as they finish. */
void sim_stats_reset(struct sim_stats *st);

/* Renders {"requests", "ok", "errors": {"429": n, ...}, "inflight",
 * "replay_hit", "replay_miss", "escalated"}.
 * Returns a NUL-terminated string the caller owns (free()), or NULL when
 * memory is gone. */
char *sim_stats_json(struct sim_stats *st);

#endif
