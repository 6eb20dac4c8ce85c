/*
 * test_kafka_client.c - consumers and their rebalances, against
 * librdkafka's mock cluster (one broker in process): consumers rebalance
 * incrementally (cooperative-sticky) unless the config chooses an eager
 * strategy, and then still get their partitions; a lost assignment (the
 * coordinator no longer knows the member) commits nothing, neither the
 * stored offsets nor anything else, so the group goes on from the last
 * real commit.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "base/util.h"
#include "kafka/client.h"

#include "base/banned.h"

#define TOPIC         "t"
#define API_HEARTBEAT 12 /* the Kafka protocol's Heartbeat request */
#define API_SYNCGROUP 14 /* ...and SyncGroup */

struct fixture {
    rd_kafka_t *rk_mock; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char bootstraps[256];
};

struct seen {
    int assigns, revokes, lost_revokes;
    char protocol[32];
};

static void on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct seen *s = opaque;

    snprintf(s->protocol, sizeof(s->protocol), "%s",
             rd_kafka_rebalance_protocol(rk));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        s->assigns += parts->cnt > 0;
    } else {
        s->revokes++;
        s->lost_revokes += rd_kafka_assignment_lost(rk) ? 1 : 0;
    }
    ks_kafka_rebalance_apply(rk, err, parts);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr,
                      sizeof(errstr));
    f->rk_mock = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!f->rk_mock) {
        return -1;
    }
    f->mcluster = rd_kafka_handle_mock_cluster(f->rk_mock);
    snprintf(f->bootstraps, sizeof(f->bootstraps), "%s",
             rd_kafka_mock_cluster_bootstraps(f->mcluster));
    rd_kafka_mock_topic_create(f->mcluster, TOPIC, 1, 1);
    for (int i = 0; i < 10; i++) {
        rd_kafka_producev(f->rk_mock, RD_KAFKA_V_TOPIC(TOPIC),
                          RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_END);
    }
    rd_kafka_flush(f->rk_mock, 5000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    rd_kafka_destroy(f->rk_mock);
    free(f);
    return 0;
}

/* A consumer of TOPIC in group, with the config's kafka section extra
 * (ends at a NULL key) after the mock's address. */
static rd_kafka_t *consumer(struct fixture *f,
                            const char *group,
                            const struct ks_kv *extra,
                            struct seen *s)
{
    struct ks_kv kv[8] = {
        {"bootstrap.servers", f->bootstraps},
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "300"},
        {"auto.commit.interval.ms", "60000"}, /* only the commits below */
    };
    struct ks_config cfg;
    size_t n = 4;
    char errstr[256];
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *topics;

    for (; extra && extra->key && n < 8; extra++) {
        kv[n++] = *extra;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.kafka = kv;
    cfg.n_kafka = n;
    rk = ks_kafka_consumer_new(&cfg, group, NULL, on_rebalance, s, errstr,
                               sizeof(errstr));
    assert_non_null(rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, TOPIC, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, topics),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(topics);
    return rk;
}

/* Polls until n messages came (or 15 s); returns the offset of the first. */
static int64_t take(rd_kafka_t *rk, int n)
{
    int64_t deadline = ks_mono_ms() + 15000, first = -1;

    while (n > 0 && ks_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);

        if (rkm && !rkm->err) {
            if (first < 0) {
                first = rkm->offset;
            }
            n--;
        }
        if (rkm) {
            rd_kafka_message_destroy(rkm);
        }
    }
    assert_int_equal(n, 0);
    return first;
}

