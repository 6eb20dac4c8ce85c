/*
 * dlq.c - `kascade dlq list|replay`.
 *
 * list reads the dead-letter topic from its start to its current end.
 * replay sends each entry back to the topic it came from (its
 * kascade-source header), with its original key, value and headers less
 * kascade's error headers; progress is committed in the consumer group
 * <prefix>dlq-replay after each entry is acknowledged, so an entry is
 * replayed once however often the command runs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "kafka/client.h"
#include "kafka/produce.h"
#include "reader.h"

#include "base/banned.h"

static void print_entry(const rd_kafka_message_t *rkm)
{
    char code[64], detail[512], source[512];
    int n = rkm->len > 120 ? 120 : (int)rkm->len;

    printf("%" PRId32 "@%" PRId64 "  %s  from %s\n  %s\n  value: %.*s%s\n",
           rkm->partition, rkm->offset,
           ks_kafka_header(rkm, KS_HDR_ERROR, code, sizeof(code)) ? code : "?",
           ks_kafka_header(rkm, KS_HDR_SOURCE, source, sizeof(source)) ? source
                                                                       : "?",
           ks_kafka_header(rkm, KS_HDR_ERROR_DETAIL, detail, sizeof(detail))
               ? detail
               : "",
           n, rkm->payload ? (const char *)rkm->payload : "",
           rkm->len > 120 ? "..." : "");
}

static int list(const struct ks_config *cfg, int64_t max)
{
    char topic[256];
    const char *topics[1] = {topic};
    struct cli_reader *rd;
    int64_t n = 0;

    ks_config_topic(cfg, "dlq", topic, sizeof(topic));
    rd = cli_reader_new(cfg, topics, 1, RD_KAFKA_OFFSET_BEGINNING, NULL);
    if (!rd) {
        return 1;
    }
    while (!cli_reader_at_end(rd) && n < max) {
        rd_kafka_message_t *rkm = cli_reader_next(rd, 1000);

        if (rkm) {
            print_entry(rkm);
            rd_kafka_message_destroy(rkm);
            n++;
        }
    }
    printf("%" PRId64 " entr%s\n", n, n == 1 ? "y" : "ies");
    cli_reader_destroy(rd);
    return 0;
}

/* Produces rkm back to its source topic and waits for the ack. */
static int replay_one(rd_kafka_t *rk, const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *orig = NULL, *hdrs;
    char source[512], *slash;

    if (!ks_kafka_header(rkm, KS_HDR_SOURCE, source, sizeof(source)) ||
        !(slash = strchr(source, '/'))) {
        fprintf(stderr,
                "kascade: %" PRId32 "@%" PRId64 " has no "
                "kascade-source header: skipped\n",
                rkm->partition, rkm->offset);
        return 0;
    }
    *slash = '\0';
    hdrs = rd_kafka_message_headers(rkm, &orig) == 0
               ? rd_kafka_headers_copy(orig)
               : rd_kafka_headers_new(0);
    rd_kafka_header_remove(hdrs, KS_HDR_ERROR);
    rd_kafka_header_remove(hdrs, KS_HDR_ERROR_DETAIL);
    rd_kafka_header_remove(hdrs, KS_HDR_SOURCE);
    if (ks_kafka_produce(rk, source, rkm->key, rkm->key_len, rkm->payload,
                         rkm->len, hdrs, NULL) != KS_OK ||
        rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
    }
    return 1;
}

static int replay(const struct ks_config *cfg, const char *only)
{
    char topic[256], group[256], errstr[512], code[64];
    const char *topics[1] = {topic};
    struct cli_reader *rd;
    rd_kafka_t *rk;
    int n = 0, status = 0;

    ks_config_topic(cfg, "dlq", topic, sizeof(topic));
    ks_config_topic(cfg, "dlq-replay", group, sizeof(group));
    rk = ks_kafka_producer_new(cfg, NULL, NULL, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kascade: %s\n", errstr);
        return 1;
    }
    rd = cli_reader_new(cfg, topics, 1, RD_KAFKA_OFFSET_STORED, group);
    while (rd && !cli_reader_at_end(rd)) {
        rd_kafka_message_t *rkm = cli_reader_next(rd, 1000);
        int r = 0;

        if (!rkm) {
            continue;
        }
        if (!only || (ks_kafka_header(rkm, KS_HDR_ERROR, code, sizeof(code)) &&
                      strcmp(code, only) == 0)) {
            r = replay_one(rk, rkm);
        }
        if (r < 0 || cli_reader_commit(rd, rkm) != 0) {
            fprintf(stderr,
                    "kascade: replay stopped at %" PRId32 "@%" PRId64 "\n",
                    rkm->partition, rkm->offset);
            rd_kafka_message_destroy(rkm);
            status = 1;
            break;
        }
        n += r;
        rd_kafka_message_destroy(rkm);
    }
    printf("replayed %d message(s)\n", n);
    cli_reader_destroy(rd);
    rd_kafka_destroy(rk);
    return rd ? status : 1;
}

int cli_dlq(const struct ks_config *cfg, int argc, char **argv)
{
    int64_t max = INT64_MAX;

    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        if (argc == 4 && strcmp(argv[2], "--max") == 0 &&
            ks_parse_int64(argv[3], 1, INT64_MAX, &max) == 0) {
            return list(cfg, max);
        }
        if (argc == 2) {
            return list(cfg, max);
        }
    } else if (argc >= 2 && strcmp(argv[1], "replay") == 0) {
        if (argc == 2) {
            return replay(cfg, NULL);
        }
        if (argc == 4 && strcmp(argv[2], "--error") == 0) {
            return replay(cfg, argv[3]);
        }
    }
    fprintf(stderr, "usage: kascade dlq list [--max N] | "
                    "dlq replay [--error CODE]\n");
    return 2;
}
