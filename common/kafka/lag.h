/*
 * lag.h - kascade_consumer_lag{topic}: how many messages of each
 * subscribed topic this consumer's assigned partitions have not finished:
 * not taken yet (high watermark minus position, the next offset the
 * application takes, both as librdkafka last saw them: no broker round
 * trip), plus those taken whose offsets cannot be committed yet (the
 * owner's offset tracker). Pool-wide lag
 * is the sum over a group's members; KEDA reads it from the group's
 * committed offsets instead. The struct is embedded in its owner; one
 * thread.
 */
#ifndef KASCADE_COMMON_KAFKA_LAG_H
#define KASCADE_COMMON_KAFKA_LAG_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "base/metrics.h"
#include "kafka/offsets.h"

/* How often ks_kafka_lag_tick refreshes the gauge. */
#define KS_KAFKA_LAG_INTERVAL_MS 5000

struct ks_kafka_lag {
    struct ks_metric_family *fam; /* borrowed from the metrics registry */
    int64_t next_ms;              /* monotonic: the next refresh */
};

/* Registers the gauge in m (borrowed; it outlives lag). */
void ks_kafka_lag_init(struct ks_kafka_lag *lag, struct ks_metrics *m);

/* At most every KS_KAFKA_LAG_INTERVAL_MS: sets each subscribed topic's
 * gauge to the sum over its assigned partitions (0 for a topic with none
 * assigned, or none fetched yet). ot (borrowed) is rk's offset tracker. */
void ks_kafka_lag_tick(struct ks_kafka_lag *lag,
                       rd_kafka_t *rk,
                       const struct ks_offsets *ot);

#endif
