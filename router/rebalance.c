/*
 * rebalance.c - partitions coming and going, and the end of each batch's
 * transaction. On revocation the batch so far is committed and the
 * producer flushed before the partitions go, so their stored offsets are
 * final when librdkafka commits on unassign; a lost assignment commits
 * nothing for them.
 */
#include "rebalance.h"

#include <librdkafka/rdkafka.h>

#include "base/log.h"
#include "defer.h"
#include "kafka/client.h"
#include "kafka/offsets.h"
#include "state.h"
#include "txn.h"

#include "base/banned.h"

void router_commit_batch(struct router *rt)
{
    if (router_txn_commit(rt) == KS_ERR_RETRY) {
        router_txn_rewind(rt);
    }
}

/* Before partitions go: let every record produced for them be
 * acknowledged, so their stored offsets are final when librdkafka commits
 * on unassign. Records still unacknowledged at the deadline keep their
 * offsets uncommitted, and the new owner reprocesses them. */
void router_on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct router *rt = opaque;
    bool lost = err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS &&
                rd_kafka_assignment_lost(rk);

    if (lost) {
        /* Another member owns them already: nothing is committed for
         * them. Their tickets go stale first, so records acknowledged
         * from here on store no offset and add none to the transaction;
         * positions the transaction already holds for them are taken out
         * (ks_kafka_rebalance_apply clears what was stored). */
        for (int i = 0; i < parts->cnt; i++) {
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
            while (rt->txn_offsets &&
                   rd_kafka_topic_partition_list_del(
                       rt->txn_offsets, parts->elems[i].topic,
                       parts->elems[i].partition)) {
            }
        }
        ks_log_warn("router",
                    "assignment lost: %d partition(s) given up without "
                    "commit",
                    parts->cnt);
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        router_commit_batch(rt); /* the batch so far, before they go */
        if (rd_kafka_flush(rt->rk_prod, (int)rt->cfg->drain_timeout_ms) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            ks_log_warn("router",
                        "revocation: %zu record(s) still "
                        "unacknowledged",
                        rt->unacked);
        }
        for (int i = 0; i < parts->cnt; i++) {
            ks_offsets_forget(rt->offsets, parts->elems[i].topic,
                              parts->elems[i].partition);
        }
        /* librdkafka keeps a pause (a full offsets window) across
         * revocation. */
        rd_kafka_resume_partitions(rk, parts);
    }
    ks_kafka_rebalance_apply(rk, err, parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        router_defer_assigned(&rt->defer, rk, rt->deferred_topic, parts);
    }
}
