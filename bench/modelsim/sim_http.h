/*
 * sim_http.h - the simulator's HTTP server (libmicrohttpd, one thread per
 * connection): POST /v1/chat/completions, GET /stats, POST /stats/reset,
 * GET /healthz.
 */
#ifndef KASCADE_MODELSIM_SIM_HTTP_H
#define KASCADE_MODELSIM_SIM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "sim_config.h"

struct sim_server;

/* Starts listening and serving. cfg is copied; the strings it points to
 * are borrowed and must outlive the server. Returns NULL with a reason in
 * errstr when the address is bad or cannot be bound. */
struct sim_server *sim_server_new(const struct sim_config *cfg,
                                  char *errstr,
                                  size_t errstr_size);

/* Returns the port actually bound (useful after port 0). */
uint16_t sim_server_port(const struct sim_server *srv);

/* Makes sleeping handlers give up, stops the daemon, waits for its
 * threads and frees srv. Accepts NULL. Call from the thread that created
 * srv. */
void sim_server_destroy(struct sim_server *srv);

#endif
