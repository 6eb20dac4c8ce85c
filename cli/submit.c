/*
 * submit.c - `kascade submit FILE.jsonl [--wait] [-o results.jsonl]`.
 *
 * Each non-empty line is produced as it is to <prefix>tasks, keyed by its
 * id when the line is JSON with one: validation is the router's job, so a
 * bad task reaches the DLQ with its reason like any producer's would. What
 * cannot be a task at all (not JSON, over limits.max_message_bytes, or no
 * id when --wait has to match it) is reported as `line N: reason` on
 * stderr, counted, and not produced; the rest go on.
 *
 * Progress goes to stderr: a bar redrawn at most 10 times a second on a
 * terminal, a plain line every 5 s and one at the end otherwise. SIGINT or
 * SIGTERM stops producing and waiting, flushes for at most 5 s, says how
 * far it got and exits 128 + the signal. -o is written to FILE.part and
 * renamed at the end, so it holds whole lines only.
 * With --wait, the results and DLQ topics are read from their ends as of
 * before the first send, until every line has a Result (matched by id) or
 * a DLQ entry (matched by the kascade-source of its tasks-topic offset).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "cli.h"
#include "kafka/client.h"
#include "kafka/produce.h"
#include "process/daemon.h"
#include "reader.h"
#include "submit_state.h"

#include "base/banned.h"

struct submit_opts {
    const char *file;
    const char *out;
    bool wait;
    int64_t timeout_s;
};

/* The signal that stopped us, for the exit status. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
    ks_stop_requested = 1;
}

/* As ks_daemon_signals, but remembering which signal it was (an all-zero
 * sa_mask is the empty set). */
static void stop_signals(void)
{
    struct sigaction sa = {.sa_handler = on_stop};

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

struct progress {
    const char *what;
    bool tty;
    int64_t t0, last;
};

static void progress_start(struct progress *p, const char *what)
{
    p->what = what;
    p->tty = isatty(STDERR_FILENO) == 1;
    p->t0 = p->last = ks_mono_ms();
}

/* Redraws the bar (tty, at most every 100 ms) or prints a plain line
 * (every 5 s); `last` prints the final one, with the elapsed time. */
static void progress_show(struct progress *p, size_t n, size_t total, bool last)
{
    int64_t now = ks_mono_ms();
    double s = (double)(now - p->t0) / 1e3;
    double rate = s > 0 ? (double)n / s : 0;
    char tail[64];
    int width = 30, fill;

    if (!last && now - p->last < (p->tty ? 100 : 5000)) {
        return;
    }
    p->last = now;
    if (last) {
        snprintf(tail, sizeof(tail), "elapsed %.0f s", s);
    } else if (rate > 0) {
        snprintf(tail, sizeof(tail), "ETA %.0f s", (double)(total - n) / rate);
    } else {
        snprintf(tail, sizeof(tail), "ETA ?");
    }
    if (!p->tty) {
        fprintf(stderr, "kascade: %s %zu/%zu, %.0f/s, %s\n", p->what, n, total,
                rate, tail);
        return;
    }
    fill = total ? (int)((double)n / (double)total * width) : width;
    fprintf(stderr, "\r%-9s [%.*s%*s] %zu/%zu %.0f/s %s\033[K%s", p->what, fill,
            "##############################", width - fill, "", n, total, rate,
            tail, last ? "\n" : "");
}

static void on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct submit_state *st = opaque;
    struct sent *s = &st->sent[(size_t)(uintptr_t)rkm->_private];

    (void)rk;
    if (rkm->err) {
        fprintf(stderr, "kascade: a task was not delivered: %s\n",
                rd_kafka_err2str(rkm->err));
        st->n_failed_produce++;
        return;
    }
    s->partition = rkm->partition;
    s->offset = rkm->offset;
    st->n_acked++;
}

/* Why line cannot be produced, or NULL; *id gets its id or NULL (caller
 * frees). A line without an id is refused only when need_id. */
