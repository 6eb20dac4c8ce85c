/*
 * status.c - `kascade status [--json] [--watch [SEC]] [--metrics URL,...]`:
 * the fleet on one screen (docs/design.md sections 3, 7 and 10).
 *
 * Every figure is read from where it lives, nothing is estimated:
 *   - lag: per partition, the high watermark minus the group's committed
 *     offset (the log start where the group has committed nothing), for
 *     each tier topic in its workers' group <prefix>worker.<tier> and for
 *     the tasks and escalations topics in the router's group
 *     <prefix>router (Admin ListConsumerGroupOffsets);
 *   - members: DescribeConsumerGroups of the same groups;
 *   - per minute and per hour: offsets appended to a topic since then
 *     (ListOffsets by timestamp, rd_kafka_offsets_for_times). Results are
 *     not per tier in their topic, so results and escalations per minute
 *     are fleet-wide; per tier, "in/min" is what was routed to its topic.
 *     Offsets count transaction markers too (router.transactions), and
 *     Results sent to a task's reply_to are not in the results topic;
 *   - spend: ks_budget_read of each tier's budget for today (UTC, by
 *     ks_config_budget_now_ms), and the share of the day elapsed;
 *   - circuits: kascade_circuit_state scraped from the workers' /metrics
 *     given with --metrics (the worst state any worker reports).
 * A section that cannot be read says so on stderr (and in the JSON's
 * "errors") and the exit status is 1; every call has a bounded timeout.
 * --watch redraws until SIGINT/SIGTERM and then exits 0.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "base/util.h"
#include "cli.h"
#include "kafka/client.h"
#include "process/daemon.h"
#include "redis/budget.h"
#include "redis/store.h"
#include "wire/codec.h"

#include "base/banned.h"

#define KAFKA_TIMEOUT_MS   5000
#define METRICS_TIMEOUT_MS 2000
#define METRICS_MAX_BYTES  (4 << 20) /* a scrape bigger than this is refused */
#define DAY_MS             86400000LL
#define MINUTE_MS          60000LL
#define HOUR_MS            3600000LL
#define MAX_WATCH_S        86400

static const char usage[] =
    "usage: kascade status [--json] [--watch [SEC]] [--metrics URL[,URL...]]\n";

/* The fixed topics, in this order, before the tier topics. */
enum {
    T_TASKS,
    T_ESC,
    T_RESULTS,
    T_DLQ,
    T_FIXED
};

/* What one tier shows. */
struct tier_status {
    int64_t lag, members, in_per_min;
    struct ks_budget_state budget;
    int *circuit; /* per provider: -1 not seen, else 0 closed, 1 open,
                     2 half-open (the worst any worker reports) */
};

/* One reading of the whole fleet; errors are "" when the section was
 * read. */
struct status {
    int64_t now_ms; /* budget clock */
    char day[9];
    double elapsed;
    int64_t router_members, tasks_lag, esc_lag;
    int64_t results_per_min, esc_per_min, dlq_last_hour;
    struct tier_status *tiers;
    char kafka_err[512], redis_err[512], metrics_err[512];
};

/* What the command holds across redraws. */
struct status_cli {
    const struct ks_config *cfg;
    rd_kafka_t *rk;      /* admin, metadata and offsets */
    struct ks_store *rs; /* connects lazily */
    char **topics;       /* T_FIXED fixed ones, then one per tier */
    size_t n_topics;
    char **metrics_urls; /* NULL when --metrics was not given */
    size_t n_urls;
};

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

static void read_kafka(struct status_cli *sc, struct status *st)
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

/* ------------------------------------------------------------ Redis */

static void read_budgets(struct status_cli *sc, struct status *st)
{
    const struct ks_config *cfg = sc->cfg;
    const char *host = strstr(cfg->redis_url, "://");
    const char *at = host ? strchr(host, '@') : NULL;

    for (size_t t = 0; t < cfg->n_tiers; t++) {
        enum ks_err err = ks_budget_read(
            sc->rs, "tier", cfg->tiers[t].name, st->day,
            cfg->tiers[t].daily_budget_micro, st->now_ms, &st->tiers[t].budget);

        if (err == KS_ERR_RETRY || err == KS_ERR_TIMEOUT) {
            /* The URL without its password (redis://:pw@host). */
            snprintf(st->redis_err, sizeof(st->redis_err),
                     "cannot reach Redis at %.*s%s",
                     at ? (int)(host + 3 - cfg->redis_url) : 0, cfg->redis_url,
                     at ? at + 1 : cfg->redis_url);
            return;
        }
        if (err != KS_OK) {
            snprintf(st->redis_err, sizeof(st->redis_err), "Redis: %s",
                     ks_err_str(err));
            return;
        }
    }
}

