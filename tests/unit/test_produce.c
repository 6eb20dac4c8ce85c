/*
 * test_produce.c - how produce and delivery errors are sorted: a record too
 * large for the broker, a topic that will never take it (missing, invalid,
 * not ours to write), a dead producer, and everything that may pass later.
 * The worker and the router act on this: too large becomes a `failed`
 * Result plus a DLQ entry, permanent goes to the DLQ at once, the rest is
 * produced again after a backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kafka/produce.h"

#include "base/banned.h"

static void produce_fault_no_error_is_ok(void **state)
{
    (void)state;
    assert_int_equal(ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_NO_ERROR), KS_OK);
}

static void produce_fault_message_too_large_is_too_large(void **state)
{
    (void)state;
    /* the broker's message.max.bytes and the client's own check (librdkafka
     * 2.0 reports both as MSG_SIZE_TOO_LARGE) */
    assert_int_equal(
        ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE),
        KS_ERR_TOO_LARGE);
    assert_int_equal(
        ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE),
        KS_ERR_TOO_LARGE);
}

static void produce_fault_authorization_is_permanent(void **state)
{
    (void)state;
    assert_int_equal(
        ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
        KS_ERR_INVALID);
    assert_int_equal(
        ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED),
        KS_ERR_INVALID);
}

static void produce_fault_missing_or_invalid_topic_is_permanent(void **state)
{
    (void)state;
    assert_int_equal(ks_kafka_produce_fault(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC),
                     KS_ERR_INVALID);
    assert_int_equal(
        ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
        KS_ERR_INVALID);
    assert_int_equal(ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION),
                     KS_ERR_INVALID);
    assert_int_equal(ks_kafka_produce_fault(RD_KAFKA_RESP_ERR_INVALID_RECORD),
                     KS_ERR_INVALID);
}

static void produce_fault_dead_producer_is_fatal(void **state)
{
    (void)state;
    assert_int_equal(ks_kafka_produce_fault(RD_KAFKA_RESP_ERR__FATAL),
                     KS_ERR_FATAL);
}

static void produce_fault_transient_errors_are_retried(void **state)
{
    static const rd_kafka_resp_err_t transient[] = {
        RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
        RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR__TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    };

    (void)state;
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        assert_int_equal(ks_kafka_produce_fault(transient[i]), KS_ERR_RETRY);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(produce_fault_no_error_is_ok),
        cmocka_unit_test(produce_fault_message_too_large_is_too_large),
        cmocka_unit_test(produce_fault_authorization_is_permanent),
        cmocka_unit_test(produce_fault_missing_or_invalid_topic_is_permanent),
        cmocka_unit_test(produce_fault_dead_producer_is_fatal),
        cmocka_unit_test(produce_fault_transient_errors_are_retried),
    };

    return cmocka_run_group_tests_name("produce", tests, NULL, NULL);
}
