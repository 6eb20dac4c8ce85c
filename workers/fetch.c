/*
 * fetch.c - the worker takes messages from each assigned partition's own
 * queue, only as it has room for them.
 *
 * Each assigned partition's queue is split off the consumer queue
 * (forwarded nowhere), so the consumer queue carries only rebalances and
 * errors and the worker pulls tasks from the partition queues, round
 * robin, while its backlog has room. librdkafka stops fetching a partition
 * whose queue is full (queued.min.messages, queued.max.messages.kbytes),
 * so back-pressure needs no pause: a pause drops the prefetched messages,
 * and librdkafka 2.0 fetches again only some 250 ms after a resume, which
 * left every slot idle once per backlog (measured: the model simulator
 * had no call in flight more than half the time at max_inflight 16).
 * The consumer queue is still polled on every turn of the loop, so the
 * worker stays in its group and serves rebalances (librdkafka #2703). A
 * message that reached the consumer queue before its partition's queue
 * was split off is accepted from there like any other.
 *
 * Offsets window (limits.max_open_offsets): a partition whose window of
 * taken-but-not-committable offsets is full is not taken from until it
 * drains (its queue fills and librdkafka stops fetching it, as above), so
 * one slow or stuck task cannot make a restart replay without bound.
 */
#include "fetch.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "job.h"
#include "order.h"

#include "base/banned.h"

#define PULL_BATCH 64 /* messages from one partition per turn, at most */

static bool fetch_find(const struct worker *w,
                       const char *topic,
                       int32_t partition,
                       size_t *at)
{
    for (size_t i = 0; i < w->n_parts; i++) {
        if (w->parts[i].partition == partition &&
            strcmp(w->parts[i].topic, topic) == 0) {
            *at = i;
            return true;
        }
    }
    return false;
}

void fetch_assign(struct worker *w,
                  const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        rd_kafka_queue_t *rkqu;
        size_t at;

        if (fetch_find(w, p->topic, p->partition, &at)) {
            continue;
        }
        rkqu = rd_kafka_queue_get_partition(w->rk_cons, p->topic, p->partition);
        if (!rkqu) {
            ks_log_warn("worker",
                        "%s [%d]: no partition queue; its tasks "
                        "come through the consumer queue",
                        p->topic, (int)p->partition);
            continue;
        }
        rd_kafka_queue_forward(rkqu, NULL);
        ks_kafka_wake_watch(&w->wake, rkqu);
        w->parts = ks_xrealloc(w->parts, (w->n_parts + 1) * sizeof(*w->parts));
        w->parts[w->n_parts].rkqu = rkqu;
        w->parts[w->n_parts].partition = p->partition;
        w->parts[w->n_parts].full = false;
        ks_strlcpy(w->parts[w->n_parts].topic, p->topic,
                   sizeof(w->parts[w->n_parts].topic));
        w->n_parts++;
    }
}

void fetch_revoke(struct worker *w,
                  const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; parts && i < parts->cnt; i++) {
        size_t at;

        if (!fetch_find(w, parts->elems[i].topic, parts->elems[i].partition,
                        &at)) {
            continue;
        }
        /* What is still queued was never handed out: the next owner
         * fetches it again from the committed offset. */
        rd_kafka_queue_destroy(w->parts[at].rkqu);
        w->parts[at] = w->parts[--w->n_parts];
    }
    if (!parts) {
        while (w->n_parts > 0) {
            rd_kafka_queue_destroy(w->parts[--w->n_parts].rkqu);
        }
    }
    if (w->next_part >= w->n_parts) {
        w->next_part = 0;
    }
}

/* Returns true when fp's offsets window is full; counts each time it
 * turns full. */
static bool window_full(struct worker *w, struct fetch_part *fp)
{
    bool full = ks_offsets_full(w->offsets, fp->topic, fp->partition);

    if (full && !fp->full) {
        ks_log_warn("worker",
                    "%s [%d]: offsets window full (limits.max_open_offsets): "
                    "not taking from it until it drains",
                    fp->topic, (int)fp->partition);
        ks_metrics_add(w->m_window_full, 1, fp->topic);
    } else if (!full && fp->full) {
        ks_log_info("worker", "%s [%d]: offsets window drained", fp->topic,
                    (int)fp->partition);
    }
    fp->full = full;
    return full;
}

size_t fetch_pull(struct worker *w)
{
    rd_kafka_message_t *batch[PULL_BATCH];
    size_t taken = 0, idle = 0;

    /* Round robin from where the last turn stopped, one batch a
     * partition, until the backlog is full or every queue is empty. */
    while (w->n_parts > 0 && idle < w->n_parts && w->n_jobs < w->max_jobs) {
        struct fetch_part *fp = &w->parts[w->next_part];
        size_t room = w->max_jobs - w->n_jobs, open;
        ssize_t n;

        w->next_part = (w->next_part + 1) % w->n_parts;
        /* ordering "key": a partition with a key queue over its bound
         * waits for it (order.h); librdkafka stops its fetch meanwhile.
         * So does a partition whose offsets window is full. */
        if (order_partition_full(w, fp->topic, fp->partition) ||
            window_full(w, fp)) {
            idle++;
            continue;
        }
        /* never past the window's bound within one batch either */
        open = ks_offsets_pending(w->offsets, fp->topic, fp->partition);
        if (w->cfg->max_open_offsets > 0 &&
            room > (size_t)w->cfg->max_open_offsets - open) {
            room = (size_t)w->cfg->max_open_offsets - open;
        }
        n = rd_kafka_consume_batch_queue(fp->rkqu, 0, batch,
                                         room < PULL_BATCH ? room : PULL_BATCH);
        if (n <= 0) {
            idle++;
            continue;
        }
        idle = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (batch[i]->err) {
                if (batch[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    ks_log_warn("worker", "consumer: %s",
                                rd_kafka_message_errstr(batch[i]));
                }
                rd_kafka_message_destroy(batch[i]);
                continue;
            }
            job_accept(w, batch[i]);
            taken++;
        }
    }
    return taken;
}

void fetch_fini(struct worker *w)
{
    fetch_revoke(w, NULL);
    free(w->parts);
    w->parts = NULL;
}