/* ---------------------------------------------------------- metrics */

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
    struct ks_buf *body = opaque;

    if (body->len + size * n > METRICS_MAX_BYTES) {
        return 0; /* curl fails the transfer */
    }
    ks_buf_append(body, data, size * n);
    return size * n;
}

/* The value of label name="..." in a series line, into out. */
static bool label_value(const char *line,
                        const char *name,
                        char *out,
                        size_t size)
{
    char key[64];
    const char *v, *end;

    snprintf(key, sizeof(key), "%s=\"", name);
    v = strstr(line, key);
    end = v ? strchr(v + strlen(key), '"') : NULL;
    if (!end) {
        return false;
    }
    v += strlen(key);
    snprintf(out, size, "%.*s", (int)(end - v), v);
    return true;
}

/* Worse first: open, half-open, closed. */
static int circuit_rank(int state)
{
    return state == 1 ? 3 : state == 2 ? 2 : state == 0 ? 1 : 0;
}

/* Takes the kascade_circuit_state series of one scrape. */
static void take_circuits(const struct ks_config *cfg,
                          char *body,
                          struct status *st)
{
    static const char name[] = "kascade_circuit_state{";
    char tier[128], prov[256];

    for (char *line = body, *next; line && *line; line = next) {
        char *brace;
        int64_t state;

        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        if (strncmp(line, name, sizeof(name) - 1) != 0 ||
            !(brace = strchr(line, '}')) ||
            !label_value(line, "tier", tier, sizeof(tier)) ||
            !label_value(line, "provider", prov, sizeof(prov)) ||
            ks_parse_int64(brace + 1 + strspn(brace + 1, " "), 0, 2, &state) !=
                0) {
            continue;
        }
        for (size_t t = 0; t < cfg->n_tiers; t++) {
            const struct ks_tier_cfg *tc = &cfg->tiers[t];

            for (size_t p = 0;
                 strcmp(tc->name, tier) == 0 && p < tc->n_providers; p++) {
                int *c = &st->tiers[t].circuit[p];

                if (strcmp(tc->providers[p].model, prov) == 0 &&
                    circuit_rank((int)state) > circuit_rank(*c)) {
                    *c = (int)state;
                }
            }
        }
    }
}

static void read_metrics(struct status_cli *sc, struct status *st)
{
    CURL *curl = curl_easy_init();
    struct ks_buf body, url;

    ks_buf_init(&body);
    ks_buf_init(&url);
    for (size_t i = 0; curl && i < sc->n_urls; i++) {
        const char *u = sc->metrics_urls[i];
        size_t len = strlen(u);
        CURLcode rc;
        long code = 0;

        url.len = 0;
        ks_buf_printf(
            &url, "%s%s", u,
            len >= 8 && strcmp(u + len - 8, "/metrics") == 0 ? "" : "/metrics");
        body.len = 0;
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, url.data);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)METRICS_TIMEOUT_MS);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 200) {
            snprintf(st->metrics_err, sizeof(st->metrics_err), "%s: %s",
                     url.data,
                     rc != CURLE_OK ? curl_easy_strerror(rc) : "not HTTP 200");
            continue;
        }
        ks_buf_append(&body, "", 1);
        take_circuits(sc->cfg, body.data, st);
    }
    if (!curl) {
        snprintf(st->metrics_err, sizeof(st->metrics_err), "curl: no handle");
    }
    ks_buf_fini(&url);
    ks_buf_fini(&body);
    curl_easy_cleanup(curl);
}

/* ---------------------------------------------------------- reading */

static void status_init(struct status *st, const struct ks_config *cfg)
{
    memset(st, 0, sizeof(*st));
    st->tiers = ks_xcalloc(cfg->n_tiers + 1, sizeof(*st->tiers));
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        st->tiers[t].circuit =
            ks_xcalloc(cfg->tiers[t].n_providers + 1, sizeof(int));
        for (size_t p = 0; p < cfg->tiers[t].n_providers; p++) {
            st->tiers[t].circuit[p] = -1;
        }
    }
}

static void status_fini(struct status *st, const struct ks_config *cfg)
{
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        free(st->tiers[t].circuit);
    }
    free(st->tiers);
}

