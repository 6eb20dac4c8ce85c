/*
 * sim_config.h - the simulator's settings, filled from the command line by
 * modelsim.c and read (never written) by the server and the chat route.
 */
#ifndef KASCADE_MODELSIM_SIM_CONFIG_H
#define KASCADE_MODELSIM_SIM_CONFIG_H

#include <stdint.h>

#include "sim_answer.h"
#include "sim_fault.h"
#include "sim_latency.h"
#include "sim_schedule.h"

struct sim_config {
    const char *host;   /* numeric IPv4 or IPv6 address; borrowed */
    uint16_t port;      /* 0: the kernel picks a free one */
    int64_t latency_ms; /* the median with --latency-dist */
    int64_t jitter_ms;  /* uniform extra delay in [0, jitter_ms] */
    enum sim_latency_dist latency_dist;
    int64_t latency_p99_ms; /* 0: the distribution's default */
    int64_t hang_ms;        /* how long a "hang" holds the connection, and
                               how late a "timeout" answers */
    int64_t huge_bytes;     /* the body of a "huge" answer */
    int64_t max_body;       /* bytes; bigger bodies get 413 */
    unsigned int max_connections;
    struct sim_answer_opts answer;
    struct sim_fault_spec fault;
    struct sim_schedule schedule; /* --fault-schedule; n == 0: none */
    const char *replay_path;      /* --replay; borrowed; loaded by main() */
    const char *replay_model;     /* --replay-model; borrowed */
};

#endif
