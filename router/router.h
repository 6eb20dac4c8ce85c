/*
 * router.h - kascade-router: consumes kascade.tasks, decides each task's
 * tier and republishes it to kascade.tier.<tier>, or dead-letters it.
 * One thread; the metrics server runs its own.
 */
#ifndef KASCADE_ROUTER_ROUTER_H
#define KASCADE_ROUTER_ROUTER_H

#include <stddef.h>

#include "config.h"

struct router;

/* Builds the Kafka clients and subscribes. cfg is borrowed and must
 * outlive the router. Returns NULL with errstr on failure. */
struct router *router_new(const struct ks_config *cfg,
                          char *errstr,
                          size_t errstr_size);

/* Runs until ks_stop_requested, then drains: waits (up to the config's
 * drain_timeout_ms) for every produced record to be acknowledged, stores
 * the offsets and closes the consumer (committing them). Returns 0, or -1
 * when records were still unacknowledged at the deadline. */
int router_run(struct router *rt);

/* Accepts NULL. */
void router_destroy(struct router *rt);

#endif
