/*
 * sim_stats.h - the simulator's counters behind GET /stats: chat requests
 * received, normal answers, errors by kind, requests in flight, and the
 * bill: per model, the calls a provider would charge for and their input
 * and output tokens (sim_kind_billed() says which fates are billed). The
 * counters are atomics; the bill takes a mutex. Any connection thread may
 * update them at any time.
 */
#ifndef KASCADE_MODELSIM_SIM_STATS_H
#define KASCADE_MODELSIM_SIM_STATS_H

#include <stdatomic.h>

#include <pthread.h>

#include "sim_answer.h"
#include "sim_fault.h"

/* Models billed apart; the rest share the last slot, "other". */
#define SIM_STATS_MODELS 32

/* Billed calls and tokens of one model (or of all). */
struct sim_bill {
    long long calls;
    long long input_tokens;
    long long output_tokens;
};

struct sim_stats {
    atomic_llong requests; /* chat requests received */
    atomic_llong ok;       /* answered 200 with a well-formed completion */
    atomic_llong errors[SIM_KIND_COUNT];
    atomic_llong inflight; /* chat requests received and not yet finished */
    atomic_llong inflight_peak; /* the most inflight has been at once */
    atomic_llong replay_hit;    /* ok answers taken from the --replay file */
    atomic_llong replay_miss;   /* ok answers to prompts the file lacks */
    atomic_llong escalated;     /* ok answers that were {"escalate": true} */
    pthread_mutex_t bill_lock;  /* guards the fields below */
    struct sim_bill billed;     /* all models */
    int n_models;
    char model_names[SIM_STATS_MODELS][SIM_ANSWER_MODEL_MAX];
    struct sim_bill models[SIM_STATS_MODELS];
};

void sim_stats_init(struct sim_stats *st);

/* Zeroes the counters. inflight is a gauge of live requests and is kept,
 * or it would go negative as they finish; inflight_peak restarts from it. */
void sim_stats_reset(struct sim_stats *st);

/* A chat request begins: inflight goes up, and inflight_peak with it
 * when it is a new peak. Thread-safe. */
void sim_stats_inflight_up(struct sim_stats *st);

/* Bills one call to model (borrowed) with its usage. Thread-safe. */
void sim_stats_bill(struct sim_stats *st,
                    const char *model,
                    long long input_tokens,
                    long long output_tokens);

/* Renders {"requests", "ok", "errors": {"429": n, ...}, "inflight",
 * "replay_hit", "replay_miss", "escalated", "billed": {"calls",
 * "input_tokens", "output_tokens"}, "models": {NAME: {same}}}.
 * Returns a NUL-terminated string the caller owns (free()), or NULL when
 * memory is gone. */
char *sim_stats_json(struct sim_stats *st);

#endif
