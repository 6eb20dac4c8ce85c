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
#include "status.h"

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

static const char usage[] =
    "usage: kascade status [--json] [--watch [SEC]] [--metrics URL[,URL...]]\n";

/* ------------------------------------------------------------ Redis */

static void read_budgets(struct status_cli *sc, struct status *st)
{
    const struct ks_config *cfg = sc->cfg;
    char url[400];

    for (size_t t = 0; t < cfg->n_tiers; t++) {
        enum ks_err err = ks_budget_read(
            sc->rs, "tier", cfg->tiers[t].name, st->day,
            cfg->tiers[t].daily_budget_micro, st->now_ms, &st->tiers[t].budget);

        if (err == KS_ERR_RETRY || err == KS_ERR_TIMEOUT) {
            ks_store_url_shown(cfg->redis_url, url, sizeof(url));
            snprintf(st->redis_err, sizeof(st->redis_err),
                     "cannot reach Redis at %s", url);
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
    status_read_kafka(sc, st);
    read_budgets(sc, st);
    if (sc->n_urls > 0) {
        read_metrics(sc, st);
    }
}

static bool status_failed(const struct status *st)
{
    return st->kafka_err[0] || st->redis_err[0] || st->metrics_err[0];
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
    status =
        json ? status_print_json(sc, &st) : (status_print_text(sc, &st), 0);
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
