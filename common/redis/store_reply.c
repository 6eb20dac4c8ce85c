/*
 * store_reply.c - one Redis reply awaited with the store's pump running
 * (store_reply.h). Split from store.c.
 */
#include "redis/store_reply.h"

#include <errno.h>
#include <stdio.h>

#include <poll.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define PUMP_SLICE_MS 5

static int reply_fail(redisContext *c, const char *why)
{
    c->err = REDIS_ERR_IO;
    snprintf(c->errstr, sizeof(c->errstr), "%s", why);
    return REDIS_ERR;
}

/* Writes what hiredis buffered, as redisGetReply does first. */
static int flush_out(redisContext *c)
{
    int done = 0;

    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return REDIS_ERR;
        }
    }
    return REDIS_OK;
}

int ks_store_reply_pumped(redisContext *c,
                          int64_t timeout_ms,
                          ks_store_pump_fn *pump,
                          void *arg,
                          void **out)
{
    int64_t deadline;

    if (flush_out(c) != REDIS_OK) {
        return REDIS_ERR;
    }
    deadline = ks_mono_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int64_t left;
        int n;

        if (redisGetReplyFromReader(c, out) != REDIS_OK) {
            return REDIS_ERR;
        }
        if (*out) {
            return REDIS_OK;
        }
        left = deadline - ks_mono_ms();
        if (left <= 0) {
            return reply_fail(c, "Resource temporarily unavailable (timeout)");
        }
        n = poll(&p, 1, (int)(left < PUMP_SLICE_MS ? left : PUMP_SLICE_MS));
        if (n > 0) {
            if (redisBufferRead(c) != REDIS_OK) {
                return REDIS_ERR;
            }
        } else if (n == 0) {
            pump(arg);
        } else if (errno != EINTR) {
            char buf[128];

            return reply_fail(c, ks_strerror(errno, buf, sizeof(buf)));
        }
    }
}
