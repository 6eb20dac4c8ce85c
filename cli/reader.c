/*
 * reader.c - explicit-assignment topic reader for the CLI.
 *
 * The end of each partition is its high watermark at start; positions are
 * tracked from the messages seen, so a partition with nothing new counts
 * as read once its start position reaches the watermark.
 */
#include "reader.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "kafka/client.h"

#include "base/banned.h"

struct cli_reader {
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts; /* offset = next to read */
    int64_t *end;                           /* high watermark per part */
};

/* Errors of a topic or partition that was just created: its metadata has
 * not reached every broker yet, or it has no leader yet. */
static bool settling(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
           err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
           err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
}

/*
 * The topic's metadata, *md set (caller destroys) when the call itself
 * succeeds. Right after `kascade topics create` a broker may not know the
 * topic yet: a settling error is asked again for up to 10 s, so a reader
 * started just after the topics are created (dlq list, submit --wait)
 * does not fail; a topic that really is missing is reported after that.
 */
static rd_kafka_resp_err_t topic_metadata(rd_kafka_t *rk,
                                          rd_kafka_topic_t *rkt,
                                          const struct rd_kafka_metadata **md)
{
    int64_t deadline = ks_mono_ms() + 10000;
    rd_kafka_resp_err_t err;

    for (;;) {
        *md = NULL;
        err = rd_kafka_metadata(rk, 0, rkt, md, 10000);
        if (err || (*md)->topic_cnt != 1 || !settling((*md)->topics[0].err) ||
            ks_mono_ms() >= deadline) {
            return err;
        }
        rd_kafka_metadata_destroy(*md);
        nanosleep(&(struct timespec){.tv_nsec = 200 * 1000000L}, NULL);
    }
}

static int add_partitions(struct cli_reader *rd,
                          const char *topic,
                          int64_t start)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rd->rk, topic, NULL);
    rd_kafka_resp_err_t err;
    int ret = -1;

    err = topic_metadata(rd->rk, rkt, &md);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "kascade: topic %s: %s\n", topic,
                rd_kafka_err2str(err ? err
                                 : md->topic_cnt
                                     ? md->topics[0].err
                                     : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        rd_kafka_topic_partition_list_add(rd->parts, topic,
                                          md->topics[0].partitions[i].id)
            ->offset = start;
    }
    ret = 0;

out:
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return ret;
}

/* One partition's watermarks; settling errors are asked again for up to
 * 10 s, as for the metadata. */
static rd_kafka_resp_err_t watermarks(rd_kafka_t *rk,
                                      const rd_kafka_topic_partition_t *p,
                                      int64_t *lo,
                                      int64_t *hi)
{
    int64_t deadline = ks_mono_ms() + 10000;
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, lo,
                                               hi, 10000);
        if (!settling(err) || ks_mono_ms() >= deadline) {
            return err;
        }
        nanosleep(&(struct timespec){.tv_nsec = 200 * 1000000L}, NULL);
    }
}

/* Takes the high watermarks and resolves symbolic start offsets. */
static int take_watermarks(struct cli_reader *rd)
{
    rd_kafka_topic_partition_list_t *committed = NULL;

    rd->end = ks_xcalloc((size_t)rd->parts->cnt + 1, sizeof(*rd->end));
    for (int i = 0; i < rd->parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &rd->parts->elems[i];
        int64_t lo = 0, hi = 0;

        rd_kafka_resp_err_t err = watermarks(rd->rk, p, &lo, &hi);

        if (err) {
            fprintf(stderr, "kascade: cannot read the offsets of %s/%d: %s\n",
                    p->topic, p->partition, rd_kafka_err2str(err));
            return -1;
        }
        rd->end[i] = hi;
        if (p->offset == RD_KAFKA_OFFSET_BEGINNING) {
            p->offset = lo;
        } else if (p->offset == RD_KAFKA_OFFSET_END) {
            p->offset = hi;
        }
    }
    if (rd->parts->cnt > 0 &&
        rd->parts->elems[0].offset == RD_KAFKA_OFFSET_STORED) {
        committed = rd_kafka_topic_partition_list_copy(rd->parts);
        if (rd_kafka_committed(rd->rk, committed, 10000)) {
            rd_kafka_topic_partition_list_destroy(committed);
            return -1;
        }
        for (int i = 0; i < committed->cnt; i++) {
            int64_t lo = 0, hi = 0;

            rd_kafka_query_watermark_offsets(rd->rk, committed->elems[i].topic,
                                             committed->elems[i].partition, &lo,
                                             &hi, 10000);
            rd->parts->elems[i].offset = committed->elems[i].offset >= 0
                                             ? committed->elems[i].offset
                                             : lo;
        }
        rd_kafka_topic_partition_list_destroy(committed);
    }
    return 0;
}

struct cli_reader *cli_reader_new(const struct ks_config *cfg,
                                  const char *const *topics,
                                  int n,
                                  int64_t start,
                                  const char *group)
{
    struct cli_reader *rd = ks_xcalloc(1, sizeof(*rd));
    char errstr[512], g[300];

    snprintf(g, sizeof(g), "%s", group ? group : "kascade-cli");
    rd->rk =
        ks_kafka_consumer_new(cfg, g, NULL, NULL, NULL, errstr, sizeof(errstr));
    if (!rd->rk) {
        fprintf(stderr, "kascade: %s\n", errstr);
        goto fail;
    }
    rd->parts = rd_kafka_topic_partition_list_new(16);
    for (int i = 0; i < n; i++) {
        if (add_partitions(rd, topics[i], start) != 0) {
            goto fail;
        }
    }
    if (take_watermarks(rd) != 0 || rd_kafka_assign(rd->rk, rd->parts)) {
        fprintf(stderr, "kascade: cannot assign the partitions\n");
        goto fail;
    }
    return rd;

fail:
    cli_reader_destroy(rd);
    return NULL;
}

rd_kafka_message_t *cli_reader_next(struct cli_reader *rd, int timeout_ms)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rd->rk, timeout_ms);

    if (rkm && rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "kascade: %s\n", rd_kafka_message_errstr(rkm));
        }
        rd_kafka_message_destroy(rkm);
        return NULL;
    }
    if (rkm) {
        for (int i = 0; i < rd->parts->cnt; i++) {
            rd_kafka_topic_partition_t *p = &rd->parts->elems[i];

            if (p->partition == rkm->partition &&
                strcmp(p->topic, rd_kafka_topic_name(rkm->rkt)) == 0) {
                p->offset = rkm->offset + 1;
            }
        }
    }
    return rkm;
}

bool cli_reader_at_end(struct cli_reader *rd)
{
    for (int i = 0; i < rd->parts->cnt; i++) {
        if (rd->parts->elems[i].offset < rd->end[i]) {
            return false;
        }
    }
    return true;
}

int cli_reader_commit(struct cli_reader *rd, const rd_kafka_message_t *rkm)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(rkm->rkt),
                                      rkm->partition)
        ->offset = rkm->offset + 1;
    err = rd_kafka_commit(rd->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    return err ? -1 : 0;
}

void cli_reader_destroy(struct cli_reader *rd)
{
    if (!rd) {
        return;
    }
    if (rd->rk) {
        ks_kafka_consumer_close_destroy(rd->rk, NULL, NULL, 5000);
    }
    if (rd->parts) {
        rd_kafka_topic_partition_list_destroy(rd->parts);
    }
    free(rd->end);
    free(rd);
}
