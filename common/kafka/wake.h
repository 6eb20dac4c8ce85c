/*
 * wake.h - turns "a librdkafka queue has events" into a readable fd for
 * poll() or curl_multi_poll(). The caller owns the struct and its pipe.
 */
#ifndef KASCADE_COMMON_KAFKA_WAKE_H
#define KASCADE_COMMON_KAFKA_WAKE_H

#include <librdkafka/rdkafka.h>

/* A self-pipe that librdkafka queues write to when they become non-empty.
 * fds[0] is for poll(); call ks_kafka_wake_drain() after it is readable. */
struct ks_kafka_wake {
    int fds[2];
};

/* Returns 0, or -1 with errno. */
int ks_kafka_wake_init(struct ks_kafka_wake *wake);
void ks_kafka_wake_fini(struct ks_kafka_wake *wake);

/* Makes rkqu (borrowed; the caller keeps its reference) wake the pipe. */
void ks_kafka_wake_watch(struct ks_kafka_wake *wake, rd_kafka_queue_t *rkqu);

void ks_kafka_wake_drain(struct ks_kafka_wake *wake);

#endif
