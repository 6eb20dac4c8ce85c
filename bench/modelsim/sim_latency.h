/*
 * sim_latency.h - per-request latency distributions for the model
 * simulator: --latency-dist fixed|uniform|lognormal around the median
 * --latency-ms, with its 99th percentile set by --latency-p99-ms. Pure
 * functions of their arguments; thread-safe.
 */
#ifndef KASCADE_MODELSIM_SIM_LATENCY_H
#define KASCADE_MODELSIM_SIM_LATENCY_H

#include <stddef.h>
#include <stdint.h>

/* No request waits longer than a day, whatever the distribution's tail. */
#define SIM_MAX_DELAY_MS (24LL * 3600 * 1000)

enum sim_latency_dist {
    SIM_LATENCY_FIXED = 0, /* always the median (plus --jitter-ms) */
    SIM_LATENCY_UNIFORM,   /* uniform, symmetric around the median */
    SIM_LATENCY_LOGNORMAL, /* log-normal: a long right tail */
};

/* The distribution and its parameters: plain data, copied freely. */
struct sim_latency {
    enum sim_latency_dist dist;
    int64_t median_ms; /* --latency-ms */
    int64_t p99_ms;    /* --latency-p99-ms; 0: the distribution's default */
};

/* Parses "fixed", "uniform" or "lognormal". Returns 0, or -1. */
int sim_latency_dist_parse(const char *name, enum sim_latency_dist *dist);

/* Checks the parameters together (a p99 below the median is an error, as
 * is a p99 without a distribution to apply it to). Returns 0, or -1 with
 * a reason in errstr. */
int sim_latency_check(const struct sim_latency *lat,
                      char *errstr,
                      size_t errstr_size);

/* Returns the p99 actually used: p99_ms, or the default (twice the median
 * for uniform, four times for lognormal, the median for fixed). */
int64_t sim_latency_p99(const struct sim_latency *lat);

/* Returns one request's delay in ms, in [0, max_ms], from 64 uniformly
 * random bits (the simulator derives them from --seed and the request's
 * number, so a run is reproducible). */
int64_t sim_latency_draw(const struct sim_latency *lat,
                         uint64_t bits,
                         int64_t max_ms);

#endif
