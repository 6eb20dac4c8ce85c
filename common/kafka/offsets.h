/*
 * offsets.h - which consumed offsets may be committed.
 *
 * Calls finish out of order; a partition's committable position is the
 * offset after the highest contiguous finished one (docs/design.md section 8;
 * faust #312 committed past unfinished work). The map of out-of-order
 * completions lives here, in memory. Its size per partition is bounded by
 * the consumer, not here: a message already consumed must be tracked, so
 * ks_offsets_track never refuses; the consumer asks ks_offsets_full before
 * it takes the next message of a partition and stops taking from a full
 * one (limits.max_open_offsets) until the window drains below the bound.
 *
 * Each partition carries a generation that changes when it is revoked, so
 * a job that finishes after its partition was lost (and maybe re-assigned)
 * cannot mark a newer delivery of the same offset as done.
 * Not thread-safe: one owner thread.
 */
#ifndef KASCADE_COMMON_KAFKA_OFFSETS_H
#define KASCADE_COMMON_KAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ks_offsets;

/* A consumed message's place: pass it back to ks_offsets_done(). */
struct ks_offset_ticket {
    const char *topic; /* borrowed from the tracker, valid until destroy */
    int32_t partition;
    int64_t offset;
    uint64_t generation;
};

/* Returns a new empty tracker the caller owns, with no window bound
 * (ks_offsets_set_max sets one). */
struct ks_offsets *ks_offsets_new(void);

/* Sets the bound on each partition's window: the tracked offsets not yet
 * behind the committable position. 0: no bound. */
void ks_offsets_set_max(struct ks_offsets *ot, size_t max_open);

/* Returns true when the partition's window holds the bound or more: the
 * consumer must not take another message of it until this turns false
 * (some of the window finished, or the partition was forgotten). */
bool ks_offsets_full(const struct ks_offsets *ot,
                     const char *topic,
                     int32_t partition);

/* Accepts NULL. */
void ks_offsets_destroy(struct ks_offsets *ot);

/* Records that offset was handed out for processing. Offsets of one
 * partition must be tracked in increasing order; an offset not above the
 * last tracked one (a redelivery after a seek) restarts the partition's
 * window at it. Fills *ticket. */
void ks_offsets_track(struct ks_offsets *ot,
                      const char *topic,
                      int32_t partition,
                      int64_t offset,
                      struct ks_offset_ticket *ticket);

/* Marks ticket's offset finished. Returns the partition's new committable
 * position (the next offset to consume) when it advanced, else -1 (a gap
 * remains below, or the ticket is stale after a revocation). */
int64_t ks_offsets_done(struct ks_offsets *ot,
                        const struct ks_offset_ticket *ticket);

/* Forgets a partition (on revocation): its outstanding tickets go stale. */
void ks_offsets_forget(struct ks_offsets *ot,
                       const char *topic,
                       int32_t partition);

/* Returns how many tracked offsets of the partition are not yet behind the
 * committable position (finished out of order or still running). */
size_t ks_offsets_pending(const struct ks_offsets *ot,
                          const char *topic,
                          int32_t partition);

#endif
