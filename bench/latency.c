/*
 * latency.c - bench-latency: what a task's trip through kascade takes,
 * measured from outside the fleet, and the same for a direct HTTP call.
 *
 *   bench-latency -b BOOTSTRAP --tasks TOPIC --results TOPIC -r RATE -n N
 *     Open loop: task i is due at start + i / RATE and is produced then
 *     (librdkafka, linger.ms 0, acks all), whatever happened to the
 *     earlier ones; its latency runs from that due time (so a stall in
 *     the fleet or in this producer is counted, not hidden) to the
 *     arrival of its Result on the results topic, read by a consumer
 *     assigned to every partition at their end before the first task is
 *     sent. Task i is {"id": "lat-<run>-<i>", "type": "answer", ...}.
 *   bench-latency --http BASE_URL -r RATE -n N
 *     The baseline: the same open loop of chat-completion calls straight
 *     to the model server (curl multi, no Kafka, no Redis); latency from
 *     the due time to the end of the response.
 *
 * Prints "n=N lost=L p50=... p95=... p99=... p999=... max=..." in ms on
 * stdout. Results that do not arrive within 30 s of the last send count
 * as lost (and the exit status is 1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>

#include "base/util.h"

#include "base/banned.h"

#define DRAIN_S 30

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until(int64_t us)
{
    int64_t d = us - now_us();
    struct timespec ts;

    if (d <= 0) {
        return;
    }
    ts.tv_sec = d / 1000000;
    ts.tv_nsec = (d % 1000000) * 1000;
    nanosleep(&ts, NULL);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Prints the percentiles of lat (us, < 0: lost); sorts it. */
static int lat_report(int64_t *lat, long n)
{
    long lost = 0, k = 0;

    for (long i = 0; i < n; i++) {
        if (lat[i] < 0) {
            lost++;
        } else {
            lat[k++] = lat[i];
        }
    }
    qsort(lat, (size_t)k, sizeof(*lat), cmp_i64);
#define PCT(p) (k ? (double)lat[(long)((double)(k - 1) * (p))] / 1e3 : 0.0)
    printf("n=%ld lost=%ld p50=%.2f p95=%.2f p99=%.2f p999=%.2f max=%.2f\n", n,
           lost, PCT(0.50), PCT(0.95), PCT(0.99), PCT(0.999), PCT(1.0));
#undef PCT
    return lost ? 1 : 0;
}

/* On stderr: the two parts of each latency split at the Result's
 * CreateTime (set by the worker's produce call): due -> produced, and
 * produced -> arrived (the worker's linger, the broker, this consumer).
 * Millisecond timestamps: each part is +-1 ms. */
static void split_report(const int64_t *due,
                         const int64_t *made,
                         const int64_t *lat,
                         long n)
{
    int64_t *a = ks_xcalloc((size_t)n + 1, sizeof(*a));
    int64_t *b = ks_xcalloc((size_t)n + 1, sizeof(*b));
    long k = 0;

    for (long i = 0; i < n; i++) {
        if (lat[i] >= 0) {
            a[k] = made[i] - due[i];
            b[k++] = due[i] + lat[i] - made[i];
        }
    }
    qsort(a, (size_t)k, sizeof(*a), cmp_i64);
    qsort(b, (size_t)k, sizeof(*b), cmp_i64);
#define Q(v, p) (k ? (double)v[(long)((double)(k - 1) * (p))] / 1e3 : 0.0)
    fprintf(stderr,
            "split: due->result produced p50=%.1f p99=%.1f max=%.1f; "
            "produced->arrived p50=%.1f p99=%.1f max=%.1f\n",
            Q(a, 0.5), Q(a, 0.99), Q(a, 1.0), Q(b, 0.5), Q(b, 0.99), Q(b, 1.0));
#undef Q
    free(a);
    free(b);
}

