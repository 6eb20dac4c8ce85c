/*
 * lag.c - the consumer-lag gauge (see lag.h). A partition counts once its
 * position and high watermark are known: before its first fetch it adds
 * nothing rather than a guess.
 */
#include "kafka/lag.h"

#include <stdbool.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

void ks_kafka_lag_init(struct ks_kafka_lag *lag, struct ks_metrics *m)
{
    lag->fam = ks_metrics_family(
        m, "kascade_consumer_lag",
        "Messages of the topic's assigned partitions this consumer has not "
        "taken yet (high watermark minus position).",
        KS_METRIC_GAUGE, "topic");
    lag->next_ms = 0;
}

/* The lag of one assigned partition: taken and unfinished, plus not taken
 * (0 while its position or watermark is unknown). */
static int64_t partition_lag(rd_kafka_t *rk,
                             const struct ks_offsets *ot,
                             const rd_kafka_topic_partition_t *p)
{
    int64_t lo = 0, hi = 0,
            pending = (int64_t)ks_offsets_pending(ot, p->topic, p->partition);

    if (p->offset < 0 ||
        rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < p->offset) {
        return pending;
    }
    return pending + hi - p->offset;
}

/* The sum over topic's partitions in parts. */
static int64_t topic_lag(rd_kafka_t *rk,
                         const struct ks_offsets *ot,
                         const rd_kafka_topic_partition_list_t *parts,
                         const char *topic)
{
    int64_t sum = 0;

    for (int j = 0; j < parts->cnt; j++) {
        if (strcmp(parts->elems[j].topic, topic) == 0) {
            sum += partition_lag(rk, ot, &parts->elems[j]);
        }
    }
    return sum;
}

/* Is topic among the first n elements of list? */
static bool listed(const rd_kafka_topic_partition_list_t *list,
                   const char *topic,
                   int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(list->elems[i].topic, topic) == 0) {
            return true;
        }
    }
    return false;
}

void ks_kafka_lag_tick(struct ks_kafka_lag *lag,
                       rd_kafka_t *rk,
                       const struct ks_offsets *ot)
{
    rd_kafka_topic_partition_list_t *subs = NULL, *parts = NULL;
    int64_t now = ks_mono_ms();

    if (now < lag->next_ms) {
        return;
    }
    lag->next_ms = now + KS_KAFKA_LAG_INTERVAL_MS;
    if (rd_kafka_subscription(rk, &subs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_position(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        goto out;
    }
    /* Each subscribed topic, 0 when none of it is assigned here. */
    for (int i = 0; i < subs->cnt; i++) {
        if (subs->elems[i].topic[0] != '^') {
            ks_metrics_set(
                lag->fam,
                (double)topic_lag(rk, ot, parts, subs->elems[i].topic),
                subs->elems[i].topic);
        }
    }
    /* Topics assigned through a pattern subscription, once each. */
    for (int j = 0; j < parts->cnt; j++) {
        const char *topic = parts->elems[j].topic;

        if (!listed(subs, topic, subs->cnt) && !listed(parts, topic, j)) {
            ks_metrics_set(lag->fam, (double)topic_lag(rk, ot, parts, topic),
                           topic);
        }
    }

out:
    if (subs) {
        rd_kafka_topic_partition_list_destroy(subs);
    }
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
}
