/*
 * submit.c - `kascade submit FILE.jsonl [--wait] [-o results.jsonl]`.
 *
 * Each non-empty line is produced as it is to <prefix>tasks, keyed by its
 * id when the line is JSON with one: validation is the router's job, so a
 * bad line reaches the DLQ with its reason like any producer's would.
 * With --wait, the results and DLQ topics are read from their ends as of
 * before the first send, until every line has a Result (matched by id) or
 * a DLQ entry (matched by the kascade-source of its tasks-topic offset).
 */
#include <inttypes.h>
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

static void progress(const char *what, size_t n, size_t total)
{
    static int64_t last;
    int64_t now = ks_mono_ms();
    int width = 30, fill;

    if (!isatty(STDERR_FILENO) || (now - last < 100 && n < total)) {
        return;
    }
    last = now;
    fill = total ? (int)((double)n / (double)total * width) : width;
    fprintf(stderr, "\r%-9s [%.*s%*s] %zu/%zu", what, fill,
            "##############################", width - fill, "", n, total);
    if (n >= total) {
        fputc('\n', stderr);
    }
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

/* The id of a JSON line, or NULL (caller frees). */
static char *line_id(const char *line, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(line, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    char *out = cJSON_IsString(id) && id->valuestring[0]
                    ? ks_xstrdup(id->valuestring)
                    : NULL;

    cJSON_Delete(root);
    return out;
}

static int read_lines(const struct submit_opts *o,
                      struct submit_state *st,
                      char ***lines,
                      size_t **lens)
{
    FILE *fp = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "r");
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;

    if (!fp) {
        fprintf(stderr, "kascade: cannot open %s\n", o->file);
        return -1;
    }
    *lines = NULL;
    *lens = NULL;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        *lines = ks_xrealloc(*lines, (n + 1) * sizeof(**lines));
        *lens = ks_xrealloc(*lens, (n + 1) * sizeof(**lens));
        (*lines)[n] = ks_xstrndup(line, (size_t)len);
        (*lens)[n] = (size_t)len;
        {
            char *id = line_id(line, (size_t)len);

            submit_state_add(st, id);
            free(id);
        }
        n++;
    }
    free(line);
    if (fp != stdin) {
        fclose(fp);
    }
    submit_state_index(st);
    return 0;
}

static int produce_all(const struct ks_config *cfg,
                       struct submit_state *st,
                       char **lines,
                       size_t *lens)
{
    char topic[256], errstr[512];
    rd_kafka_t *rk =
        ks_kafka_producer_new(cfg, on_delivery, st, errstr, sizeof(errstr));

    if (!rk) {
        fprintf(stderr, "kascade: %s\n", errstr);
        return -1;
    }
    ks_config_topic(cfg, "tasks", topic, sizeof(topic));
    for (size_t i = 0; i < st->n && !ks_stop_requested; i++) {
        const char *id = st->sent[i].id;

        st->sent[i].sent_ms = ks_mono_ms();
        if (ks_kafka_produce(rk, topic, id, id ? strlen(id) : 0, lines[i],
                             lens[i], NULL, (void *)(uintptr_t)i) != KS_OK) {
            st->n_failed_produce++;
        }
        rd_kafka_poll(rk, 0);
        progress("sent", st->n_acked, st->n);
    }
    while (st->n_acked + st->n_failed_produce < st->n && !ks_stop_requested) {
        rd_kafka_poll(rk, 100);
        progress("sent", st->n_acked, st->n);
    }
    rd_kafka_flush(rk, 10000);
    rd_kafka_destroy(rk);
    printf("submitted %zu task(s) to %s\n", st->n_acked, topic);
    return st->n_failed_produce ? -1 : 0;
}

/* A result or a router DLQ entry: account for it, and copy results to out. */
static void take(const struct ks_config *cfg,
                 struct submit_state *st,
                 const rd_kafka_message_t *rkm,
                 const char *dlq_topic,
                 const char *tasks_topic,
                 FILE *out)
{
    struct ks_codec_error cerr;
    struct ks_result *res = NULL;
    char ctype[64], source[512], code[64], prefix[300];
    enum ks_format fmt;
    int32_t part;
    int64_t off;

    if (strcmp(rd_kafka_topic_name(rkm->rkt), dlq_topic) == 0) {
        snprintf(prefix, sizeof(prefix), "%s/", tasks_topic);
        if (ks_kafka_header(rkm, KS_HDR_SOURCE, source, sizeof(source)) &&
            strncmp(source, prefix, strlen(prefix)) == 0 &&
            sscanf(source + strlen(prefix), "%" SCNd32 "/%" SCNd64, &part,
                   &off) == 2) {
            submit_state_dlq(
                st, part, off,
                ks_kafka_header(rkm, KS_HDR_ERROR, code, sizeof(code)) ? code
                                                                       : "?");
        }
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
    int64_t deadline = ks_mono_ms() + o->timeout_s * 1000;
    FILE *out = NULL;

    ks_config_topic(cfg, "dlq", dlq, sizeof(dlq));
    ks_config_topic(cfg, "tasks", tasks, sizeof(tasks));
    if (o->out && !(out = fopen(o->out, "w"))) {
        fprintf(stderr, "kascade: cannot write %s\n", o->out);
        return -1;
    }
    while (st->n_done < st->n && ks_mono_ms() < deadline &&
           !ks_stop_requested) {
        rd_kafka_message_t *rkm = cli_reader_next(rd, 200);

        if (rkm) {
            take(cfg, st, rkm, dlq, tasks, out);
            rd_kafka_message_destroy(rkm);
        }
        progress("answered", st->n_done, st->n);
    }
    if (out && fclose(out) != 0) {
        fprintf(stderr, "kascade: error writing %s\n", o->out);
    }
    if (st->n_done < st->n) {
        fprintf(stderr,
                "\nkascade: %zu of %zu task(s) have no result after "
                "%" PRId64 " s\n",
                st->n - st->n_done, st->n, o->timeout_s);
        return -1;
    }
    return 0;
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
    if (read_lines(&o, &st, &lines, &lens) != 0) {
        goto out;
    }
    ks_config_topic(cfg, "results", results, sizeof(results));
    ks_config_topic(cfg, "dlq", dlq, sizeof(dlq));
    /* Read from the ends as they are before the first task goes out. */
    if (o.wait &&
        !(rd = cli_reader_new(cfg, topics, 2, RD_KAFKA_OFFSET_END, NULL))) {
        goto out;
    }
    if (produce_all(cfg, &st, lines, lens) != 0) {
        goto out;
    }
    if (!o.wait) {
        status = 0;
        goto out;
    }
    status = wait_all(cfg, &st, rd, &o) == 0 ? 0 : 1;
    submit_state_print(&st, cfg, (double)(ks_mono_ms() - t0) / 1e3);

out:
    cli_reader_destroy(rd);
    for (size_t i = 0; i < st.n; i++) {
        free(lines ? lines[i] : NULL);
    }
    free(lines);
    free(lens);
    submit_state_fini(&st);
    return status;
}
