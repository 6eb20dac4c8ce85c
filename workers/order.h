/*
 * order.h - ordering "key" (order.c): at most one task per message key in
 * flight, in arrival order. The set of claimed keys is owned by the worker
 * (w->order_set); the jobs are borrowed and left unchanged. Event-loop
 * thread only.
 */
#ifndef KASCADE_WORKERS_ORDER_H
#define KASCADE_WORKERS_ORDER_H

#include "worker_internal.h"

/* Starts a pass over the jobs (a new, empty set of claimed keys). */
void order_begin(struct worker *w);

/* May job go on? False when an older unfinished job has its key; else
 * claims the key for this pass. Always true when the tier is unordered. */
bool order_claim(struct worker *w, const struct job *job);

#endif