static void status_read(struct status_cli *sc, struct status *st)
{
    st->now_ms = ks_config_budget_now_ms(sc->cfg);
    ks_budget_day(st->now_ms, st->day);
    st->elapsed = (double)(st->now_ms % DAY_MS) / (double)DAY_MS;
    read_kafka(sc, st);
    read_budgets(sc, st);
    if (sc->n_urls > 0) {
        read_metrics(sc, st);
    }
}

static bool status_failed(const struct status *st)
{
    return st->kafka_err[0] || st->redis_err[0] || st->metrics_err[0];
}

/* ---------------------------------------------------------- output */

static const char *circuit_name(int state)
{
    return state == 0 ? "closed" : state == 1 ? "open" : "half-open";
}

/* "model:state ..." of a tier, or why not. */
static void circuits_text(const struct status_cli *sc,
                          const struct status *st,
                          size_t t,
                          char *out,
                          size_t size)
{
    const struct ks_tier_cfg *tc = &sc->cfg->tiers[t];
    size_t len = 0;

    out[0] = '\0';
    if (sc->n_urls == 0) {
        snprintf(out, size, "n/a (pass --metrics)");
        return;
    }
    for (size_t p = 0; p < tc->n_providers && len < size; p++) {
        int c = st->tiers[t].circuit[p];

        len += (size_t)snprintf(out + len, size - len, "%s%s:%s", p ? " " : "",
                                tc->providers[p].model,
                                c < 0 ? "?" : circuit_name(c));
    }
}

static void print_text(const struct status_cli *sc, const struct status *st)
{
    const struct ks_config *cfg = sc->cfg;
    bool kafka = !st->kafka_err[0], redis = !st->redis_err[0];
    int name_w = 4;
    char when[32], circuits[512];
    struct tm tm;
    time_t now = (time_t)(ks_wall_ms() / 1000);

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        int len = (int)strlen(cfg->tiers[t].name);

        name_w = len > name_w ? len : name_w;
    }
    printf("kascade status  %s UTC  budget day %s, %.0f%% elapsed\n", when,
           st->day, st->elapsed * 100.0);
    if (kafka) {
        printf("router: %" PRId64 " member(s), lag tasks %" PRId64
               ", escalations %" PRId64 "\n",
               st->router_members, st->tasks_lag, st->esc_lag);
        printf("fleet:  results %" PRId64 "/min, escalations %" PRId64
               "/min, DLQ %" PRId64 " in the last hour\n",
               st->results_per_min, st->esc_per_min, st->dlq_last_hour);
    }
    printf("%-*s  %8s  %7s  %6s  %14s  %14s  %5s  %s\n", name_w, "tier", "lag",
           "members", "in/min", "spent USD", "limit USD", "used", "circuits");
    for (size_t t = 0; t < cfg->n_tiers; t++) {
        const struct tier_status *ts = &st->tiers[t];
        const struct ks_budget_state *b = &ts->budget;
        char lag[24] = "?", mem[24] = "?", in[24] = "?", spent[32] = "?",
             limit[32] = "?", used[16] = "?";

        if (kafka) {
            snprintf(lag, sizeof(lag), "%" PRId64, ts->lag);
            snprintf(mem, sizeof(mem), "%" PRId64, ts->members);
            snprintf(in, sizeof(in), "%" PRId64, ts->in_per_min);
        }
        if (redis) {
            bool capped = b->limit_micro != KS_BUDGET_NO_LIMIT;

            snprintf(spent, sizeof(spent), "%.6f",
                     ks_micro_to_usd(b->spent_micro));
            snprintf(limit, sizeof(limit), capped ? "%.6f%s" : "unlimited",
                     ks_micro_to_usd(b->limit_micro),
                     b->limit_is_runtime ? "*" : "");
            snprintf(used, sizeof(used), capped ? "%.0f%%" : "-",
                     b->limit_micro > 0
                         ? 100.0 *
                               (double)(b->spent_micro + b->reserved_micro) /
                               (double)b->limit_micro
                         : 100.0);
        }
        circuits_text(sc, st, t, circuits, sizeof(circuits));
        printf("%-*s  %8s  %7s  %6s  %14s  %14s  %5s  %s\n", name_w,
               cfg->tiers[t].name, lag, mem, in, spent, limit, used, circuits);
    }
    printf("lag: the group's committed offsets behind the topic's end; "
           "in/min: routed to the tier;\nresults and escalations per minute "
           "are fleet-wide; used: (spent + reserved) / limit\n");
}

