/*
 * devbroker.c - `kascade devbroker`: librdkafka's mock cluster listening on
 * loopback, in memory only, with kascade's topics created. For the
 * zero-install demo and for fault injection; never the only broker a
 * behaviour is tested on.
 *
 * Prints the bootstrap address on stdout (and into --ready-file when
 * given), then runs until SIGTERM/SIGINT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "base/log.h"
#include "base/util.h"
#include "cli.h"
#include "process/daemon.h"

#include "base/banned.h"

static int write_ready(const char *path, const char *bootstraps)
{
    char tmp[4096];
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fp = fopen(tmp, "w");
    if (!fp) {
        return -1;
    }
    fprintf(fp, "%s\n", bootstraps);
    if (fclose(fp) != 0) {
        return -1;
    }
    return rename(tmp, path);
}

static int create_topics(const struct ks_config *cfg,
                         rd_kafka_mock_cluster_t *mc)
{
    char **names;
    size_t n = cli_topic_names(cfg, &names);
    int failed = 0;

    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, names[i], cfg->partitions, 1);

        if (err) {
            fprintf(stderr, "kascade: devbroker: topic %s: %s\n", names[i],
                    rd_kafka_err2str(err));
            failed = 1;
        }
        free(names[i]);
    }
    free(names);
    return failed ? -1 : 0;
}

int cli_devbroker(const struct ks_config *cfg, int argc, char **argv)
{
    const char *ready = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_mock_cluster_t *mc = NULL;
    char errstr[512];
    rd_kafka_t *rk;
    int status = 1;

    if (argc == 3 && strcmp(argv[1], "--ready-file") == 0) {
        ready = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: kascade devbroker [--ready-file FILE]\n");
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kascade: devbroker: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc || create_topics(cfg, mc) != 0) {
        fprintf(stderr, "kascade: devbroker: cannot start the mock cluster\n");
        goto out;
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    if (ready && write_ready(ready, rd_kafka_mock_cluster_bootstraps(mc))) {
        fprintf(stderr, "kascade: devbroker: cannot write %s\n", ready);
        goto out;
    }
    ks_log_info("devbroker", "in-memory Kafka on %s (SIGTERM stops it)",
                rd_kafka_mock_cluster_bootstraps(mc));
    while (!ks_stop_requested) {
        usleep(100 * 1000);
    }
    status = 0;

out:
    if (mc) {
        rd_kafka_mock_cluster_destroy(mc);
    }
    rd_kafka_destroy(rk);
    return status;
}