static const char *line_check(const struct ks_config *cfg,
                              const char *line,
                              size_t len,
                              bool need_id,
                              char **id)
{
    cJSON *root;
    const cJSON *jid;

    *id = NULL;
    if (len > cfg->limits.max_message_bytes) {
        return "too big for limits.max_message_bytes";
    }
    if (!(root = cJSON_ParseWithLength(line, len))) {
        return "not JSON";
    }
    jid = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (cJSON_IsString(jid) && jid->valuestring[0]) {
        *id = ks_xstrdup(jid->valuestring);
    }
    cJSON_Delete(root);
    return !*id && need_id ? "no \"id\" to match its result by" : NULL;
}

static int read_lines(const struct ks_config *cfg,
                      const struct submit_opts *o,
                      struct submit_state *st,
                      char ***lines,
                      size_t **lens)
{
    FILE *fp = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "r");
    char *line = NULL;
    size_t cap = 0, n = 0, lineno = 0;
    ssize_t len;

    if (!fp) {
        fprintf(stderr, "kascade: cannot open %s\n", o->file);
        return -1;
    }
    *lines = NULL;
    *lens = NULL;
    while (!ks_stop_requested && (len = getline(&line, &cap, fp)) >= 0) {
        const char *why;
        char *id;

        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        if ((why = line_check(cfg, line, (size_t)len, o->wait, &id))) {
            fprintf(stderr, "line %zu: %s\n", lineno, why);
            submit_state_reject(st, lineno);
            continue;
        }
        *lines = ks_xrealloc(*lines, (n + 1) * sizeof(**lines));
        *lens = ks_xrealloc(*lens, (n + 1) * sizeof(**lens));
        (*lines)[n] = ks_xstrndup(line, (size_t)len);
        (*lens)[n] = (size_t)len;
        submit_state_add(st, id, lineno);
        free(id);
        n++;
    }
    free(line);
    if (fp != stdin) {
        fclose(fp);
    }
    submit_state_index(st);
    return 0;
}

/* The configured bootstrap servers, for messages. */
static const char *bootstrap(const struct ks_config *cfg)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        if (strcmp(cfg->kafka[i].key, "bootstrap.servers") == 0) {
            return cfg->kafka[i].value;
        }
    }
    return "?";
}

/*
 * Before the first task: a broker answers and the tasks topic exists.
 * Without this a wrong address or a missing topic shows only as "sent 0"
 * until librdkafka's message timeout (5 minutes) fails every task.
 */