/* Counts read from Kafka: each is null when Kafka could not be read. */
struct json_count {
    const char *key;
    int64_t value;
};

static void json_counts(cJSON *o,
                        bool ok,
                        const struct json_count *counts,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToObject(o, counts[i].key,
                              ok ? cJSON_CreateNumber((double)counts[i].value)
                                 : cJSON_CreateNull());
    }
}

static cJSON *json_usd(bool ok, int64_t micro)
{
    return ok ? cJSON_CreateNumber(ks_micro_to_usd(micro)) : cJSON_CreateNull();
}

static cJSON *json_budget(const struct tier_status *ts, bool ok)
{
    const struct ks_budget_state *b = &ts->budget;
    bool capped = ok && b->limit_micro != KS_BUDGET_NO_LIMIT;
    cJSON *o;

    if (!ok) {
        return cJSON_CreateNull();
    }
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "spent_usd", json_usd(true, b->spent_micro));
    cJSON_AddItemToObject(o, "reserved_usd", json_usd(true, b->reserved_micro));
    cJSON_AddItemToObject(o, "limit_usd", json_usd(capped, b->limit_micro));
    cJSON_AddStringToObject(o, "limit_source",
                            b->limit_is_runtime ? "runtime" : "config");
    return o;
}

static cJSON *json_circuits(const struct status_cli *sc,
                            const struct status *st,
                            size_t t)
{
    const struct ks_tier_cfg *tc = &sc->cfg->tiers[t];
    cJSON *o;

    if (sc->n_urls == 0) {
        return cJSON_CreateNull();
    }
    o = cJSON_CreateObject();
    for (size_t p = 0; p < tc->n_providers; p++) {
        int c = st->tiers[t].circuit[p];

        cJSON_AddItemToObject(o, tc->providers[p].model,
                              c < 0 ? cJSON_CreateNull()
                                    : cJSON_CreateString(circuit_name(c)));
    }
    return o;
}

static void json_error(cJSON *errors, const char *key, const char *err)
{
    cJSON_AddItemToObject(
        errors, key, err[0] ? cJSON_CreateString(err) : cJSON_CreateNull());
}

static int print_json(const struct status_cli *sc, const struct status *st)
{
    bool kafka = !st->kafka_err[0], redis = !st->redis_err[0];
    cJSON *root = cJSON_CreateObject(), *o, *arr;
    char *text;

    cJSON_AddNumberToObject(root, "time_ms", (double)ks_wall_ms());
    cJSON_AddStringToObject(root, "day", st->day);
    cJSON_AddNumberToObject(root, "day_elapsed",
                            round(st->elapsed * 1e4) / 1e4);
    o = cJSON_AddObjectToObject(root, "router");
    json_counts(o, kafka,
                (const struct json_count[]){{"members", st->router_members},
                                            {"tasks_lag", st->tasks_lag},
                                            {"escalations_lag", st->esc_lag}},
                3);
    o = cJSON_AddObjectToObject(root, "fleet");
    json_counts(
        o, kafka,
        (const struct json_count[]){{"results_per_min", st->results_per_min},
                                    {"escalations_per_min", st->esc_per_min},
                                    {"dlq_last_hour", st->dlq_last_hour}},
        3);
    arr = cJSON_AddArrayToObject(root, "tiers");
    for (size_t t = 0; t < sc->cfg->n_tiers; t++) {
        const struct tier_status *ts = &st->tiers[t];

        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", sc->cfg->tiers[t].name);
        json_counts(o, kafka,
                    (const struct json_count[]){{"lag", ts->lag},
                                                {"members", ts->members},
                                                {"in_per_min", ts->in_per_min}},
                    3);
        cJSON_AddItemToObject(o, "budget", json_budget(ts, redis));
        cJSON_AddItemToObject(o, "circuits", json_circuits(sc, st, t));
        cJSON_AddItemToArray(arr, o);
    }
    o = cJSON_AddObjectToObject(root, "errors");
    json_error(o, "kafka", st->kafka_err);
    json_error(o, "redis", st->redis_err);
    json_error(o, "metrics", st->metrics_err);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "kascade: status: out of memory\n");
        return -1;
    }
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

