/*
 * worker.h - kascade-worker --tier NAME: consumes its tier's topic, calls
 * the tier's model providers with many calls in flight, and publishes
 * Results (docs/design.md section 6). One thread drives librdkafka and libcurl
 * together; the metrics server runs its own.
 */
#ifndef KASCADE_WORKERS_WORKER_H
#define KASCADE_WORKERS_WORKER_H

#include <stddef.h>

#include "config/config.h"

struct worker;

/* Builds the clients for tier tier_name and subscribes. cfg is borrowed and
 * must outlive the worker. Returns NULL with errstr on failure (an unknown
 * tier, a provider's API key variable unset, Kafka refusing the config). */
struct worker *worker_new(const struct ks_config *cfg,
                          const char *tier_name,
                          char *errstr,
                          size_t errstr_size);

/* Runs until ks_stop_requested, then drains: no new messages, in-flight
 * calls finish up to drain_timeout_ms, their records are acknowledged and
 * offsets committed. Returns 0, or -1 when work was abandoned at the
 * deadline (it will be redelivered). */
int worker_run(struct worker *w);

/* Accepts NULL. */
void worker_destroy(struct worker *w);

#endif
