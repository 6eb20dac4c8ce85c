/*
 * rebalance.h - the consumer's rebalance callback and the end of the
 * batch's transaction (rebalance.c). Router thread only (librdkafka calls
 * the callback from rd_kafka_consumer_poll and close on it).
 */
#ifndef KASCADE_ROUTER_REBALANCE_H
#define KASCADE_ROUTER_REBALANCE_H

#include <librdkafka/rdkafka.h>

struct router;

/* Ends the batch's transaction (no-op without router.transactions);
 * after an abort rewinds the input to the committed offsets. */
void router_commit_batch(struct router *rt);

/* The consumer's rebalance callback (opaque: the router). Before
 * partitions go: commits the batch, flushes the producer (up to
 * drain_timeout_ms), forgets their offsets; a lost assignment commits
 * nothing. On assignment: the deferred topic's rounds start (defer.h). */
void router_on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque);

#endif
