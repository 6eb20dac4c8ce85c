/*
 * wake.c - a self-pipe that librdkafka queues write to when they become
 * non-empty, so one poll() or curl_multi_poll() waits on Kafka too.
 */
#include "kafka/wake.h"

#include <fcntl.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "base/banned.h"

int ks_kafka_wake_init(struct ks_kafka_wake *wake)
{
    if (pipe2(wake->fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        return -1;
    }
    return 0;
}

void ks_kafka_wake_fini(struct ks_kafka_wake *wake)
{
    close(wake->fds[0]);
    close(wake->fds[1]);
}

void ks_kafka_wake_watch(struct ks_kafka_wake *wake, rd_kafka_queue_t *rkqu)
{
    rd_kafka_queue_io_event_enable(rkqu, wake->fds[1], "w", 1);
}

void ks_kafka_wake_drain(struct ks_kafka_wake *wake)
{
    char buf[256];

    while (read(wake->fds[0], buf, sizeof(buf)) > 0) {
    }
}