static int check_kafka(rd_kafka_t *rk,
                       const struct ks_config *cfg,
                       const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int ret = 0;

    if (err) {
        fprintf(stderr, "kascade: cannot reach Kafka at %s: %s\n",
                bootstrap(cfg), rd_kafka_err2str(err));
        ret = -1;
    } else if (md->topic_cnt == 1 &&
               (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                md->topics[0].err ==
                    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)) {
        fprintf(stderr,
                "kascade: topic %s: %s (create the topics with `kascade "
                "topics create`)\n",
                topic, rd_kafka_err2str(md->topics[0].err));
        ret = -1;
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return ret;
}

static int produce_all(const struct ks_config *cfg,
                       struct submit_state *st,
                       char **lines,
                       size_t *lens)
{
    char topic[256], errstr[512];
    struct progress p;
    rd_kafka_t *rk =
        ks_kafka_producer_new(cfg, on_delivery, st, errstr, sizeof(errstr));

    if (!rk) {
        fprintf(stderr, "kascade: %s\n", errstr);
        return -1;
    }
    ks_config_topic(cfg, "tasks", topic, sizeof(topic));
    if (check_kafka(rk, cfg, topic) != 0) {
        rd_kafka_destroy(rk);
        return -1;
    }
    progress_start(&p, "sent");
    for (size_t i = 0; i < st->n && !ks_stop_requested; i++) {
        const char *id = st->sent[i].id;

        st->sent[i].sent_ms = ks_mono_ms();
        if (ks_kafka_produce(rk, topic, id, id ? strlen(id) : 0, lines[i],
                             lens[i], NULL, (void *)(uintptr_t)i) != KS_OK) {
            st->n_failed_produce++;
        }
        st->n_produced++;
        rd_kafka_poll(rk, 0);
        progress_show(&p, st->n_acked, st->n, false);
    }
    while (st->n_acked + st->n_failed_produce < st->n && !ks_stop_requested) {
        rd_kafka_poll(rk, 100);
        progress_show(&p, st->n_acked, st->n, false);
    }
    /* Stopped: what was produced gets a bounded chance to leave. */
    rd_kafka_flush(rk, ks_stop_requested ? 5000 : 10000);
    progress_show(&p, st->n_acked, st->n, true);
    rd_kafka_destroy(rk);
    printf("submitted %zu task(s) to %s\n", st->n_acked, topic);
    return st->n_failed_produce ? -1 : 0;
}

/*
 * A DLQ entry: one of a task as submitted (its source is the tasks topic,
 * matched by partition and offset), or of a record kascade derived from
 * it, a tier record or an escalation, dead-lettered by a worker or by the
 * router (codes redis, conflict, invalid, ...): those keep the task id,
 * submit's key, as their key. A worker's `provider` and `timeout` entries
 * come with a `failed` Result, which accounts for the task.
 */
static void take_dlq(struct submit_state *st,
                     const rd_kafka_message_t *rkm,
                     const char *tasks_topic)
{
    char source[512], code[64], prefix[300], id[4096];
    int32_t part;
    int64_t off;

    if (!ks_kafka_header(rkm, KS_HDR_ERROR, code, sizeof(code))) {
        snprintf(code, sizeof(code), "?");
    }
    if (!ks_kafka_header(rkm, KS_HDR_SOURCE, source, sizeof(source))) {
        return;
    }
    snprintf(prefix, sizeof(prefix), "%s/", tasks_topic);
    if (strncmp(source, prefix, strlen(prefix)) == 0) {
        if (sscanf(source + strlen(prefix), "%" SCNd32 "/%" SCNd64, &part,
                   &off) == 2) {
            submit_state_dlq(st, part, off, code);
        }
        return;
    }
    if (strcmp(code, "provider") == 0 || strcmp(code, "timeout") == 0 ||
        !rkm->key || rkm->key_len == 0 || rkm->key_len >= sizeof(id)) {
        return;
    }
    memcpy(id, rkm->key, rkm->key_len);
    id[rkm->key_len] = '\0';
    submit_state_dlq_id(st, id, code);
}

/* A result or a DLQ entry: account for it, and copy results to out. */
static void take(const struct ks_config *cfg,
                 struct submit_state *st,
                 const rd_kafka_message_t *rkm,
                 const char *dlq_topic,
                 const char *tasks_topic,
                 FILE *out)
{
    struct ks_codec_error cerr;
    struct ks_result *res = NULL;
    char ctype[64];
    enum ks_format fmt;

    if (strcmp(rd_kafka_topic_name(rkm->rkt), dlq_topic) == 0) {
        take_dlq(st, rkm, tasks_topic);
        return;
    }
    if (ks_codec_detect(
            ks_kafka_header(rkm, KS_HDR_CONTENT_TYPE, ctype, sizeof(ctype)),
            rkm->payload, rkm->len, &fmt, &cerr) != KS_OK ||
        ks_result_decode(fmt, rkm->payload, rkm->len, &cfg->limits, &res,
                         &cerr) != KS_OK) {
        return; /* not one of ours */
    }
    if (submit_state_result(st, cfg, res) && out) {
        char *json = NULL;
        size_t len = 0;

        if (ks_result_encode(KS_FORMAT_JSON, res, &json, &len) == KS_OK) {
            fprintf(out, "%s\n", json);
            free(json);
        }
    }
    ks_result_destroy(res);
}

static int wait_all(const struct ks_config *cfg,
                    struct submit_state *st,
                    struct cli_reader *rd,
                    const struct submit_opts *o)
{
    char dlq[256], tasks[256];
    char part[4096];
    int64_t deadline = ks_mono_ms() + o->timeout_s * 1000;
    struct progress p;
    FILE *out = NULL;
    int ret = 0;

    ks_config_topic(cfg, "dlq", dlq, sizeof(dlq));
    ks_config_topic(cfg, "tasks", tasks, sizeof(tasks));
    snprintf(part, sizeof(part), "%s.part", o->out ? o->out : "");
    if (o->out && !(out = fopen(part, "w"))) {
        fprintf(stderr, "kascade: cannot write %s\n", part);
        return -1;
    }
    progress_start(&p, "answered");
    while (st->n_done < st->n && ks_mono_ms() < deadline &&
           !ks_stop_requested) {
        rd_kafka_message_t *rkm = cli_reader_next(rd, 200);

        if (rkm) {
            take(cfg, st, rkm, dlq, tasks, out);
            rd_kafka_message_destroy(rkm);
        }
        progress_show(&p, st->n_done, st->n, false);
    }
    progress_show(&p, st->n_done, st->n, true);
    if (out && (fclose(out) != 0 || rename(part, o->out) != 0)) {
        fprintf(stderr, "kascade: error writing %s\n", o->out);
        ret = -1;
    }
    if (ks_stop_requested) {
        return -1;
    }
    if (st->n_done < st->n) {
        fprintf(stderr,
                "\nkascade: %zu of %zu task(s) have no result after "
                "%" PRId64 " s\n",
                st->n - st->n_done, st->n, o->timeout_s);
        return -1;
    }
    return ret;
}

/* After SIGINT/SIGTERM: how far the run got. */
static void report_stop(const struct submit_state *st)
{
    size_t line = st->n_produced ? st->sent[st->n_produced - 1].lineno : 0;

    fprintf(stderr,
            "kascade: stopped at line %zu: %zu of %zu task(s) sent, "
            "%zu result(s), %zu dead-lettered, %zu line(s) rejected\n",
            line, st->n_acked, st->n, st->n_results, st->n_dlq, st->n_rejected);
}

static int parse_opts(int argc, char **argv, struct submit_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_s = 300;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            o->wait = true;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            o->out = argv[++i];
            o->wait = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (ks_parse_int64(argv[++i], 1, 86400 * 7, &o->timeout_s)) {
                return -1;
            }
        } else if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            if (o->file) {
                return -1;
            }
            o->file = argv[i];
        } else {
            return -1;
        }
    }
    return o->file ? 0 : -1;
}