/* One reading, printed. Returns the exit status it deserves. */
static int show_once(struct status_cli *sc, bool json, bool clear)
{
    struct status st;
    int status;

    status_init(&st, sc->cfg);
    status_read(sc, &st);
    if (clear) {
        fputs("\033[H\033[2J", stdout);
    }
    status = json ? print_json(sc, &st) : (print_text(sc, &st), 0);
    if (st.kafka_err[0]) {
        fprintf(stderr, "kascade: status: kafka: %s\n", st.kafka_err);
    }
    if (st.redis_err[0]) {
        fprintf(stderr, "kascade: status: redis: %s\n", st.redis_err);
    }
    if (st.metrics_err[0]) {
        fprintf(stderr, "kascade: status: metrics: %s\n", st.metrics_err);
    }
    fflush(stdout);
    status = status != 0 || status_failed(&st) ? 1 : 0;
    status_fini(&st, sc->cfg);
    return status;
}

/* ------------------------------------------------------------ setup */

/* Splits "URL[,URL...]" into sc->metrics_urls. */
static void split_urls(struct status_cli *sc, const char *list)
{
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, ",");

        if (len > 0) {
            sc->metrics_urls = ks_xrealloc(
                sc->metrics_urls, (sc->n_urls + 1) * sizeof(*sc->metrics_urls));
            sc->metrics_urls[sc->n_urls++] = ks_xstrndup(s, len);
        }
        s += len + (s[len] == ',');
    }
}

static int setup(struct status_cli *sc)
{
    char errstr[512], group[KS_TOPIC_MAX];

    sc->n_topics = cli_topic_names(sc->cfg, &sc->topics);
    /* A consumer that never subscribes: its group is never joined, and it
     * brings the config's Kafka properties and the log callbacks. */
    ks_config_topic(sc->cfg, "status", group, sizeof(group));
    sc->rk = ks_kafka_consumer_new(sc->cfg, group, NULL, NULL, NULL, errstr,
                                   sizeof(errstr));
    if (!sc->rk) {
        fprintf(stderr, "kascade: status: kafka: %s\n", errstr);
        return -1;
    }
    sc->rs = ks_store_new(sc->cfg, errstr, sizeof(errstr));
    if (!sc->rs) {
        fprintf(stderr, "kascade: status: redis: %s\n", errstr);
        return -1;
    }
    return 0;
}

static void teardown(struct status_cli *sc)
{
    ks_store_destroy(sc->rs);
    if (sc->rk) {
        ks_kafka_consumer_close_destroy(sc->rk, NULL, NULL, 2000);
    }
    for (size_t i = 0; i < sc->n_topics; i++) {
        free(sc->topics[i]);
    }
    free(sc->topics);
    for (size_t i = 0; i < sc->n_urls; i++) {
        free(sc->metrics_urls[i]);
    }
    free(sc->metrics_urls);
}

/* Sleeps sec seconds, or less when a stop is requested. */
static void watch_sleep(int64_t sec)
{
    int64_t until = ks_mono_ms() + sec * 1000;

    while (!ks_stop_requested && ks_mono_ms() < until) {
        struct timespec ts = {0, 100 * 1000000L};

        nanosleep(&ts, NULL);
    }
}

int cli_status(const struct ks_config *cfg, int argc, char **argv)
{
    struct status_cli sc = {cfg, NULL, NULL, NULL, 0, NULL, 0};
    int64_t watch = 0;
    bool json = false;
    int status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--watch") == 0) {
            watch = 2;
            if (i + 1 < argc && argv[i + 1][0] != '-' &&
                ks_parse_int64(argv[++i], 1, MAX_WATCH_S, &watch) != 0) {
                fprintf(stderr,
                        "kascade: status: --watch takes 1 to %d "
                        "seconds\n%s",
                        MAX_WATCH_S, usage);
                status = 2;
                goto out;
            }
        } else if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc) {
            split_urls(&sc, argv[++i]);
        } else {
            fprintf(stderr, "kascade: status: unexpected argument '%s'\n%s",
                    argv[i], usage);
            status = 2;
            goto out;
        }
    }
    if (sc.n_urls > 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
    }
    if (setup(&sc) == 0) {
        bool clear = watch > 0 && !json && isatty(STDOUT_FILENO);

        status = show_once(&sc, json, clear);
        while (watch > 0 && !ks_stop_requested) {
            watch_sleep(watch);
            if (!ks_stop_requested) {
                show_once(&sc, json, clear);
            }
        }
        /* Watching ends only by a signal: that is a clean stop. */
        status = watch > 0 ? 0 : status;
    }
    if (sc.n_urls > 0) {
        curl_global_cleanup();
    }

out:
    teardown(&sc);
    return status;
}
