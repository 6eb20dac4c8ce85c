/*
 * txn.c - router.transactions: the producer's transactions, their
 * Kafka settings, and the rewind after an abort (what was consumed
 * after the committed offsets is consumed again).
 */
#include "txn.h"

#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "base/util.h"
#include "kafka/offsets.h"
#include "process/daemon.h"
#include "state.h"

#include "base/banned.h"

/* router.transactions: each poll batch is one Kafka transaction holding
 * the records produced for the batch and the consumed positions they
 * complete (send_offsets_to_transaction with the group's metadata), so a
 * read_committed reader sees a task's tier record exactly when its offset
 * is committed: a crash between the two cannot duplicate it. An abortable
 * error aborts the transaction, and rebalance.c's router_commit_batch
 * rewinds the input to the committed offsets
 * (router_txn_rewind); a fatal
 * one (fenced by a newer instance with the same transactional.id) stops
 * the router. */

bool router_txn_error(const char *what, rd_kafka_error_t *e)
{
    if (!e) {
        return false;
    }
    ks_log_error("router", "transaction %s: %s", what,
                 rd_kafka_error_string(e));
    if (rd_kafka_error_is_fatal(e)) {
        ks_log_error("router", "fatal transaction error: stopping");
        ks_stop_requested = 1;
    }
    rd_kafka_error_destroy(e);
    return true;
}

void router_txn_begin(struct router *rt)
{
    if (!rt->txn || rt->txn_open) {
        return;
    }
    if (!router_txn_error("begin", rd_kafka_begin_transaction(rt->rk_prod))) {
        rt->txn_open = true;
    }
}

void router_txn_rewind(struct router *rt)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_error_t *e;

    if (rd_kafka_assignment(rt->rk_cons, &parts) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    if (parts->cnt > 0 && rd_kafka_committed(rt->rk_cons, parts, 10000) ==
                              RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < parts->cnt; i++) {
            if (parts->elems[i].offset < 0) {
                parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            }
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
        }
        e = rd_kafka_seek_partitions(rt->rk_cons, parts, 10000);
        if (e) {
            ks_log_error("router", "rewind: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    ks_log_warn("router",
                "transaction aborted: rewound %d partition(s) to "
                "their committed offsets",
                parts->cnt);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Aborts the open transaction and forgets its offsets; the caller
 * rewinds. */
static void txn_abort(struct router *rt)
{
    router_txn_error("abort", rd_kafka_abort_transaction(
                                  rt->rk_prod, (int)rt->cfg->drain_timeout_ms));
    rt->txn_open = false;
    rt->txn_failed = false;
    rd_kafka_topic_partition_list_destroy(rt->txn_offsets);
    rt->txn_offsets = rd_kafka_topic_partition_list_new(16);
}

enum ks_err router_txn_commit(struct router *rt)
{
    rd_kafka_consumer_group_metadata_t *cgmd;
    rd_kafka_error_t *e = NULL;

    if (!rt->txn || !rt->txn_open) {
        return KS_OK;
    }
    rd_kafka_flush(rt->rk_prod, (int)rt->cfg->drain_timeout_ms);
    if (rt->txn_failed || rt->unacked > 0) {
        txn_abort(rt);
        return KS_ERR_RETRY;
    }
    if (rt->txn_offsets->cnt > 0) {
        cgmd = rd_kafka_consumer_group_metadata(rt->rk_cons);
        e = rd_kafka_send_offsets_to_transaction(
            rt->rk_prod, rt->txn_offsets, cgmd, (int)rt->cfg->drain_timeout_ms);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    }
    for (int tries = 0; !e && tries < 3; tries++) {
        e = rd_kafka_commit_transaction(rt->rk_prod,
                                        (int)rt->cfg->drain_timeout_ms);
        if (!e) {
            rt->txn_open = false;
            rt->reply_fallback = false; /* the batch got through */
            rd_kafka_topic_partition_list_destroy(rt->txn_offsets);
            rt->txn_offsets = rd_kafka_topic_partition_list_new(16);
            return KS_OK;
        }
        if (!rd_kafka_error_is_retriable(e)) {
            break;
        }
        rd_kafka_error_destroy(e);
        e = NULL;
    }
    if (e && rd_kafka_error_txn_requires_abort(e)) {
        router_txn_error("commit", e);
        txn_abort(rt);
        return KS_ERR_RETRY;
    }
    if (router_txn_error("commit", e) && !ks_stop_requested) {
        txn_abort(rt);
        return KS_ERR_RETRY;
    }
    return ks_stop_requested ? KS_ERR_FATAL : KS_OK;
}

static void kafka_add(struct ks_config *cfg, const char *key, const char *val)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            return; /* the user's setting wins */
        }
    }
    cfg->kafka =
        ks_xrealloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof(*cfg->kafka));
    cfg->kafka[cfg->n_kafka].key = ks_xstrdup(key);
    cfg->kafka[cfg->n_kafka++].value = ks_xstrdup(val);
}

/* transactional.id "<topics.prefix>router-<instance>" (instance:
 * router.instance, else the host name): stable across restarts of one
 * instance, so a restarted router fences its predecessor and its open
 * transaction is aborted at once. Offsets go through the transactions, so
 * the consumer does not auto-commit. */
void router_txn_settings(struct ks_config *cfg)
{
    char host[65] = "", id[KS_TOPIC_MAX + 80];
    const char *instance = cfg->router_instance;

    if (!instance) {
        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) {
            snprintf(host, sizeof(host), "router");
        }
        instance = host;
    }
    snprintf(id, sizeof(id), "%srouter-%s", cfg->topic_prefix, instance);
    kafka_add(cfg, "transactional.id", id);
    kafka_add(cfg, "enable.auto.commit", "false");
    ks_log_info("router", "transactions on: transactional.id %s", id);
}
