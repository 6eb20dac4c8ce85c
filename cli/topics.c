/*
 * topics.c - `kascade topics create [--tenant NAME]...`: every topic
 * kascade uses, with the configured partition count and replication
 * factor, and for each --tenant the tenant's tasks topic
 * (<prefix>tasks.<NAME>, topics.tenant_topics). Topics that exist already
 * are left as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "base/util.h"
#include "cli.h"
#include "kafka/client.h"
#include "kafka/produce.h"

#include "base/banned.h"

size_t cli_topic_names(const struct ks_config *cfg, char ***names)
{
    static const char *const fixed[] = {"tasks", "escalations", "results",
                                        "dlq"};
    size_t n = 0, cap = 5 + cfg->n_tiers;
    char buf[256], suffix[128];

    *names = ks_xcalloc(cap, sizeof(**names));
    for (size_t i = 0; i < 4; i++) {
        ks_config_topic(cfg, fixed[i], buf, sizeof(buf));
        (*names)[n++] = ks_xstrdup(buf);
    }
    for (size_t i = 0; i < cfg->n_tiers; i++) {
        snprintf(suffix, sizeof(suffix), "tier.%s", cfg->tiers[i].name);
        ks_config_topic(cfg, suffix, buf, sizeof(buf));
        (*names)[n++] = ks_xstrdup(buf);
    }
    /* last, so the indices of the others stay (cli/status.h) */
    ks_config_topic(cfg, "deferred", buf, sizeof(buf));
    (*names)[n++] = ks_xstrdup(buf);
    return n;
}

static int report(const rd_kafka_CreateTopics_result_t *res)
{
    size_t cnt;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(res, &cnt);
    int failed = 0;

    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
        const char *name = rd_kafka_topic_result_name(tr[i]);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("created %s\n", name);
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            printf("exists  %s\n", name);
        } else {
            fprintf(stderr, "kascade: topic %s: %s\n", name,
                    rd_kafka_topic_result_error_string(tr[i]));
            failed = 1;
        }
    }
    return failed;
}

/* Adds the tasks topic of each tenant to names (n of them). */
static size_t add_tenant_topics(const struct ks_config *cfg,
                                char ***names,
                                size_t n,
                                char *const *tenants,
                                size_t n_tenants)
{
    char suffix[KS_TOPIC_MAX], buf[KS_TOPIC_MAX];

    *names = ks_xrealloc(*names, (n + n_tenants) * sizeof(**names));
    for (size_t i = 0; i < n_tenants; i++) {
        snprintf(suffix, sizeof(suffix), "tasks.%s", tenants[i]);
        ks_config_topic(cfg, suffix, buf, sizeof(buf));
        (*names)[n++] = ks_xstrdup(buf);
    }
    return n;
}

static int create_all(const struct ks_config *cfg,
                      rd_kafka_t *rk,
                      char *const *tenants,
                      size_t n_tenants)
{
    char **names;
    size_t n = add_tenant_topics(cfg, &names, cli_topic_names(cfg, &names),
                                 tenants, n_tenants);
    rd_kafka_NewTopic_t **nt = ks_xcalloc(n, sizeof(*nt));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;
    char why[256];
    int status = 1;

    for (size_t i = 0; i < n; i++) {
        nt[i] =
            rd_kafka_NewTopic_new(names[i], cfg->partitions,
                                  cfg->replication_factor, why, sizeof(why));
    }
    rd_kafka_CreateTopics(rk, nt, n, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) {
        fprintf(stderr, "kascade: topics create: no answer from Kafka in "
                        "30 s\n");
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "kascade: topics create: %s\n",
                rd_kafka_event_error_string(ev));
    } else {
        status = report(rd_kafka_event_CreateTopics_result(ev));
    }
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_NewTopic_destroy_array(nt, n);
    free(nt);
    rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    return status;
}

int cli_topics(const struct ks_config *cfg, int argc, char **argv)
{
    char errstr[512];
    rd_kafka_t *rk;
    int status;

    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "usage: kascade topics create [--tenant NAME]...\n");
        return 2;
    }
    for (int i = 2; i < argc; i += 2) {
        struct ks_codec_error cerr = {0};

        if (strcmp(argv[i], "--tenant") != 0 || i + 1 >= argc) {
            fprintf(stderr,
                    "usage: kascade topics create [--tenant NAME]...\n");
            return 2;
        }
        if (ks_tenant_check(argv[i + 1], &cerr) != KS_OK) {
            fprintf(stderr, "kascade: topics create: --tenant '%s': %s\n",
                    argv[i + 1], cerr.detail);
            return 2;
        }
        argv[i / 2] = argv[i + 1]; /* the names, packed from argv[1] */
    }
    rk = ks_kafka_producer_new(cfg, NULL, NULL, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kascade: %s\n", errstr);
        return 1;
    }
    status = create_all(cfg, rk, argv + 1, (size_t)(argc - 2) / 2);
    rd_kafka_destroy(rk);
    return status;
}
