/*
 * offsets.c - per-partition windows of tracked offsets.
 *
 * A window is a ring of (offset, done) in consumption order. Offsets within
 * a partition need not be contiguous (compaction, transaction markers), so
 * the ring stores them rather than assuming offset+1. Finishing pops every
 * done entry at the head; the position is then last popped offset + 1.
 * Lookup of a finishing offset is a binary search over the ring.
 */
#include "kafka/offsets.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

struct slot {
    int64_t offset;
    bool done;
};

struct window {
    char *topic;
    int32_t partition;
    uint64_t generation;
    int64_t last; /* highest offset tracked in this generation, or -1 */
    struct slot *ring;
    size_t cap, head, len;
};

struct ks_offsets {
    struct window *w;
    size_t n, cap;
    uint64_t next_generation;
    size_t max_open; /* 0: no bound */
};

struct ks_offsets *ks_offsets_new(void)
{
    struct ks_offsets *ot = ks_xcalloc(1, sizeof(*ot));

    ot->next_generation = 1;
    return ot;
}

void ks_offsets_destroy(struct ks_offsets *ot)
{
    if (!ot) {
        return;
    }
    for (size_t i = 0; i < ot->n; i++) {
        free(ot->w[i].topic);
        free(ot->w[i].ring);
    }
    free(ot->w);
    free(ot);
}

void ks_offsets_set_max(struct ks_offsets *ot, size_t max_open)
{
    ot->max_open = max_open;
}

static struct window *find(const struct ks_offsets *ot,
                           const char *topic,
                           int32_t partition)
{
    for (size_t i = 0; i < ot->n; i++) {
        if (ot->w[i].partition == partition &&
            strcmp(ot->w[i].topic, topic) == 0) {
            return &ot->w[i];
        }
    }
    return NULL;
}

static struct window *find_or_add(struct ks_offsets *ot,
                                  const char *topic,
                                  int32_t partition)
{
    struct window *w = find(ot, topic, partition);

    if (w) {
        return w;
    }
    if (ot->n == ot->cap) {
        ot->cap = ot->cap ? ot->cap * 2 : 8;
        ot->w = ks_xrealloc(ot->w, ot->cap * sizeof(*ot->w));
    }
    w = &ot->w[ot->n++];
    memset(w, 0, sizeof(*w));
    w->topic = ks_xstrdup(topic);
    w->partition = partition;
    w->generation = ot->next_generation++;
    w->last = -1;
    return w;
}

static struct slot *at(const struct window *w, size_t i)
{
    return &w->ring[(w->head + i) % w->cap];
}

static void grow(struct window *w)
{
    size_t cap = w->cap ? w->cap * 2 : 64;
    struct slot *ring = ks_xmalloc(cap * sizeof(*ring));

    for (size_t i = 0; i < w->len; i++) {
        ring[i] = *at(w, i);
    }
    free(w->ring);
    w->ring = ring;
    w->cap = cap;
    w->head = 0;
}

void ks_offsets_track(struct ks_offsets *ot,
                      const char *topic,
                      int32_t partition,
                      int64_t offset,
                      struct ks_offset_ticket *ticket)
{
    struct window *w = find_or_add(ot, topic, partition);

    if (w->last >= offset) {
        /* Redelivery from an earlier position: the old window's tickets
         * must not count for the new deliveries. */
        w->len = 0;
        w->head = 0;
        w->generation = ot->next_generation++;
    }
    if (w->len == w->cap) {
        grow(w);
    }
    *at(w, w->len++) = (struct slot){offset, false};
    w->last = offset;
    ticket->topic = w->topic;
    ticket->partition = partition;
    ticket->offset = offset;
    ticket->generation = w->generation;
}

/* Binary search for offset in the window; returns its index or -1. */
static long search(const struct window *w, int64_t offset)
{
    size_t lo = 0, hi = w->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t o = at(w, mid)->offset;

        if (o == offset) {
            return (long)mid;
        }
        if (o < offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

int64_t ks_offsets_done(struct ks_offsets *ot,
                        const struct ks_offset_ticket *ticket)
{
    struct window *w = find(ot, ticket->topic, ticket->partition);
    int64_t position = -1;
    long i;

    if (!w || w->generation != ticket->generation) {
        return -1;
    }
    i = search(w, ticket->offset);
    if (i < 0) {
        return -1;
    }
    at(w, (size_t)i)->done = true;
    while (w->len > 0 && at(w, 0)->done) {
        position = at(w, 0)->offset + 1;
        w->head = (w->head + 1) % w->cap;
        w->len--;
    }
    return position;
}

void ks_offsets_forget(struct ks_offsets *ot,
                       const char *topic,
                       int32_t partition)
{
    struct window *w = find(ot, topic, partition);

    if (w) {
        w->len = 0;
        w->head = 0;
        w->last = -1;
        w->generation = ot->next_generation++;
    }
}

size_t ks_offsets_pending(const struct ks_offsets *ot,
                          const char *topic,
                          int32_t partition)
{
    const struct window *w = find(ot, topic, partition);

    return w ? w->len : 0;
}

bool ks_offsets_full(const struct ks_offsets *ot,
                     const char *topic,
                     int32_t partition)
{
    return ot->max_open > 0 &&
           ks_offsets_pending(ot, topic, partition) >= ot->max_open;
}
