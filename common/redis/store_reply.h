/*
 * store_reply.h - waiting for one Redis reply without blocking the
 * caller's other I/O: the store's pump (store.h ks_store_set_pump). Used
 * by store.c only; no state of its own; one thread, the store's.
 */
#ifndef KASCADE_COMMON_REDIS_STORE_REPLY_H
#define KASCADE_COMMON_REDIS_STORE_REPLY_H

#include <stdint.h>

#include <hiredis/hiredis.h>

#include "redis/store.h"

/* Reads one reply from c, as redisGetReply, but waits in poll() on the
 * socket in slices of a few milliseconds and runs pump(arg) between them,
 * so that the caller's other I/O (a worker's HTTP calls) goes on while
 * Redis is slow (DEBUG SLEEP, a fork, a busy script). Gives up after
 * timeout_ms, as the socket's own timeout would, with c->err set.
 * Returns REDIS_OK with *out set, or REDIS_ERR. */
int ks_store_reply_pumped(redisContext *c,
                          int64_t timeout_ms,
                          ks_store_pump_fn *pump,
                          void *arg,
                          void **out);

#endif
