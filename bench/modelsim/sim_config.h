/*
 * sim_config.h - the simulator's settings, filled from the command line by
 * modelsim.c and read (never written) by the server and the chat route.
 */
#ifndef KASCADE_MODELSIM_SIM_CONFIG_H
#define KASCADE_MODELSIM_SIM_CONFIG_H

#include <stdint.h>

#include "sim_answer.h"
#include "sim_fault.h"

struct sim_config {
    const char *host; /* numeric IPv4 or IPv6 address; borrowed */
    uint16_t port;    /* 0: the kernel picks a free one */
    int64_t latency_ms;
    int64_t jitter_ms; /* uniform extra delay in [0, jitter_ms] */
    int64_t hang_ms;   /* how long a "hang" holds the connection */
    int64_t max_body;  /* bytes; bigger bodies get 413 */
    unsigned int max_connections;
    struct sim_answer_opts answer;
    struct sim_fault_spec fault;
};

#endif
