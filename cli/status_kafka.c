/*
 * status_kafka.c - the Kafka figures of `kascade status` (see status.c's
 * opening comment for what each one is): partitions and their offsets by
 * time, the groups' committed offsets and members, all through the Admin
 * API and ListOffsets with bounded timeouts.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "base/util.h"
#include "kafka/client.h"
#include "status.h"

#include "base/banned.h"

/* Kafka offsets of every partition of the topics, index-aligned lists. */
struct offsets {
    rd_kafka_topic_partition_list_t *lo, *hi, *minute, *hour;
};

/* ------------------------------------------------------------ Kafka */

/* Fills parts with every partition of the topics. Returns 0, or -1 with
 * the reason in errstr. */
static int list_partitions(struct status_cli *sc,
                           rd_kafka_topic_partition_list_t *parts,
                           char *errstr,
                           size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;

    err = rd_kafka_metadata(sc->rk, 1, NULL, &md, KAFKA_TIMEOUT_MS);
    if (err) {
        const char *servers = "?";

        for (size_t i = 0; i < sc->cfg->n_kafka; i++) {
            if (strcmp(sc->cfg->kafka[i].key, "bootstrap.servers") == 0) {
                servers = sc->cfg->kafka[i].value;
            }
        }
        snprintf(errstr, errstr_size, "cannot reach Kafka at %s: %s", servers,
                 rd_kafka_err2str(err));
        return -1;
    }
    for (size_t t = 0; t < sc->n_topics; t++) {
        int found = 0;

        for (int i = 0; i < md->topic_cnt && !found; i++) {
            const struct rd_kafka_metadata_topic *mt = &md->topics[i];

            if (strcmp(mt->topic, sc->topics[t]) != 0 || mt->err) {
                continue;
            }
            found = 1;
            for (int p = 0; p < mt->partition_cnt; p++) {
                rd_kafka_topic_partition_list_add(parts, mt->topic,
                                                  mt->partitions[p].id);
            }
        }
        if (!found) {
            snprintf(errstr, errstr_size,
                     "topic %s does not exist (kascade topics create)",
                     sc->topics[t]);
            rd_kafka_metadata_destroy(md);
            return -1;
        }
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* A copy of parts with each offset resolved for timestamp ts (-1: the
 * high watermark, -2: the log start; else the first offset at or after
 * ts, -1 when there is none). NULL with errstr on failure. */
static rd_kafka_topic_partition_list_t *offsets_at(
    rd_kafka_t *rk,
    const rd_kafka_topic_partition_list_t *parts,
    int64_t ts,
    char *errstr,
    size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err;

    for (int i = 0; i < l->cnt; i++) {
        l->elems[i].offset = ts;
    }
    err = rd_kafka_offsets_for_times(rk, l, KAFKA_TIMEOUT_MS);
    for (int i = 0; !err && i < l->cnt; i++) {
        err = l->elems[i].err;
    }
    if (err) {
        snprintf(errstr, errstr_size, "cannot read the topics' offsets: %s",
                 rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(l);
        return NULL;
    }
    return l;
}

static void offsets_fini(struct offsets *o)
{
    rd_kafka_topic_partition_list_t **v[] = {&o->lo, &o->hi, &o->minute,
                                             &o->hour};

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (*v[i]) {
            rd_kafka_topic_partition_list_destroy(*v[i]);
            *v[i] = NULL;
        }
    }
}

/* Records appended to topic since the offsets in since (-1: none). */
static int64_t appended(const struct offsets *o,
                        const rd_kafka_topic_partition_list_t *since,
                        const char *topic)
{
    int64_t n = 0;

    for (int i = 0; i < o->hi->cnt; i++) {
        int64_t from = since->elems[i].offset;

        if (strcmp(o->hi->elems[i].topic, topic) == 0 && from >= 0) {
            n += o->hi->elems[i].offset - from;
        }
    }
    return n;
}

/* Index of topic/partition in the lists, or -1. */
static int part_index(const struct offsets *o, const char *topic, int32_t p)
{
    for (int i = 0; i < o->hi->cnt; i++) {
        if (o->hi->elems[i].partition == p &&
            strcmp(o->hi->elems[i].topic, topic) == 0) {
            return i;
        }
    }
    return -1;
}

/* Waits for the admin result of type on q. Returns the event (caller
 * destroys) or NULL with errstr. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q,
                                    rd_kafka_event_type_t type,
                                    char *errstr,
                                    size_t errstr_size)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, KAFKA_TIMEOUT_MS + 1000);

    if (!ev) {
        snprintf(errstr, errstr_size, "no answer from Kafka in %d s",
                 KAFKA_TIMEOUT_MS / 1000 + 1);
    } else if (rd_kafka_event_type(ev) != type || rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "%s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        ev = NULL;
    }
    return ev;
}

/* An admin request: its options (bounded timeout) and result queue. */
struct admin_req {
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_queue_t *q;
};

static void admin_req_init(struct admin_req *ar,
                           rd_kafka_t *rk,
                           rd_kafka_admin_op_t op)
{
    char why[256];

    ar->opts = rd_kafka_AdminOptions_new(rk, op);
    rd_kafka_AdminOptions_set_request_timeout(ar->opts, KAFKA_TIMEOUT_MS, why,
                                              sizeof(why));
    ar->q = rd_kafka_queue_new(rk);
}

static void admin_req_fini(struct admin_req *ar)
{
    rd_kafka_queue_destroy(ar->q);
    rd_kafka_AdminOptions_destroy(ar->opts);
}

/* The lag of group on topic into *lag. Returns 0, or -1 with errstr. */
static int group_lag(struct status_cli *sc,
                     const struct offsets *o,
                     const char *group,
                     const char *topic,
                     int64_t *lag,
                     char *errstr,
                     size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(16);
    struct admin_req ar;
    rd_kafka_ListConsumerGroupOffsets_t *req;
    const rd_kafka_group_result_t **gr;
    const rd_kafka_topic_partition_list_t *got;
    rd_kafka_event_t *ev;
    size_t cnt = 0;
    int ret = -1;

    for (int i = 0; i < o->hi->cnt; i++) {
        if (strcmp(o->hi->elems[i].topic, topic) == 0) {
            rd_kafka_topic_partition_list_add(parts, topic,
                                              o->hi->elems[i].partition);
        }
    }
    admin_req_init(&ar, sc->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    req = rd_kafka_ListConsumerGroupOffsets_new(group, parts);
    rd_kafka_ListConsumerGroupOffsets(sc->rk, &req, 1, ar.opts, ar.q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    ev = admin_wait(ar.q, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT,
                    errstr, errstr_size);
    if (!ev) {
        goto out;
    }
    gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
    if (cnt != 1 || rd_kafka_group_result_error(gr[0])) {
        snprintf(errstr, errstr_size, "group %s: %s", group,
                 cnt == 1
                     ? rd_kafka_error_string(rd_kafka_group_result_error(gr[0]))
                     : "no result");
        goto out_event;
    }
    got = rd_kafka_group_result_partitions(gr[0]);
    for (int j = 0; got && j < got->cnt; j++) {
        const rd_kafka_topic_partition_t *p = &got->elems[j];
        int i = part_index(o, p->topic, p->partition);

        if (p->err) {
            snprintf(errstr, errstr_size, "group %s on %s/%d: %s", group,
                     p->topic, (int)p->partition, rd_kafka_err2str(p->err));
            goto out_event;
        }
        if (i >= 0) {
            /* No commit yet: the group starts at the log start. */
            *lag += o->hi->elems[i].offset -
                    (p->offset >= 0 ? p->offset : o->lo->elems[i].offset);
        }
    }
    ret = 0;

out_event:
    rd_kafka_event_destroy(ev);
out:
    admin_req_fini(&ar);
    rd_kafka_topic_partition_list_destroy(parts);
    return ret;
}

/* Members of the n groups into members[] (0 for a group that does not
 * exist). Returns 0, or -1 with errstr. */
static int group_members(struct status_cli *sc,
                         const char **groups,
                         size_t n,
                         int64_t **members,
                         char *errstr,
                         size_t errstr_size)
{
    struct admin_req ar;
    const rd_kafka_ConsumerGroupDescription_t **gd;
    rd_kafka_event_t *ev;
    size_t cnt = 0;
    int ret = -1;

    admin_req_init(&ar, sc->rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_DescribeConsumerGroups(sc->rk, groups, n, ar.opts, ar.q);
    ev = admin_wait(ar.q, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT, errstr,
                    errstr_size);
    if (!ev) {
        goto out;
    }
    gd = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        const char *id = rd_kafka_ConsumerGroupDescription_group_id(gd[i]);
        const rd_kafka_error_t *e =
            rd_kafka_ConsumerGroupDescription_error(gd[i]);

        if (e &&
            rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
            snprintf(errstr, errstr_size, "group %s: %s", id,
                     rd_kafka_error_string(e));
            goto out_event;
        }
        for (size_t k = 0; k < n; k++) {
            if (strcmp(groups[k], id) == 0) {
                *members[k] =
                    e ? 0
                      : (int64_t)rd_kafka_ConsumerGroupDescription_member_count(
                            gd[i]);
            }
        }
    }
    ret = 0;

out_event:
    rd_kafka_event_destroy(ev);
out:
    admin_req_fini(&ar);
    return ret;
}

/* The groups of the router and of each tier's workers, and their lag and
 * members. Returns 0, or -1 with errstr. */
static int read_groups(struct status_cli *sc,
                       const struct offsets *o,
                       struct status *st,
                       char *errstr,
                       size_t errstr_size)
{
    const struct ks_config *cfg = sc->cfg;
    size_t n = cfg->n_tiers + 1;
    char(*groups)[KS_TOPIC_MAX] = ks_xcalloc(n, sizeof(*groups));
    const char **ids = ks_xcalloc(n, sizeof(*ids));
    int64_t **members = ks_xcalloc(n, sizeof(*members));
    char suffix[128];
    int ret = -1;

    ks_config_topic(cfg, "router", groups[0], sizeof(groups[0]));
    ids[0] = groups[0];
    members[0] = &st->router_members;
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        snprintf(suffix, sizeof(suffix), "worker.%s", cfg->tiers[t].name);
        ks_config_topic(cfg, suffix, groups[t + 1], sizeof(groups[t + 1]));
        ids[t + 1] = groups[t + 1];
        members[t + 1] = &st->tiers[t].members;
    }
    if (group_lag(sc, o, groups[0], sc->topics[T_TASKS], &st->tasks_lag, errstr,
                  errstr_size) != 0 ||
        group_lag(sc, o, groups[0], sc->topics[T_ESC], &st->esc_lag, errstr,
                  errstr_size) != 0) {
        goto out;
    }
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        if (group_lag(sc, o, groups[t + 1], sc->topics[T_FIXED + t],
                      &st->tiers[t].lag, errstr, errstr_size) != 0) {
            goto out;
        }
    }
    ret = group_members(sc, ids, n, members, errstr, errstr_size);

out:
    free(members);
    free(ids);
    free(groups);
    return ret;
}

void status_read_kafka(struct status_cli *sc, struct status *st)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(64);
    struct offsets o = {NULL, NULL, NULL, NULL};
    int64_t wall = ks_wall_ms();
    char *e = st->kafka_err;
    size_t es = sizeof(st->kafka_err);

    if (list_partitions(sc, parts, e, es) != 0 ||
        !(o.lo = offsets_at(sc->rk, parts, RD_KAFKA_OFFSET_BEGINNING, e, es)) ||
        !(o.hi = offsets_at(sc->rk, parts, RD_KAFKA_OFFSET_END, e, es)) ||
        !(o.minute = offsets_at(sc->rk, parts, wall - MINUTE_MS, e, es)) ||
        !(o.hour = offsets_at(sc->rk, parts, wall - HOUR_MS, e, es))) {
        goto out;
    }
    st->results_per_min = appended(&o, o.minute, sc->topics[T_RESULTS]);
    st->esc_per_min = appended(&o, o.minute, sc->topics[T_ESC]);
    st->dlq_last_hour = appended(&o, o.hour, sc->topics[T_DLQ]);
    for (size_t t = 0; t < sc->cfg->n_tiers; t++) {
        st->tiers[t].in_per_min =
            appended(&o, o.minute, sc->topics[T_FIXED + t]);
    }
    read_groups(sc, &o, st, e, es);

out:
    offsets_fini(&o);
    rd_kafka_topic_partition_list_destroy(parts);
}
