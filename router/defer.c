/*
 * defer.c - the deferred topic's records and rounds.
 *
 * Pacing (no hot loop): the router reads the deferred topic in rounds. A
 * round starts when a tier's budget comes back (a spent flag of the
 * budget snapshot turns false), when Redis is back after it could not be
 * read, or every DEFER_ROUND_MS (a tenant's budget,
 * a new day, Redis back for a context). At the start each paused
 * partition's mark is set to its end offset and it resumes: the records
 * below the mark are routed again (a record whose budget is still spent
 * is deferred again: written once more at the end of the topic, its
 * offset committed); the first record at or past the mark pauses the
 * partition, so in one round each record is read at most once and the
 * records deferred again in it wait for the next. A partition starts
 * paused when assigned, and a round resumes only partitions with records
 * past the last one read (or past the committed offset, for one not read
 * yet): a task deferred just now is not read back at once. The first tick
 * starts a round (a restart routes the backlog at once when the budget is
 * back). librdkafka keeps a paused partition in the group and the router
 * keeps polling (librdkafka #2703).
 *
 * A round's queries block the router's loop, so they go where they are
 * answered at once: the ends (ListOffsets) through the producer's
 * connection, not the consumer's, where each waited for the fetch in
 * flight (the broker serves a connection's requests in order; a fetch
 * waits up to fetch.wait.max.ms, 500 ms by default, for data). With six
 * deferred partitions a round held the loop 2 to 6 s every
 * DEFER_ROUND_MS, and every task due meanwhile waited (bench/latency.sh,
 * tests/integration/test_latency_idle.sh). The committed offsets come
 * from the group coordinator, which librdkafka reaches on a connection
 * of its own.
 */
#include "defer.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#include "base/banned.h"

#define DEFER_ROUND_MS 30000

rd_kafka_headers_t *router_defer_headers(const struct src *s,
                                         const char *origin)
{
    rd_kafka_headers_t *hdrs =
        s->hdrs ? rd_kafka_headers_copy(s->hdrs) : rd_kafka_headers_new(1);

    rd_kafka_header_remove(hdrs, KS_HDR_DEFERRED_FROM);
    rd_kafka_header_add(hdrs, KS_HDR_DEFERRED_FROM, -1, origin, -1);
    return hdrs;
}

int router_defer_read(const rd_kafka_message_t *rkm,
                      char *origin,
                      size_t size,
                      rd_kafka_headers_t **hdrs)
{
    rd_kafka_headers_t *orig = NULL;
    const void *val = NULL;
    size_t len = 0;

    *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(orig, KS_HDR_DEFERRED_FROM, &val, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val || len == 0 || len >= size) {
        return -1;
    }
    memcpy(origin, val, len);
    origin[len] = '\0';
    *hdrs = rd_kafka_headers_copy(orig);
    rd_kafka_header_remove(*hdrs, KS_HDR_DEFERRED_FROM);
    return 0;
}

static struct defer_part *part_of(struct defer *df,
                                  const char *topic,
                                  int32_t partition)
{
    struct defer_part *dp;

    for (size_t i = 0; i < df->n; i++) {
        if (df->parts[i].partition == partition &&
            strcmp(df->parts[i].topic, topic) == 0) {
            return &df->parts[i];
        }
    }
    df->parts = ks_xrealloc(df->parts, (df->n + 1) * sizeof(*df->parts));
    dp = &df->parts[df->n++];
    memset(dp, 0, sizeof(*dp));
    ks_strlcpy(dp->topic, topic, sizeof(dp->topic));
    dp->partition = partition;
    dp->mark = -1;
    dp->next = -1;
    return dp;
}

/* The partition's end offset now, or -1 when the broker does not say. */
static int64_t end_offset(rd_kafka_t *rk, const struct defer_part *dp)
{
    int64_t lo = -1, hi = -1;

    if (rd_kafka_query_watermark_offsets(rk, dp->topic, dp->partition, &lo, &hi,
                                         5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
    }
    return hi;
}

static void set_paused(rd_kafka_t *rk, struct defer_part *dp, bool pause)
{
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(one, dp->topic, dp->partition);
    if (pause) {
        rd_kafka_pause_partitions(rk, one);
    } else {
        rd_kafka_resume_partitions(rk, one);
    }
    rd_kafka_topic_partition_list_destroy(one);
    dp->paused = pause;
}

void router_defer_assigned(struct defer *df,
                           rd_kafka_t *rk,
                           const char *topic,
                           const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct defer_part *dp;

        if (strcmp(parts->elems[i].topic, topic) != 0) {
            continue;
        }
        dp = part_of(df, topic, parts->elems[i].partition);
        dp->mark = -1;
        dp->next = -1; /* another member may have read on meanwhile */
        set_paused(rk, dp, true);
    }
}

