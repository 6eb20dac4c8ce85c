/*
 * redo.h - the produce-retry queue: records the producer refused or could
 * not deliver, kept with their headers and opaque until their backoff
 * (ks_kafka_produce_backoff_ms) is over, then handed back to be produced
 * again. The router keeps one for all its records, the worker one per job.
 * The policy (how many tries, what goes to the DLQ) stays with the caller.
 *
 * Ownership: a queue owns its records; a record owns its copies of topic,
 * key and value and its headers. The opaque is the caller's: never freed
 * here. Thread rule: none; one thread per queue.
 */
#ifndef KASCADE_COMMON_KAFKA_REDO_H
#define KASCADE_COMMON_KAFKA_REDO_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* One record to produce again at due_ms (monotonic). */
struct ks_redo_rec {
    char *topic;
    void *key; /* NULL when produced without a key */
    size_t key_len;
    void *value; /* never NULL, even when len is 0 */
    size_t len;
    rd_kafka_headers_t *hdrs; /* may be NULL */
    void *opaque;             /* the caller's */
    int64_t due_ms;
    struct ks_redo_rec *next;
};

/* Embedded in its owner; zeroed is empty. */
struct ks_redo {
    struct ks_redo_rec *head;
    size_t n;
};

/* Keeps a copy of topic, key (may be NULL) and value (may be NULL when
 * len is 0) to produce again at due_ms. Takes ownership of hdrs (may be
 * NULL); opaque is stored as it is. */
void ks_redo_push(struct ks_redo *q,
                  const char *topic,
                  const void *key,
                  size_t key_len,
                  const void *value,
                  size_t len,
                  rd_kafka_headers_t *hdrs,
                  void *opaque,
                  int64_t due_ms);

/* Takes out the records due at now (due_ms <= now; INT64_MAX takes all)
 * and returns them as a list linked by next, oldest push first; the
 * caller owns them (free each with ks_redo_rec_free). When wait is not
 * NULL it is lowered to the ms until the next record left in the queue.
 * Taking them out first lets the caller push again while it goes through
 * the list. */
struct ks_redo_rec *ks_redo_take_due(struct ks_redo *q,
                                     int64_t now,
                                     int64_t *wait);

/* Frees one record taken out: its copies and its headers (set r->hdrs to
 * NULL first when they were handed on), never its opaque. Accepts NULL. */
void ks_redo_rec_free(struct ks_redo_rec *r);

/* The number of records waiting. */
size_t ks_redo_count(const struct ks_redo *q);

#endif
