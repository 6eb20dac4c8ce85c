/*
 * router.h - kascade-router: consumes kascade.tasks and
 * kascade.escalations, decides each task's tier (route.h) and republishes
 * it to kascade.tier.<tier>, answers what cannot run (budget_exceeded,
 * the best answer of a finished escalation), or dead-letters it.
 * One thread; the metrics server runs its own.
 */
#ifndef KASCADE_ROUTER_ROUTER_H
#define KASCADE_ROUTER_ROUTER_H

#include <stddef.h>

#include "config/config.h"
#include "process/daemon.h"

struct router;

/* The learned difficulty scorer (routing.score_model), plugged in by
 * main() so the router does not depend on the model's module: load a
 * model file (NULL with errstr on failure), destroy it (accepts NULL),
 * and score a task in [0, 1] (text: its input and messages, as one
 * string; the task's type and metadata are features of models trained
 * with them). All three run on the router's thread. */
struct router_scorer {
    void *(*load)(const char *path, char *errstr, size_t errstr_size);
    void (*destroy)(void *model);
    double (*score)(const void *model,
                    const struct ks_task *task,
                    const char *text,
                    size_t len);
};

/* Builds the Kafka clients and the Redis store and subscribes. Takes
 * ownership of cfg (also on failure). cl is borrowed and must outlive the
 * router: SIGHUP reloads its file with its overrides. Returns NULL with
 * errstr on failure. */
struct router *router_new(struct ks_config *cfg,
                          const struct ks_cmdline *cl,
                          char *errstr,
                          size_t errstr_size);

/* Installs the scorer (sc borrowed, must outlive the router) and loads
 * routing.score_model with it, when set. Without a scorer the score step
 * is skipped (logged once when a model is configured). Returns 0, or -1
 * with errstr when the model does not load. */
int router_set_scorer(struct router *rt,
                      const struct router_scorer *sc,
                      char *errstr,
                      size_t errstr_size);

/* Runs until ks_stop_requested, reloading the config on SIGHUP, then
 * drains: waits (up to the config's drain_timeout_ms) for every produced
 * record to be acknowledged, stores the offsets and closes the consumer
 * (committing them). Held (deferred) records are not committed: they come
 * back on restart. Returns 0, or -1 when records were still
 * unacknowledged at the deadline. */
int router_run(struct router *rt);

/* Accepts NULL. */
void router_destroy(struct router *rt);

#endif
