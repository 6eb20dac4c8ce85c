/*
 * fetch.h - taking tasks from the assigned partitions' own queues
 * (fetch.c). The partition queues are owned by the worker (w->parts);
 * each message taken is handed to job_accept, which takes ownership.
 * Event-loop thread only.
 */
#ifndef KASCADE_WORKERS_FETCH_H
#define KASCADE_WORKERS_FETCH_H

#include "worker_internal.h"

/* Splits the queues of newly assigned partitions off the consumer queue. */
void fetch_assign(struct worker *w,
                  const rd_kafka_topic_partition_list_t *parts);

/* Drops the queues of revoked partitions (NULL: all). */
void fetch_revoke(struct worker *w,
                  const rd_kafka_topic_partition_list_t *parts);

/* Accepts messages round robin while the backlog has room; returns how
 * many. */
size_t fetch_pull(struct worker *w);

void fetch_fini(struct worker *w);

#endif
