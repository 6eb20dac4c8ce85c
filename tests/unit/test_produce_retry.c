/*
 * test_produce_retry.c - what the worker and the router see when a
 * produce fails, on librdkafka's mock cluster (one broker in process, an
 * idempotent producer as the daemons build it): the error a failed
 * delivery report carries is sorted by ks_kafka_produce_fault the way
 * their retry policy expects (transient: produced again after
 * ks_kafka_produce_backoff_ms; a topic not ours to write: the DLQ at once;
 * too large: a `too_large` Result), a record produced again after a
 * transient failure is delivered, and the backoff doubles from 0.5 s to
 * 30 s with its jitter in the upper half. The give-up after
 * KS_PRODUCE_TRIES (DLQ with code `produce`) is tested on a real broker:
 * tests/integration/test_produce_giveup.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka/produce.h"

#include "base/banned.h"

#define TOPIC          "retry.topic"
#define APIKEY_PRODUCE 0 /* the Kafka protocol's ApiKey of Produce */

struct fixture {
    rd_kafka_t *rk; /* the producer; owns the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    int reports;
    rd_kafka_resp_err_t last_err;
};

static void on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct fixture *f = opaque;

    (void)rk;
    f->reports++;
    f->last_err = rkm->err;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr,
                          sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                          sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "1500", errstr,
                          sizeof(errstr))) {
        fprintf(stderr, "conf: %s\n", errstr);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, f);
    f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!f->rk) {
        fprintf(stderr, "producer: %s\n", errstr);
        return -1;
    }
    f->mcluster = rd_kafka_handle_mock_cluster(f->rk);
    rd_kafka_mock_topic_create(f->mcluster, TOPIC, 1, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    rd_kafka_destroy(f->rk);
    free(f);
    return 0;
}

/* Produces one record through ks_kafka_produce and waits for its report.
 * Returns the report's error. */
static rd_kafka_resp_err_t produce_one(struct fixture *f)
{
    int before = f->reports;

    assert_int_equal(ks_kafka_produce(f->rk, TOPIC, "k", 1, "v", 1, NULL, NULL),
                     KS_OK);
    for (int i = 0; i < 100 && f->reports == before; i++) {
        rd_kafka_poll(f->rk, 100);
    }
    assert_int_equal(f->reports, before + 1);
    return f->last_err;
}

/* The broker refuses a record it will take later (the fault the
 * integration tests switch on with a topic's timestamp limit): the report
 * names it, it sorts as transient, and the record produced again after
 * the refusals is delivered. */
static void transient_refusal_is_retried_then_delivered(void **state)
{
    struct fixture *f = *state;
    rd_kafka_resp_err_t err;

    assert_int_equal(produce_one(f), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_PRODUCE, 2,
                                      RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP,
                                      RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP);
    for (int tries = 1; tries <= 2; tries++) {
        err = produce_one(f);
        assert_int_equal(err, RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP);
        assert_int_equal(ks_kafka_produce_fault(err), KS_ERR_RETRY);
    }
    assert_int_equal(produce_one(f), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A topic we may not write: permanent (the DLQ at once, no retries). */
static void authorization_refusal_is_permanent(void **state)
{
    struct fixture *f = *state;
    rd_kafka_resp_err_t err;

    assert_int_equal(produce_one(f), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_mock_push_request_errors(
        f->mcluster, APIKEY_PRODUCE, 1,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    err = produce_one(f);
    assert_int_equal(err, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(ks_kafka_produce_fault(err), KS_ERR_INVALID);
}

/* A record the broker finds too large: TOO_LARGE (a `too_large` Result
 * and the DLQ), never retried. */
static void broker_size_refusal_is_too_large(void **state)
{
    struct fixture *f = *state;
    rd_kafka_resp_err_t err;

    assert_int_equal(produce_one(f), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    err = produce_one(f);
    assert_int_equal(err, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    assert_int_equal(ks_kafka_produce_fault(err), KS_ERR_TOO_LARGE);
}

/* A broker that stays away past message.timeout.ms: the report's timeout
 * is transient. (librdkafka retries NOT_ENOUGH_REPLICAS itself until
 * then.) */
static void delivery_timeout_is_transient(void **state)
{
    struct fixture *f = *state;
    rd_kafka_resp_err_t err, refusals[200];

    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        refusals[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
    }
    assert_int_equal(produce_one(f), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_mock_push_request_errors_array(
        f->mcluster, APIKEY_PRODUCE, sizeof(refusals) / sizeof(refusals[0]),
        refusals);
    err = produce_one(f);
    rd_kafka_mock_clear_request_errors(f->mcluster, APIKEY_PRODUCE);
    assert_int_equal(err, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    assert_int_equal(ks_kafka_produce_fault(err), KS_ERR_RETRY);
}

/* The n-th wait: within [base/2, base] for base 500 ms doubling to 30 s,
 * and spread over that range (so failed records do not come back in one
 * burst). */
static void backoff_doubles_to_30s_with_jitter_in_upper_half(void **state)
{
    (void)state;
    for (int n = 1; n <= 10; n++) {
        int64_t base = 500, lo = INT64_MAX, hi = 0;

        for (int i = 1; i < n && base < 30000; i++) {
            base *= 2;
        }
        base = base > 30000 ? 30000 : base;
        for (int i = 0; i < 400; i++) {
            int64_t ms = ks_kafka_produce_backoff_ms(n);

            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        assert_true(lo >= base / 2);
        assert_true(hi <= base);
        assert_true(lo < base * 3 / 4); /* jitter: both quarters seen */
        assert_true(hi > base * 3 / 4);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            transient_refusal_is_retried_then_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(authorization_refusal_is_permanent,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(broker_size_refusal_is_too_large, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(delivery_timeout_is_transient, setup,
                                        teardown),
        cmocka_unit_test(backoff_doubles_to_30s_with_jitter_in_upper_half),
    };

    return cmocka_run_group_tests_name("produce_retry", tests, NULL, NULL);
}