void router_defer_seen(struct defer *df,
                       rd_kafka_t *rk,
                       const rd_kafka_message_t *rkm)
{
    struct defer_part *dp =
        part_of(df, rd_kafka_topic_name(rkm->rkt), rkm->partition);

    dp->next = rkm->offset + 1;
    if (dp->mark < 0) {
        dp->mark = rkm->offset + 1; /* read outside a round: ends here */
    }
    if (rkm->offset + 1 >= dp->mark) {
        /* paused again even when marked paused: a revocation may have
         * resumed it behind our back */
        if (!dp->paused) {
            ks_log_info("router",
                        "%s [%" PRId32 "]: deferred round done at offset "
                        "%" PRId64 "; paused until the next round",
                        dp->topic, dp->partition, rkm->offset);
        }
        set_paused(rk, dp, true);
    }
}

/* Where the partition's reading stands: the offset after the last record
 * read, else its committed offset, else its first offset; -1 unknown. */
static int64_t read_position(rd_kafka_t *rk,
                             rd_kafka_t *rk_query,
                             const struct defer_part *dp)
{
    rd_kafka_topic_partition_list_t *one;
    int64_t pos = -1, lo = -1, hi = -1;

    if (dp->next >= 0) {
        return dp->next;
    }
    one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, dp->topic, dp->partition);
    if (rd_kafka_committed(rk, one, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        one->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        pos = one->elems[0].offset;
    }
    rd_kafka_topic_partition_list_destroy(one);
    if (pos < 0 && rd_kafka_query_watermark_offsets(
                       rk_query, dp->topic, dp->partition, &lo, &hi, 5000) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR) {
        pos = lo; /* nothing committed: auto.offset.reset is earliest */
    }
    return pos;
}

/* True when a tier's budget came back since the last tick. */
static bool budget_back(struct defer *df, const bool *spent, size_t n_tiers)
{
    bool back = false;

    if (!spent) { /* Redis unreachable: its return starts a round */
        df->unknown = true;
        return false;
    }
    if (df->unknown) {
        df->unknown = false;
        back = true;
    }
    if (df->n_spent != n_tiers) { /* first tick, or a reload */
        free(df->spent);
        df->spent = ks_xcalloc(n_tiers ? n_tiers : 1, sizeof(*df->spent));
        df->n_spent = n_tiers;
        memcpy(df->spent, spent, n_tiers * sizeof(*spent));
        return back;
    }
    for (size_t i = 0; i < n_tiers; i++) {
        back |= df->spent[i] && !spent[i];
        df->spent[i] = spent[i];
    }
    return back;
}

void router_defer_tick(struct defer *df,
                       rd_kafka_t *rk,
                       rd_kafka_t *rk_query,
                       const bool *spent,
                       size_t n_tiers,
                       int64_t mono)
{
    bool back = budget_back(df, spent, n_tiers);
    size_t resumed = 0;

    if (!back && mono < df->next_round_ms) {
        return;
    }
    df->next_round_ms = mono + DEFER_ROUND_MS;
    for (size_t i = 0; i < df->n; i++) {
        struct defer_part *dp = &df->parts[i];
        int64_t end, pos;

        if (!dp->paused) {
            continue;
        }
        end = end_offset(rk_query, dp);
        pos = read_position(rk, rk_query, dp);
        if (end < 0 || (pos >= 0 && end <= pos)) {
            continue; /* nothing new to read: stays paused */
        }
        dp->mark = end;
        set_paused(rk, dp, false);
        resumed++;
    }
    if (resumed > 0) {
        ks_log_info("router", "deferred round: %zu partition(s) resumed (%s)",
                    resumed, back ? "a budget came back" : "timer");
    }
}

void router_defer_fini(struct defer *df)
{
    free(df->parts);
    free(df->spent);
    memset(df, 0, sizeof(*df));
}
