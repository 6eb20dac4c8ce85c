/*
 * order.h - ordering "key" (order.c): at most one task per message key in
 * flight, in arrival order, and a hot key never fills the backlog.
 *
 * A keyed job that finds its key free holds it (it joins the worker's job
 * list as usual); one that finds it held waits in the key's queue,
 * outside the job list and the backlog (w->max_jobs), until the holder
 * leaves; then it holds the key and joins the list. A key's queue is
 * bounded by the tier's key_queue_bytes: while one of a partition's key
 * queues is over it, the worker takes nothing more from that partition.
 *
 * Ownership: the key table (w->order) is the worker's, created on first
 * use and freed by order_fini; the jobs are borrowed (job.c owns them,
 * links and frees them; order.c never changes one). The per-pass set
 * (w->order_set) is the worker's too. Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_ORDER_H
#define KASCADE_WORKERS_ORDER_H

#include "worker_internal.h"

enum order_verdict {
    ORDER_FREE, /* not ordered (no key, or the tier is unordered) */
    ORDER_HOLD, /* the key was free: the job holds it now */
    ORDER_WAIT, /* an older job holds the key: park this one */
};

/* A job was accepted (its task decoded, no call made yet): may it go on?
 * ORDER_WAIT: the caller takes it out of the job list and calls
 * order_park. */
enum order_verdict order_enter(struct worker *w, const struct job *job);

/* Queues job (ORDER_WAIT, out of the job list) behind its key's holder,
 * counting its message's bytes against key_queue_bytes. */
void order_park(struct worker *w, struct job *job);

/* The holder job of its key is done (about to be freed): returns the next
 * waiting job of the key, which holds the key from now on (the caller
 * links or drops it, and calls order_leave for it in turn), or NULL when
 * none waits (the key is free). */
struct job *order_leave(struct worker *w, const struct job *job);

/* True while one of the partition's key queues is over key_queue_bytes:
 * take nothing more from it (fetch.c). */
bool order_partition_full(const struct worker *w,
                          const char *topic,
                          int32_t partition);

/* Jobs waiting in key queues, and their bytes (tests, logs). */
size_t order_waiting(const struct worker *w, size_t *bytes);

/* Starts a pass over the jobs (a new, empty set of claimed keys). */
void order_begin(struct worker *w);

/* May job go on in this pass? False when an older unfinished job of the
 * list has its key (two keys whose hashes collide count as one); else
 * claims the key for this pass. Always true when the tier is unordered. */
bool order_claim(struct worker *w, const struct job *job);

/* Frees the key table; every job must be gone by then. Accepts a worker
 * that never used it. */
void order_fini(struct worker *w);

#endif