/* ---- straight to the model server --------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

static const char http_body[] =
    "{\"model\": \"mid-model\", \"max_tokens\": 16, \"messages\": [{\"role\": "
    "\"user\", \"content\": \"How long does a refund take to reach my "
    "card?\"}]}";

static void http_start(CURLM *multi,
                       const char *url,
                       struct curl_slist *hdrs,
                       long i)
{
    CURL *e = curl_easy_init();

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, http_body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)DRAIN_S * 1000);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)(intptr_t)i);
    curl_multi_add_handle(multi, e);
}

static long http_reap(CURLM *multi, const int64_t *due, int64_t *lat)
{
    CURLMsg *msg;
    int left;
    long ended = 0;

    while ((msg = curl_multi_info_read(multi, &left))) {
        long status = 0;
        char *priv = NULL;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        if (msg->data.result == CURLE_OK && status == 200) {
            lat[(intptr_t)priv] = now_us() - due[(intptr_t)priv];
        }
        curl_multi_remove_handle(multi, msg->easy_handle);
        curl_easy_cleanup(msg->easy_handle);
        ended++;
    }
    return ended;
}

static int lat_http(const char *base, double rate, long n)
{
    CURLM *multi;
    struct curl_slist *hdrs;
    char url[512];
    int64_t *due = ks_xcalloc((size_t)n, sizeof(*due));
    int64_t *lat = ks_xcalloc((size_t)n, sizeof(*lat));
    int64_t t0;
    long sent = 0, ended = 0;
    int running, rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(url, sizeof(url), "%s/chat/completions", base);
    t0 = now_us() + 100000;
    for (long i = 0; i < n; i++) {
        lat[i] = -1;
        due[i] = t0 + (int64_t)((double)i * 1e6 / rate);
    }
    while (ended < n) {
        int64_t t = now_us(), wait_ms = 10;

        while (sent < n && due[sent] <= t) {
            http_start(multi, url, hdrs, sent++);
        }
        if (sent < n) {
            wait_ms = (due[sent] - t) / 1000;
        }
        curl_multi_perform(multi, &running);
        ended += http_reap(multi, due, lat);
        curl_multi_poll(multi, NULL, 0, (int)(wait_ms < 1 ? 0 : wait_ms), NULL);
    }
    rc = lat_report(lat, n);
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(due);
    free(lat);
    return rc;
}

/* ---- through the fleet -------------------------------------------------- */

struct fleet {
    rd_kafka_t *prod, *cons;
    rd_kafka_topic_t *rkt_tasks; /* held for the run: metadata stays known */
    const char *tasks, *results;
    char run[32];
    long n;
    int64_t *due, *lat;
    int64_t *made;    /* the Result's CreateTime, on the monotonic clock */
    const char *tier; /* --tier: the tier topic, read too (NULL: not) */
    int64_t *tmade;   /* the tier record's CreateTime (router's produce) */
    int64_t *tseen;   /* when this consumer saw the tier record */
    int64_t wall_off; /* wall clock minus monotonic clock, us */
    long got;
};

/* -X k=v: extra properties for both clients (e.g. debug=msg,broker). */
static const char *extra_props[16];
static int n_extra;

static void conf_extra(rd_kafka_conf_t *conf)
{
    char errstr[256], key[128];

    for (int i = 0; i < n_extra; i++) {
        const char *eq = strchr(extra_props[i], '=');

        if (!eq || (size_t)(eq - extra_props[i]) >= sizeof(key)) {
            fprintf(stderr, "bench-latency: -X %s: not k=v\n", extra_props[i]);
            exit(2);
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - extra_props[i]),
                 extra_props[i]);
        if (rd_kafka_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "bench-latency: %s\n", errstr);
            exit(2);
        }
    }
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *boot)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_t *rk;
    const char *const props[][2] = {
        {"bootstrap.servers", boot},
        {"linger.ms", "0"},
        {"acks", "all"},
        {"group.id", "bench-latency"},
        {"enable.auto.commit", "false"},
        /* A fetch returns as soon as data arrives (one broker): 100 ms
         * costs no latency (Kafka-only p50 1.1 ms at 1000/s with 1, 100
         * and 500) and the broker CPU of a fetch every millisecond
         * (3.3 s against 2.1 s over 5 s at 1000/s). */
        {"fetch.wait.max.ms", "100"},
        {"fetch.error.backoff.ms", "1"},
    };

    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (type == RD_KAFKA_PRODUCER && i >= 3) {
            break;
        }
        if (type == RD_KAFKA_CONSUMER && (i == 1 || i == 2)) {
            continue;
        }
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "bench-latency: %s\n", errstr);
            exit(1);
        }
    }
    conf_extra(conf);
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "bench-latency: %s\n", errstr);
        exit(1);
    }
    return rk;
}