static int64_t committed(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(1);
    int64_t off;

    rd_kafka_topic_partition_list_add(parts, TOPIC, 0);
    assert_int_equal(rd_kafka_committed(rk, parts, 5000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    off = parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    return off;
}

static void close_consumer(rd_kafka_t *rk, struct seen *s)
{
    assert_int_equal(
        ks_kafka_consumer_close_destroy(rk, on_rebalance, s, 10000), 0);
}

static void consumer_rebalances_incrementally_by_default(void **state)
{
    struct seen s = {0};
    rd_kafka_t *rk = consumer(*state, "g-default", NULL, &s);

    take(rk, 10);
    close_consumer(rk, &s); /* first: a consumer left behind would take
                               the next test's injected errors */
    assert_int_equal(s.assigns, 1);
    assert_string_equal(s.protocol, "COOPERATIVE");
    assert_int_equal(s.revokes, 1);
    assert_int_equal(s.lost_revokes, 0);
}

static void consumer_with_an_eager_strategy_still_gets_its_partitions(
    void **state)
{
    static const struct ks_kv range[] = {
        {"partition.assignment.strategy", "range"}, {NULL, NULL}};
    struct seen s = {0};
    rd_kafka_t *rk = consumer(*state, "g-eager", range, &s);
    int64_t first = take(rk, 10);

    close_consumer(rk, &s);
    assert_int_equal(first, 0);
    assert_string_equal(s.protocol, "EAGER");
    assert_int_equal(s.revokes, 1);
}

/* The log goes to stderr: while capturing, to a temporary file, which
 * capture_end gives back (caller closes). */
static int saved_stderr = -1;

static void capture_begin(void)
{
    FILE *tmp = tmpfile();

    assert_non_null(tmp);
    fflush(stderr);
    saved_stderr = dup(2);
    dup2(fileno(tmp), 2);
    fclose(tmp); /* fd 2 keeps it open */
}

static FILE *capture_end(void)
{
    int fd = dup(2);
    FILE *log;

    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    log = fdopen(fd, "r");
    assert_non_null(log);
    rewind(log);
    return log;
}

/* Lines of the captured log that say an offset commit was attempted (the
 * mock coordinator refuses any from a member it has forgotten, and
 * librdkafka logs the refusal), echoed to stderr. */
static int commit_attempts(FILE *log)
{
    char line[1024];
    int n = 0;

    while (fgets(line, sizeof(line), log)) {
        fputs(line, stderr);
        n += strstr(line, "COMMITFAIL") != NULL ||
             strstr(line, "commit on revocation") != NULL;
    }
    fclose(log);
    return n;
}

/* Consumes everything, commits position 3, stores 8, then has the
 * coordinator forget the member: librdkafka revokes the whole assignment
 * as lost and joins again. Nothing may be committed meanwhile, nor even
 * tried: the group goes on from 3. */
static void lose_assignment(struct fixture *f,
                            const char *group,
                            const struct ks_kv *extra)
{
    struct seen s = {0};
    rd_kafka_t *rk = consumer(f, group, extra, &s);
    int64_t deadline, after;
    int tried;

    take(rk, 10);
    ks_kafka_store_offset(rk, TOPIC, 0, 3);
    assert_int_equal(rd_kafka_commit(rk, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    ks_kafka_store_offset(rk, TOPIC, 0, 8);
    capture_begin();
    rd_kafka_mock_push_request_errors(f->mcluster, API_HEARTBEAT, 1,
                                      RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID);
    deadline = ks_mono_ms() + 20000;
    while ((s.lost_revokes == 0 || s.assigns < 2) && ks_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);

        if (rkm) {
            rd_kafka_message_destroy(rkm);
        }
    }
    tried = commit_attempts(capture_end());
    after = committed(rk);
    close_consumer(rk, &s);
    print_message("%s: %d revocation(s), %d lost, %d assignment(s), "
                  "%d commit(s) tried, committed %" PRId64 "\n",
                  group, s.revokes, s.lost_revokes, s.assigns, tried, after);
    assert_int_equal(s.lost_revokes, 1);
    assert_true(s.assigns >= 2);
    assert_int_equal(tried, 0);
    assert_int_equal(after, 3);
}

static void lost_assignment_commits_nothing(void **state)
{
    lose_assignment(*state, "g-lost", NULL);
}

static void lost_assignment_commits_nothing_under_an_eager_strategy(
    void **state)
{
    static const struct ks_kv range[] = {
        {"partition.assignment.strategy", "range"}, {NULL, NULL}};

    lose_assignment(*state, "g-lost-eager", range);
}

/* librdkafka 2.0 #4312: a cooperative-sticky consumer destroyed after its
 * JoinGroup was answered but before its first assignment aborted on an
 * assertion. The mock holds the SyncGroup answer back 3 s; a child stops
 * its consumer inside that window (an abort would take the test down). */
static void consumer_closed_before_its_first_assignment_does_not_abort(
    void **state)
{
    struct fixture *f = *state;
    int status = -1;
    pid_t pid;

    assert_int_equal(
        rd_kafka_mock_broker_push_request_error_rtts(
            f->mcluster, 1, API_SYNCGROUP, 1, RD_KAFKA_RESP_ERR_NO_ERROR, 3000),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    pid = fork();
    if (pid == 0) {
        struct seen s = {0};
        rd_kafka_t *rk = consumer(f, "g-early", NULL, &s);
        int64_t deadline = ks_mono_ms() + 10000;

        while (strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") != 0 &&
               ks_mono_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10);

            if (m) {
                rd_kafka_message_destroy(m);
            }
        }
        if (s.assigns > 0 || ks_mono_ms() >= deadline) {
            _exit(3); /* not in the window: the test proves nothing */
        }
        ks_kafka_consumer_close_destroy(rk, on_rebalance, &s, 10000);
        _exit(0);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFSIGNALED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consumer_rebalances_incrementally_by_default),
        cmocka_unit_test(
            consumer_closed_before_its_first_assignment_does_not_abort),
        cmocka_unit_test(
            consumer_with_an_eager_strategy_still_gets_its_partitions),
        cmocka_unit_test(lost_assignment_commits_nothing),
        cmocka_unit_test(
            lost_assignment_commits_nothing_under_an_eager_strategy),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
