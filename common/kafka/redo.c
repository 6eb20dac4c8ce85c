/*
 * redo.c - the produce-retry queue (redo.h). A singly linked list: the
 * queue holds a handful of records at most in normal running (a record
 * lands here only after librdkafka gave up on it for message.timeout.ms),
 * so a scan per take is cheaper than keeping it sorted.
 */
#include "redo.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

static void *redo_memdup(const void *buf, size_t len)
{
    void *copy = ks_xmalloc(len ? len : 1);

    if (buf && len) {
        memcpy(copy, buf, len);
    }
    return copy;
}

void ks_redo_push(struct ks_redo *q,
                  const char *topic,
                  const void *key,
                  size_t key_len,
                  const void *value,
                  size_t len,
                  rd_kafka_headers_t *hdrs,
                  void *opaque,
                  int64_t due_ms)
{
    struct ks_redo_rec *r = ks_xcalloc(1, sizeof(*r));

    r->topic = ks_xstrdup(topic);
    r->key = key ? redo_memdup(key, key_len) : NULL;
    r->key_len = key ? key_len : 0;
    r->value = redo_memdup(value, len);
    r->len = len;
    r->hdrs = hdrs;
    r->opaque = opaque;
    r->due_ms = due_ms;
    r->next = q->head;
    q->head = r;
    q->n++;
}

struct ks_redo_rec *ks_redo_take_due(struct ks_redo *q,
                                     int64_t now,
                                     int64_t *wait)
{
    struct ks_redo_rec *due = NULL, **pp = &q->head;

    /* The queue is newest first; prepending each due record to `due`
     * reverses that, so the list returned is oldest first. */
    while (*pp) {
        struct ks_redo_rec *r = *pp;

        if (r->due_ms > now) {
            if (wait && r->due_ms - now < *wait) {
                *wait = r->due_ms - now;
            }
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        r->next = due;
        due = r;
        q->n--;
    }
    return due;
}

void ks_redo_rec_free(struct ks_redo_rec *r)
{
    if (!r) {
        return;
    }
    free(r->topic);
    free(r->key);
    free(r->value);
    if (r->hdrs) {
        rd_kafka_headers_destroy(r->hdrs);
    }
    free(r);
}

size_t ks_redo_count(const struct ks_redo *q)
{
    return q->n;
}