/* Adds every partition of topic to parts at its end, once the end is
 * known, so that no record is missed. */
static void assign_topic(struct fleet *f,
                         const char *topic,
                         rd_kafka_topic_partition_list_t *parts)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->cons, topic, NULL);
    int np;

    if (rd_kafka_metadata(f->cons, 0, rkt, &md, 10000) != 0 ||
        md->topic_cnt != 1 || md->topics[0].partition_cnt == 0) {
        fprintf(stderr, "bench-latency: no topic %s\n", topic);
        exit(1);
    }
    np = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    for (int p = 0; p < np; p++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;

        /* A topic just created may not have a leader yet: ask again (an
         * unchecked failure left hi unset, the consumer reset to the end
         * later, and the Results produced meanwhile were missed). */
        for (int k = 0; k < 20 && err != RD_KAFKA_RESP_ERR_NO_ERROR; k++) {
            err = rd_kafka_query_watermark_offsets(f->cons, topic, p, &lo, &hi,
                                                   5000);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                nanosleep(&(struct timespec){0, 100000000}, NULL);
            }
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "bench-latency: %s [%d]: end offset: %s\n", topic,
                    p, rd_kafka_err2str(err));
            exit(1);
        }
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = hi;
    }
}

/* Assigns the results topic (and the tier topic, with --tier). */
static void assign_results(struct fleet *f)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(16);

    assign_topic(f, f->results, parts);
    if (f->tier) {
        assign_topic(f, f->tier, parts);
    }
    rd_kafka_assign(f->cons, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Looks the tasks topic up with the producer and keeps its handle, before
 * the clock starts. Without it the first task waits for librdkafka 2.0's
 * once-a-second topic scan to ask for the topic's metadata (debug=topic:
 * "New local topic" at the first produce, "Requesting metadata ...
 * refresh unavailable topics" up to 1 s later), and every task due
 * meanwhile queues behind it: one stall of up to 1 s at the start of
 * each run, which showed as a p95 of ~500 ms and a p99 of ~800 ms in
 * every row, with or without kascade in between. */
static void warm_tasks(struct fleet *f)
{
    const struct rd_kafka_metadata *md = NULL;

    f->rkt_tasks = rd_kafka_topic_new(f->prod, f->tasks, NULL);
    if (rd_kafka_metadata(f->prod, 0, f->rkt_tasks, &md, 10000) != 0 ||
        md->topic_cnt != 1 || md->topics[0].err ||
        md->topics[0].partition_cnt == 0) {
        fprintf(stderr, "bench-latency: no topic %s\n", f->tasks);
        exit(1);
    }
    rd_kafka_metadata_destroy(md);
}

/* Notes the arrival of one Result of this run (or, with --tier, of one
 * tier record: when the router produced it and when it was seen here). */
static void arrived(struct fleet *f, const rd_kafka_message_t *m, int64_t t)
{
    cJSON *r = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
    size_t pl = strlen(f->run);
    long i;

    if (cJSON_IsString(id) && strncmp(id->valuestring, f->run, pl) == 0) {
        i = strtol(id->valuestring + pl, NULL, 10);
        if (f->tier && i >= 0 && i < f->n &&
            strcmp(rd_kafka_topic_name(m->rkt), f->tier) == 0) {
            f->tseen[i] = t;
            f->tmade[i] =
                rd_kafka_message_timestamp(m, NULL) * 1000 - f->wall_off;
        } else if (i >= 0 && i < f->n && f->lat[i] < 0) {
            f->lat[i] = t - f->due[i];
            f->made[i] =
                rd_kafka_message_timestamp(m, NULL) * 1000 - f->wall_off;
            f->got++;
        }
    }
    cJSON_Delete(r);
}

static void consume_some(struct fleet *f, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(f->cons, timeout_ms);

    while (m) {
        if (!m->err) {
            arrived(f, m, now_us());
        }
        rd_kafka_message_destroy(m);
        m = rd_kafka_consumer_poll(f->cons, 0);
    }
}

static void produce_one(struct fleet *f, long i)
{
    char id[64], value[512];
    int n;

    snprintf(id, sizeof(id), "%s%ld", f->run, i);
    n = snprintf(value, sizeof(value),
                 "{\"id\": \"%s\", \"type\": \"answer\", \"input\": "
                 "\"How long does a refund take to reach my card?\", "
                 "\"hints\": {\"max_output_tokens\": 16}}",
                 id);
    while (rd_kafka_producev(f->prod, RD_KAFKA_V_TOPIC(f->tasks),
                             RD_KAFKA_V_KEY(id, strlen(id)),
                             RD_KAFKA_V_VALUE(value, (size_t)n),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(f->prod, 1);
    }
    rd_kafka_poll(f->prod, 0);
}

/* BENCH_LATENCY_DUMP=FILE: one line per task, "i sent_ms produced_ms
 * arrived_ms" from the start (-1: lost), to see when a stall happened;
 * with --tier two more: "tier_produced_ms tier_seen_ms" (-1: not seen). */
static void dump(const char *path, const struct fleet *f)
{
    FILE *fp = fopen(path, "w");

    if (!fp) {
        perror(path);
        return;
    }
    /* the start on the wall clock, to line the dump up with logs */
    fprintf(fp, "# start %.3f s since the epoch, ids %s<i>\n",
            (double)(f->due[0] + f->wall_off) / 1e6, f->run);
    for (long i = 0; i < f->n; i++) {
        fprintf(
            fp, "%ld %.1f %.1f %.1f", i, (double)(f->due[i] - f->due[0]) / 1e3,
            f->lat[i] < 0 ? -1.0 : (double)(f->made[i] - f->due[0]) / 1e3,
            f->lat[i] < 0 ? -1.0
                          : (double)(f->due[i] + f->lat[i] - f->due[0]) / 1e3);
        if (f->tier) {
            fprintf(
                fp, " %.1f %.1f",
                f->tseen[i] ? (double)(f->tmade[i] - f->due[0]) / 1e3 : -1.0,
                f->tseen[i] ? (double)(f->tseen[i] - f->due[0]) / 1e3 : -1.0);
        }
        fputc('\n', fp);
    }
    fclose(fp);
}

/* On stderr, with --tier: each task's trip split at the tier record's
 * CreateTime (the router's produce): due -> tier produced (the tasks
 * topic's hop and the router), and tier produced -> Result produced (the
 * tier topic's hop and the worker). Millisecond timestamps: +-1 ms. */
static void tier_report(const struct fleet *f)
{
    int64_t *a = ks_xcalloc((size_t)f->n + 1, sizeof(*a));
    int64_t *b = ks_xcalloc((size_t)f->n + 1, sizeof(*b));
    long k = 0;

    for (long i = 0; i < f->n; i++) {
        if (f->lat[i] >= 0 && f->tseen[i]) {
            a[k] = f->tmade[i] - f->due[i];
            b[k++] = f->made[i] - f->tmade[i];
        }
    }
    qsort(a, (size_t)k, sizeof(*a), cmp_i64);
    qsort(b, (size_t)k, sizeof(*b), cmp_i64);
#define Q(v, p) (k ? (double)v[(long)((double)(k - 1) * (p))] / 1e3 : 0.0)
    fprintf(stderr,
            "hops (%ld tasks): due->tier produced p50=%.1f p99=%.1f "
            "max=%.1f; tier produced->result produced p50=%.1f p99=%.1f "
            "max=%.1f\n",
            k, Q(a, 0.5), Q(a, 0.99), Q(a, 1.0), Q(b, 0.5), Q(b, 0.99),
            Q(b, 1.0));
#undef Q
    free(a);
    free(b);
}

static int run_fleet(const char *boot,
                     const char *tasks,
                     const char *results,
                     const char *tier,
                     double rate,
                     long n)
{
    struct fleet f = {.tasks = tasks, .results = results, .tier = tier, .n = n};
    int64_t t0, end;
    int rc;

    snprintf(f.run, sizeof(f.run), "lat-%" PRId64 "-", now_us() % 1000000000);
    f.due = ks_xcalloc((size_t)n, sizeof(*f.due));
    f.lat = ks_xcalloc((size_t)n, sizeof(*f.lat));
    f.made = ks_xcalloc((size_t)n, sizeof(*f.made));
    f.tmade = ks_xcalloc((size_t)n, sizeof(*f.tmade));
    f.tseen = ks_xcalloc((size_t)n, sizeof(*f.tseen));
    {
        struct timespec wall;

        clock_gettime(CLOCK_REALTIME, &wall);
        f.wall_off =
            (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000 - now_us();
    }
    for (long i = 0; i < n; i++) {
        f.lat[i] = -1;
    }
    f.prod = client(RD_KAFKA_PRODUCER, boot);
    f.cons = client(RD_KAFKA_CONSUMER, boot);
    warm_tasks(&f);
    assign_results(&f);
    consume_some(&f, 1000); /* the fetch positions settle */
    t0 = now_us() + 100000;
    for (long i = 0; i < n; i++) {
        f.due[i] = t0 + (int64_t)((double)i * 1e6 / rate);
        /* Wait in the consumer's poll, so a Result is noted when it
         * arrives: sleeping to the next due time instead noted every
         * arrival up to 1 / rate late (500 ms at 2 tasks/s, 10 ms at
         * 100/s). The last millisecond is slept. */
        while (now_us() < f.due[i]) {
            int64_t left = (f.due[i] - now_us()) / 1000;

            if (left >= 1) {
                consume_some(&f, (int)left);
            } else {
                sleep_until(f.due[i]);
            }
        }
        produce_one(&f, i);
        consume_some(&f, 0);
    }
    end = now_us() + (int64_t)DRAIN_S * 1000000;
    while (f.got < n && now_us() < end) {
        consume_some(&f, 10);
        rd_kafka_poll(f.prod, 0);
    }
    rd_kafka_flush(f.prod, 5000);
    split_report(f.due, f.made, f.lat, n);
    if (tier) {
        tier_report(&f);
    }
    if (getenv("BENCH_LATENCY_DUMP") && *getenv("BENCH_LATENCY_DUMP")) {
        dump(getenv("BENCH_LATENCY_DUMP"), &f);
    }
    rc = lat_report(f.lat, n);
    rd_kafka_consumer_close(f.cons);
    rd_kafka_destroy(f.cons);
    rd_kafka_topic_destroy(f.rkt_tasks);
    rd_kafka_destroy(f.prod);
    free(f.due);
    free(f.lat);
    free(f.made);
    free(f.tmade);
    free(f.tseen);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tasks", required_argument, NULL, 'T'},
        {"results", required_argument, NULL, 'R'},
        {"http", required_argument, NULL, 'H'},
        {"tier", required_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    const char *boot = NULL, *tasks = NULL, *results = NULL, *http = NULL;
    const char *tier = NULL;
    double rate = 0;
    long n = 0;
    int opt;

    while ((opt = getopt_long(argc, argv, "b:r:n:X:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'X':
            if (n_extra == (int)(sizeof(extra_props) / sizeof(*extra_props))) {
                fprintf(stderr, "bench-latency: too many -X\n");
                return 2;
            }
            extra_props[n_extra++] = optarg;
            break;
        case 'b':
            boot = optarg;
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'n':
            n = strtol(optarg, NULL, 10);
            break;
        case 'T':
            tasks = optarg;
            break;
        case 'R':
            results = optarg;
            break;
        case 'H':
            http = optarg;
            break;
        case 'U':
            tier = optarg;
            break;
        default:
            return 2;
        }
    }
    if (rate <= 0 || n <= 0 || (!http && (!boot || !tasks || !results))) {
        fprintf(stderr,
                "usage: bench-latency -b BOOTSTRAP --tasks TOPIC --results "
                "TOPIC [--tier TOPIC] -r RATE -n N [-X k=v]...\n"
                "       bench-latency --http BASE_URL -r RATE -n N\n");
        return 2;
    }
    if (http) {
        return lat_http(http, rate, n);
    }
    return run_fleet(boot, tasks, results, tier, rate, n);
}
