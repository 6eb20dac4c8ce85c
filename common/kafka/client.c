/*
 * client.c - librdkafka clients built from the config: producers,
 * consumers, their metadata warm-up, offset store, rebalance and close.
 *
 * Producers are idempotent (no duplicates or reordering from retries).
 * Consumers never auto-store offsets: a daemon stores an offset only after
 * every record it produced for that message is acknowledged, and
 * auto-commit then commits what was stored (docs/design.md section 8).
 */
#include "kafka/client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "kafka/produce.h"

#include "base/banned.h"

static int conf_set(rd_kafka_conf_t *conf,
                    const char *key,
                    const char *val,
                    char *errstr,
                    size_t errstr_size)
{
    char why[256];

    if (rd_kafka_conf_set(conf, key, val, why, sizeof(why)) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka property '%s': %s", key, why);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *ks_kafka_conf_new(const struct ks_config *cfg,
                                   char *errstr,
                                   size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr,
                     errstr_size) != 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

/* Sets defaults the user did not set in the kafka section. */
static int conf_default(rd_kafka_conf_t *conf,
                        const struct ks_config *cfg,
                        const char *key,
                        const char *val,
                        char *errstr,
                        size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return 0;
        }
    }
    return conf_set(conf, key, val, errstr, errstr_size);
}