int cli_submit(const struct ks_config *cfg, int argc, char **argv)
{
    struct submit_opts o;
    struct submit_state st;
    struct cli_reader *rd = NULL;
    char results[256], dlq[256];
    const char *topics[2] = {results, dlq};
    char **lines = NULL;
    size_t *lens = NULL;
    int64_t t0 = ks_mono_ms();
    int status = 1;

    if (parse_opts(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: kascade submit FILE.jsonl [--wait] "
                        "[-o results.jsonl] [--timeout SEC]\n");
        return 2;
    }
    submit_state_init(&st);
    stop_signals();
    if (read_lines(cfg, &o, &st, &lines, &lens) != 0) {
        goto out;
    }
    ks_config_topic(cfg, "results", results, sizeof(results));
    ks_config_topic(cfg, "dlq", dlq, sizeof(dlq));
    /* Read from the ends as they are before the first task goes out. */
    if (o.wait &&
        !(rd = cli_reader_new(cfg, topics, 2, RD_KAFKA_OFFSET_END, NULL))) {
        goto out;
    }
    if (produce_all(cfg, &st, lines, lens) != 0 && !ks_stop_requested) {
        goto out;
    }
    if (!o.wait) {
        status = st.n_rejected ? 1 : 0;
        goto out;
    }
    /* Even when stopped, so that -o holds what came back so far. */
    status = wait_all(cfg, &st, rd, &o) == 0 && !st.n_rejected ? 0 : 1;
    submit_state_print(&st, cfg, (double)(ks_mono_ms() - t0) / 1e3);

out:
    if (ks_stop_requested) {
        report_stop(&st);
        status = 128 + (stop_signal ? stop_signal : SIGINT);
    }
    cli_reader_destroy(rd);
    for (size_t i = 0; i < st.n; i++) {
        free(lines ? lines[i] : NULL);
    }
    free(lines);
    free(lens);
    submit_state_fini(&st);
    return status;
}