static void log_cb(const rd_kafka_t *rk,
                   int level,
                   const char *fac,
                   const char *buf)
{
    /* One kafka section serves producers and consumers alike: a property
     * meant for the other kind is expected, not a problem. */
    if (strcmp(fac, "CONFWARN") == 0 &&
        (strstr(buf, "is a consumer property") ||
         strstr(buf, "is a producer property"))) {
        level = 7;
    }
    (void)rk;
    if (level <= 3) {
        ks_log_error("kafka", "%s: %s", fac, buf);
    } else if (level <= 4) {
        ks_log_warn("kafka", "%s: %s", fac, buf);
    } else {
        ks_log_debug("kafka", "%s: %s", fac, buf);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    ks_log_warn("kafka", "%s: %s", rd_kafka_err2name(err), reason);
}

/* Creates the client from conf (taken over), or, when ok is false (the
 * caller's conf set-up failed and errstr says why), just frees conf. */
static rd_kafka_t *client_new(rd_kafka_type_t type,
                              rd_kafka_conf_t *conf,
                              void *opaque,
                              bool ok,
                              char *errstr,
                              size_t errstr_size)
{
    char why[512];
    rd_kafka_t *rk;

    if (!ok || !conf) {
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        snprintf(errstr, errstr_size, "kafka %s: %s",
                 type == RD_KAFKA_PRODUCER ? "producer" : "consumer", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

rd_kafka_t *ks_kafka_producer_new(
    const struct ks_config *cfg,
    void (*dr_msg_cb)(rd_kafka_t *rk,
                      const rd_kafka_message_t *rkm,
                      void *opaque),
    void *opaque,
    char *errstr,
    size_t errstr_size)
{
    rd_kafka_conf_t *conf = ks_kafka_conf_new(cfg, errstr, errstr_size);

    if (!conf ||
        conf_default(conf, cfg, "enable.idempotence", "true", errstr,
                     errstr_size) ||
        /* 1, not 5: a task's record waits at most 1 ms at each of the
         * router and the worker (added p50 6-8 ms instead of 14-18 at
         * 100 tasks/s), and a backlog still batches, since records queue
         * while requests are in flight (bench/run.sh: the router drained
         * 200,000 tasks as fast with 1 as with 5; bench/README.md). */
        conf_default(conf, cfg, "linger.ms", "1", errstr, errstr_size) ||
        conf_default(conf, cfg, "message.max.bytes", "2000000", errstr,
                     errstr_size)) {
        return client_new(RD_KAFKA_PRODUCER, conf, opaque, false, errstr,
                          errstr_size);
    }
    if (dr_msg_cb) {
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    }
    return client_new(RD_KAFKA_PRODUCER, conf, opaque, true, errstr,
                      errstr_size);
}

/* conf_default for each of defaults (ends at a NULL key). */
static int conf_defaults(rd_kafka_conf_t *conf,
                         const struct ks_config *cfg,
                         const struct ks_kv *defaults,
                         char *errstr,
                         size_t errstr_size)
{
    for (size_t i = 0; defaults && defaults[i].key; i++) {
        if (conf_default(conf, cfg, defaults[i].key, defaults[i].value, errstr,
                         errstr_size)) {
            return -1;
        }
    }
    return 0;
}

rd_kafka_t *ks_kafka_consumer_new(
    const struct ks_config *cfg,
    const char *group_id,
    const struct ks_kv *defaults,
    void (*rebalance_cb)(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque),
    void *opaque,
    char *errstr,
    size_t errstr_size)
{
    rd_kafka_conf_t *conf = ks_kafka_conf_new(cfg, errstr, errstr_size);
    rd_kafka_t *rk;

    if (!conf || conf_set(conf, "group.id", group_id, errstr, errstr_size) ||
        conf_set(conf, "enable.auto.offset.store", "false", errstr,
                 errstr_size) ||
        conf_default(conf, cfg, "enable.auto.commit", "true", errstr,
                     errstr_size) ||
        conf_default(conf, cfg, "auto.commit.interval.ms", "1000", errstr,
                     errstr_size) ||
        conf_default(conf, cfg, "auto.offset.reset", "earliest", errstr,
                     errstr_size) ||
        conf_default(conf, cfg, "enable.partition.eof", "false", errstr,
                     errstr_size) ||
        conf_default(conf, cfg, "partition.assignment.strategy",
                     "cooperative-sticky", errstr, errstr_size) ||
        conf_defaults(conf, cfg, defaults, errstr, errstr_size)) {
        return client_new(RD_KAFKA_CONSUMER, conf, opaque, false, errstr,
                          errstr_size);
    }
    if (rebalance_cb) {
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    }
    rk = client_new(RD_KAFKA_CONSUMER, conf, opaque, true, errstr, errstr_size);
    if (rk) {
        rd_kafka_poll_set_consumer(rk);
    }
    return rk;
}

void ks_kafka_warm(rd_kafka_t *rk, const char *const *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
            md->topics[0].err) {
            err = md->topics[0].err;
        }
        if (err) {
            ks_log_warn("kafka",
                        "topic %s: %s (create it with `kascade "
                        "topics create`)",
                        topics[i], rd_kafka_err2str(err));
        }
        if (md) {
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
    }
}

void ks_kafka_store_offset(rd_kafka_t *rk,
                           const char *topic,
                           int32_t partition,
                           int64_t position)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset =
        position;
    err = rd_kafka_offsets_store(rk, parts);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        err = parts->elems[0].err;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ks_log_debug("kafka", "offset store %s/%d@%" PRId64 ": %s", topic,
                     partition, position, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

/* A lost assignment (the session expired, or the member was fenced)
 * belongs to another member already: whatever was stored for it must not
 * reach the broker, neither from our commit nor from the one librdkafka
 * 2.0 makes itself on unassign when auto-commit is on (it does not check
 * for a lost assignment). Storing INVALID clears what was stored. */
/* Consumers that have had an assignment (librdkafka 2.0 bug #4312, fixed
 * in 2.3: a cooperative-sticky consumer destroyed after joining its group
 * but before its first assignment aborts on an assertion in
 * rd_kafka_sticky_assignor_state_destroy. The fault suite hit it with
 * workers stopped right after a restart.) */
#define ASSIGNED_MAX 16
static pthread_mutex_t assigned_lock = PTHREAD_MUTEX_INITIALIZER;
static const rd_kafka_t *assigned[ASSIGNED_MAX];

static bool assigned_test(const rd_kafka_t *rk, bool set, bool clear)
{
    bool found = false;
    size_t i, free_at = ASSIGNED_MAX;

    pthread_mutex_lock(&assigned_lock);
    for (i = 0; i < ASSIGNED_MAX; i++) {
        if (assigned[i] == rk) {
            found = true;
            assigned[i] = clear ? NULL : assigned[i];
            break;
        }
        if (!assigned[i] && free_at == ASSIGNED_MAX) {
            free_at = i;
        }
    }
    if (set && !found && free_at < ASSIGNED_MAX) {
        assigned[free_at] = rk;
    }
    pthread_mutex_unlock(&assigned_lock);
    return found;
}

/* Before closing: a consumer whose group chose a cooperative protocol
 * (its JoinGroup is answered) but that has not had its first assignment
 * yet waits for it, serving rebalances, up to wait_ms. Returns false when
 * it is still not assigned: destroying it would abort (#4312).
 * Rebalances are served by the consumer's own callback, which calls
 * ks_kafka_rebalance_apply. */
static bool first_assignment_wait(rd_kafka_t *rk, int wait_ms)
{
    int64_t deadline = ks_mono_ms() + wait_ms;

    while (strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0 &&
           !assigned_test(rk, false, false)) {
        rd_kafka_message_t *m;

        if (ks_mono_ms() >= deadline) {
            return false;
        }
        /* Rebalances come as callbacks here; a message taken is never
         * stored, so the next owner gets it again. */
        m = rd_kafka_consumer_poll(rk, 100);
        if (m) {
            rd_kafka_message_destroy(m);
        }
    }
    return true;
}

static void forget_stored(rd_kafka_t *rk,
                          const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *none =
        rd_kafka_topic_partition_list_copy(parts);

    for (int i = 0; i < none->cnt; i++) {
        none->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    }
    rd_kafka_offsets_store(rk, none); /* errors: nothing was stored */
    rd_kafka_topic_partition_list_destroy(none);
}

/* Before partitions are given up: commit what the caller stored for
 * them, now, so the next owner starts after the work already done; or,
 * the assignment lost, commit nothing. */
static void revoke_commit(rd_kafka_t *rk,
                          const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t rerr;

    if (rd_kafka_assignment_lost(rk)) {
        forget_stored(rk, parts);
        ks_log_warn("kafka",
                    "assignment lost: %d partition(s) given up without "
                    "commit; their work since the last commit is "
                    "redelivered",
                    parts->cnt);
        return;
    }
    rerr = rd_kafka_commit(rk, NULL, 0);
    if (rerr && rerr != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        ks_log_warn("kafka", "commit on revocation: %s",
                    rd_kafka_err2str(rerr));
    }
}

void ks_kafka_rebalance_apply(rd_kafka_t *rk,
                              rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts)
{
    /* The protocol follows partition.assignment.strategy: COOPERATIVE
     * (cooperative-sticky, the default) hands out and takes back only the
     * partitions that move, and must be answered with the incremental
     * calls; EAGER (range, roundrobin, set by the user) revokes the whole
     * assignment and is answered with assign(). Mixing them up leaves the
     * consumer with nothing (librdkafka: "application *assign() call
     * failed"). */
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (assign) {
        assigned_test(rk, true, false);
    }

    if (!assign) {
        revoke_commit(rk, parts);
    }
    if (coop) {
        error = assign ? rd_kafka_incremental_assign(rk, parts)
                       : rd_kafka_incremental_unassign(rk, parts);
    } else {
        rerr = rd_kafka_assign(rk, assign ? parts : NULL);
    }
    if (error) {
        ks_log_error("kafka", "%s failed: %s", assign ? "assign" : "unassign",
                     rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr) {
        ks_log_error("kafka", "%s failed: %s", assign ? "assign" : "unassign",
                     rd_kafka_err2str(rerr));
    }
    ks_log_info("kafka", "%s %d partition(s) (%s)",
                assign ? "assigned" : "revoked", parts->cnt,
                coop ? "incremental" : "eager");
}

int ks_kafka_consumer_close_destroy(
    rd_kafka_t *rk,
    void (*rebalance_cb)(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque),
    void *opaque,
    int timeout_ms)
{
    rd_kafka_queue_t *q;
    int64_t deadline = ks_mono_ms() + timeout_ms;
    rd_kafka_error_t *error;
    bool closed, safe;

    safe = first_assignment_wait(rk, timeout_ms / 2);
    q = rd_kafka_queue_new(rk);
    error = rd_kafka_consumer_close_queue(rk, q);

    if (error) {
        ks_log_warn("kafka", "consumer close: %s",
                    rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    /* The close queue hands rebalances over as events, not callbacks:
     * the final revocation must be served here or the close never ends. */
    while (!(closed = rd_kafka_consumer_closed(rk)) &&
           ks_mono_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        rd_kafka_topic_partition_list_t *parts;

        if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
            parts = rd_kafka_event_topic_partition_list(ev);
            if (rebalance_cb) {
                rebalance_cb(rk, rd_kafka_event_error(ev), parts, opaque);
            } else {
                ks_kafka_rebalance_apply(rk, rd_kafka_event_error(ev), parts);
            }
        }
        if (ev) {
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    assigned_test(rk, false, true);
    if (!safe) {
        /* Left for the process's exit to reclaim: destroying it would
         * abort (librdkafka #4312). */
        ks_log_warn("kafka", "consumer closed before its first assignment: "
                             "not destroyed (librdkafka 2.0 bug #4312)");
        return closed ? 0 : -1;
    }
    if (!closed) {
        ks_log_warn("kafka",
                    "consumer close did not finish in %d ms (broker "
                    "unreachable?): offsets stored since the last commit "
                    "will be redelivered",
                    timeout_ms);
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return -1;
    }
    rd_kafka_destroy(rk);
    return 0;
}
