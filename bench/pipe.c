/*
 * pipe.c - bench-pipe: the baseline kascade-router is measured against,
 * and the two helpers bench/run.sh needs around it.
 *
 *   bench-pipe -b B -i IN -o OUT -g GROUP -n COUNT
 *     The baseline. Copies every message of IN to OUT unchanged (key,
 *     value, headers) with the router's delivery discipline and none of
 *     its work: a consumer group with manual offset store and auto-commit,
 *     an offset stored only once the copies of every message up to it are
 *     acknowledged, an idempotent producer with the router's linger.ms, a
 *     failed delivery produced again, the same wake-pipe event loop and
 *     poll batch. Exits once COUNT copies are acknowledged.
 *   bench-pipe -b B --produce TOPIC -n COUNT --file TASKS.jsonl
 *     Preloads COUNT messages as fast as the producer goes, cycling
 *     through the file's lines with each line's first "id" value replaced
 *     by b-<i> (also the key), then flushes.
 *   bench-pipe -b B --wait-sum N --topics T1,T2,... [--since EPOCH_MS]
 *     Polls the high watermarks of every partition of the topics until
 *     they add up to N; prints when 10% and 100% were reached, counted
 *     from --since (wall clock, so that another process's start can be
 *     the origin).
 *
 * The client properties mirror the defaults of common/kafka.c; change
 * them together, or the baseline stops being one.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <getopt.h>
#include <librdkafka/rdkafka.h>

#include "base/util.h"
#include "kafka/client.h"
#include "kafka/produce.h"

#include "base/banned.h"

#define POLL_BATCH   1000  /* messages per consumer round, as router.c */
#define FLUSH_MS     30000 /* bounded waits for acknowledgements */
#define MAX_PARTS    1024  /* input partitions the pipe can track */
#define SEQ_BITS     48    /* opaque = partition << SEQ_BITS | sequence */
#define MAX_LINE     (1024 * 1024)
#define WAIT_TICK_MS 20 /* watermark sampling period */

_Static_assert(sizeof(uintptr_t) >= 8, "the opaque packs 64 bits");

struct opts {
    const char *bootstrap;
    const char *in, *out, *group; /* pipe */
    const char *produce, *file;   /* --produce */
    const char *topics;           /* --wait-sum */
    int64_t count;
    int64_t wait_sum;
    int64_t since_ms;
    int64_t timeout_s;
};

/* Properties of common/kafka.c (ks_kafka_consumer_new, _producer_new). */
static const char *const consumer_props[][2] = {
    {"enable.auto.offset.store", "false"}, {"enable.auto.commit", "true"},
    {"auto.commit.interval.ms", "1000"},   {"auto.offset.reset", "earliest"},
    {"enable.partition.eof", "false"},     {NULL, NULL},
};
static const char *const producer_props[][2] = {
    {"enable.idempotence", "true"},
    {"linger.ms", "1"},
    {"message.max.bytes", "2000000"},
    {NULL, NULL},
};
/* The preload only has to be fast and ordered. */
static const char *const preload_props[][2] = {
    {"enable.idempotence", "true"},
    {"linger.ms", "20"},
    {"batch.num.messages", "10000"},
    {"batch.size", "1000000"},
    {"queue.buffering.max.messages", "1000000"},
    {"message.max.bytes", "2000000"},
    {NULL, NULL},
};

static void usage(void)
{
    fputs("usage: bench-pipe -b BOOTSTRAP -i IN -o OUT -g GROUP -n COUNT\n"
          "       bench-pipe -b BOOTSTRAP --produce TOPIC -n COUNT "
          "--file TASKS.jsonl\n"
          "       bench-pipe -b BOOTSTRAP --wait-sum N --topics T1,T2,... "
          "[--since EPOCH_MS]\n"
          "  all modes: [--timeout SECONDS] (default 300)\n",
          stderr);
}

/* ------------------------------------------------------------ clients -- */

/* Returns a conf with bootstrap and the {NULL, NULL}-terminated pairs,
 * or NULL with errstr. Caller owns it. */
static rd_kafka_conf_t *conf_new(const char *bootstrap,
                                 const char *const (*kv)[2],
                                 char *errstr,
                                 size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                          errstr_size) != RD_KAFKA_CONF_OK) {
        goto fail;
    }
    for (; kv && (*kv)[0]; kv++) {
        if (rd_kafka_conf_set(conf, (*kv)[0], (*kv)[1], errstr, errstr_size) !=
            RD_KAFKA_CONF_OK) {
            goto fail;
        }
    }
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Takes ownership of conf. Returns the client, or NULL after a message. */
static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));

    if (!rk) {
        fprintf(stderr, "bench-pipe: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}


/* CPU seconds and peak RSS (kB, the kernel's VmHWM) of this process. */
static void self_usage(double *cpu_s, long *peak_kb)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    *cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    *peak_kb = ru.ru_maxrss;
}

static double rate(int64_t n, int64_t ms)
{
    return ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0;
}

/* --------------------------------------------------------------- pipe -- */

/* The offsets consumed from one input partition whose copies are not all
 * acknowledged yet, in consumption order: a ring indexed by a sequence
 * number, which is what each copy carries back in its delivery report.
 * Sequences below head are stale (finished, or dropped on revocation). */
struct window {
    int64_t *offsets;
    bool *done;
    uint64_t head, tail; /* oldest unacknowledged, next to hand out */
    size_t cap;          /* a power of two */
};

struct pipe {
    rd_kafka_t *rk_cons, *rk_prod;
    rd_kafka_queue_t *rkqu_cons, *rkqu_prod;
    int wake[2]; /* written by librdkafka when a queue turns non-empty */
    const char *in, *out;
    struct window win[MAX_PARTS];
    int64_t count, consumed, acked;
    int64_t t_start, t_10, t_end; /* monotonic ms */
    int64_t acked_10;
    bool failed;
};

static void window_grow(struct window *w)
{
    size_t cap = w->cap ? w->cap * 2 : 1024;
    int64_t *offsets = ks_xcalloc(cap, sizeof(*offsets));
    bool *done = ks_xcalloc(cap, sizeof(*done));

    for (uint64_t s = w->head; s < w->tail; s++) {
        offsets[s & (cap - 1)] = w->offsets[s & (w->cap - 1)];
        done[s & (cap - 1)] = w->done[s & (w->cap - 1)];
    }
    free(w->offsets);
    free(w->done);
    w->offsets = offsets;
    w->done = done;
    w->cap = cap;
}

static uint64_t window_push(struct window *w, int64_t offset)
{
    if (w->tail - w->head == w->cap) {
        window_grow(w);
    }
    w->offsets[w->tail & (w->cap - 1)] = offset;
    w->done[w->tail & (w->cap - 1)] = false;
    return w->tail++;
}

/* Marks seq acknowledged. Returns the partition's new committable position
 * when it advanced, else -1. */
static int64_t window_ack(struct window *w, uint64_t seq)
{
    int64_t pos = -1;

    if (seq < w->head || seq >= w->tail) {
        return -1;
    }
    w->done[seq & (w->cap - 1)] = true;
    while (w->head < w->tail && w->done[w->head & (w->cap - 1)]) {
        pos = w->offsets[w->head & (w->cap - 1)] + 1;
        w->head++;
    }
    return pos;
}

static void store_offset(struct pipe *pp, int32_t partition, int64_t pos)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(parts, pp->in, partition)->offset = pos;
    /* Fails only for a partition no longer assigned: nothing to do. */
    rd_kafka_offsets_store(pp->rk_cons, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

static void count_ack(struct pipe *pp)
{
    pp->acked++;
    if (pp->t_10 < 0 && pp->acked * 10 >= pp->count) {
        pp->t_10 = ks_mono_ms();
        pp->acked_10 = pp->acked;
    }
    if (pp->t_end < 0 && pp->acked >= pp->count) {
        pp->t_end = ks_mono_ms();
    }
}

static void on_delivery(rd_kafka_t *rk,
                        const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct pipe *pp = opaque;
    uintptr_t tag = (uintptr_t)rkm->_private;
    int32_t partition = (int32_t)(tag >> SEQ_BITS);
    rd_kafka_headers_t *hdrs = NULL;
    int64_t pos;

    if (rkm->err) {
        /* As the router: produce again rather than commit past it. */
        if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
            hdrs = rd_kafka_headers_copy(hdrs);
        }
        if (ks_kafka_produce(rk, pp->out, rkm->key, rkm->key_len, rkm->payload,
                             rkm->len, hdrs, rkm->_private) != 0) {
            pp->failed = true;
        }
        return;
    }
    pos =
        window_ack(&pp->win[partition], tag & (((uintptr_t)1 << SEQ_BITS) - 1));
    if (pos >= 0) {
        store_offset(pp, partition, pos);
    }
    count_ack(pp);
}

/* Before partitions go, every copy made for them is acknowledged and its
 * offset stored, so the commit on unassign is final. */
static void on_rebalance(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct pipe *pp = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    rd_kafka_error_t *error = NULL;

    if (!assign) {
        if (rd_kafka_flush(pp->rk_prod, FLUSH_MS) != 0) {
            fprintf(stderr, "bench-pipe: copies unacknowledged at "
                            "revocation\n");
            pp->failed = true;
        }
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;

            if (p >= 0 && p < MAX_PARTS) {
                pp->win[p].head = pp->win[p].tail;
            }
        }
    }
    if (coop) {
        error = assign ? rd_kafka_incremental_assign(rk, parts)
                       : rd_kafka_incremental_unassign(rk, parts);
    } else {
        rd_kafka_assign(rk, assign ? parts : NULL);
    }
    if (error) {
        fprintf(stderr, "bench-pipe: %s\n", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        pp->failed = true;
    }
}

static void copy_one(struct pipe *pp, const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;
    uintptr_t tag;

    if (rkm->err) {
        fprintf(stderr, "bench-pipe: consumer: %s\n",
                rd_kafka_message_errstr(rkm));
        return;
    }
    if (rkm->partition < 0 || rkm->partition >= MAX_PARTS) {
        fprintf(stderr, "bench-pipe: partition %" PRId32 " over %d\n",
                rkm->partition, MAX_PARTS);
        pp->failed = true;
        return;
    }
    tag = (uintptr_t)rkm->partition << SEQ_BITS |
          window_push(&pp->win[rkm->partition], rkm->offset);
    if (rd_kafka_message_headers(rkm, &hdrs) == 0) {
        hdrs = rd_kafka_headers_copy(hdrs);
    }
    pp->consumed++;
    if (ks_kafka_produce(pp->rk_prod, pp->out, rkm->key, rkm->key_len,
                         rkm->payload, rkm->len, hdrs, (void *)tag) != 0) {
        pp->failed = true;
    }
}

static void pipe_serve(struct pipe *pp)
{
    struct pollfd pfd = {.fd = pp->wake[0], .events = POLLIN};
    rd_kafka_message_t *rkm;
    char buf[256];
    int n = 0;

    /* Same loop as router.c: wait for a wake-up (bounded), drain the
     * pipe, take a batch from the consumer, serve delivery reports. */
    poll(&pfd, 1, 100);
    while (read(pp->wake[0], buf, sizeof(buf)) > 0) {
    }
    while (n++ < POLL_BATCH && pp->consumed < pp->count &&
           (rkm = rd_kafka_consumer_poll(pp->rk_cons, 0)) != NULL) {
        copy_one(pp, rkm);
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_poll(pp->rk_prod, 0);
}

/* Looks up OUT's metadata before the first copy, as router_new does for
 * its tier topics, so the first records are not held back by it. */
static void pipe_warm(struct pipe *pp)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(pp->rk_prod, pp->out, NULL);
    const struct rd_kafka_metadata *md = NULL;

    if (rd_kafka_metadata(pp->rk_prod, 0, rkt, &md, 5000) != 0) {
        fprintf(stderr, "bench-pipe: no metadata for %s yet\n", pp->out);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
}

static int pipe_subscribe(struct pipe *pp)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(topics, pp->in, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(pp->rk_cons, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        fprintf(stderr, "bench-pipe: subscribe to %s: %s\n", pp->in,
                rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static void pipe_destroy(struct pipe *pp)
{
    if (pp->rkqu_cons) {
        rd_kafka_queue_destroy(pp->rkqu_cons);
    }
    if (pp->rkqu_prod) {
        rd_kafka_queue_destroy(pp->rkqu_prod);
    }
    if (pp->rk_cons) {
        /* Commits what was stored; the broker is up for the whole run. */
        rd_kafka_consumer_close(pp->rk_cons);
        rd_kafka_destroy(pp->rk_cons);
    }
    if (pp->rk_prod) {
        rd_kafka_destroy(pp->rk_prod);
    }
    for (int i = 0; i < MAX_PARTS; i++) {
        free(pp->win[i].offsets);
        free(pp->win[i].done);
    }
    if (pp->wake[0] >= 0) {
        close(pp->wake[0]);
        close(pp->wake[1]);
    }
    free(pp);
}

static struct pipe *pipe_new(const struct opts *o)
{
    struct pipe *pp = ks_xcalloc(1, sizeof(*pp));
    rd_kafka_conf_t *conf;
    char errstr[512];

    pp->in = o->in;
    pp->out = o->out;
    pp->count = o->count;
    pp->t_10 = pp->t_end = -1;
    pp->wake[0] = pp->wake[1] = -1;
    if (pipe2(pp->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        fprintf(stderr, "bench-pipe: pipe2 failed\n");
        goto fail;
    }
    conf = conf_new(o->bootstrap, producer_props, errstr, sizeof(errstr));
    if (!conf) {
        goto fail_conf;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, pp);
    if (!(pp->rk_prod = client_new(RD_KAFKA_PRODUCER, conf))) {
        goto fail;
    }
    pipe_warm(pp);
    conf = conf_new(o->bootstrap, consumer_props, errstr, sizeof(errstr));
    if (!conf || rd_kafka_conf_set(conf, "group.id", o->group, errstr,
                                   sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        goto fail_conf;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, pp);
    if (!(pp->rk_cons = client_new(RD_KAFKA_CONSUMER, conf))) {
        goto fail;
    }
    rd_kafka_poll_set_consumer(pp->rk_cons);
    pp->rkqu_cons = rd_kafka_queue_get_consumer(pp->rk_cons);
    pp->rkqu_prod = rd_kafka_queue_get_main(pp->rk_prod);
    rd_kafka_queue_io_event_enable(pp->rkqu_cons, pp->wake[1], "w", 1);
    rd_kafka_queue_io_event_enable(pp->rkqu_prod, pp->wake[1], "w", 1);
    if (pipe_subscribe(pp) != 0) {
        goto fail;
    }
    return pp;

fail_conf:
    fprintf(stderr, "bench-pipe: %s\n", errstr);
fail:
    pipe_destroy(pp);
    return NULL;
}

static int run_pipe(const struct opts *o)
{
    int64_t t_start = ks_mono_ms(), deadline = t_start + o->timeout_s * 1000;
    struct pipe *pp = pipe_new(o);
    double cpu_s;
    long peak_kb;
    int64_t ms;

    if (!pp) {
        return 1;
    }
    while (!pp->failed && pp->t_end < 0 && ks_mono_ms() < deadline) {
        pipe_serve(pp);
    }
    if (pp->t_end < 0) {
        fprintf(stderr,
                "bench-pipe: %" PRId64 " of %" PRId64 " copies acknowledged "
                "(%s)\n",
                pp->acked, pp->count, pp->failed ? "failed" : "timed out");
        pipe_destroy(pp);
        return 1;
    }
    self_usage(&cpu_s, &peak_kb);
    ms = pp->t_end - t_start;
    printf("pipe: %" PRId64 " msgs in %.2f s = %.0f msgs/s (steady %.0f "
           "msgs/s), cpu %.2f s, peak rss %ld kB\n",
           pp->acked, (double)ms / 1000.0, rate(pp->acked, ms),
           rate(pp->acked - pp->acked_10, pp->t_end - pp->t_10), cpu_s,
           peak_kb);
    fflush(stdout);
    pipe_destroy(pp);
    return 0;
}

/* ------------------------------------------------------------ produce -- */

/* One line of the task file, split around its "id" value. */
struct line {
    char *text;
    size_t len;
    size_t id_at, id_end; /* the value's bytes, without quotes; 0, 0: none */
};

/* Finds the first "id": "..." pair of a JSON line by text, not parsing:
 * good enough for the bench's own task files. */
static void line_find_id(struct line *ln)
{
    const char *p = ln->text, *v, *end;

    while ((p = strstr(p, "\"id\"")) != NULL) {
        if (p > ln->text && p[-1] == '\\') {
            p += 4;
            continue;
        }
        v = p + 4;
        v += strspn(v, " \t");
        if (*v++ != ':') {
            p += 4;
            continue;
        }
        v += strspn(v, " \t");
        if (*v++ != '"' || !(end = strchr(v, '"'))) {
            return;
        }
        ln->id_at = (size_t)(v - ln->text);
        ln->id_end = (size_t)(end - ln->text);
        return;
    }
}

/* Reads the non-empty lines of path. Returns how many, or 0 after a
 * message. The caller frees (*lines)[i].text and *lines. */
static size_t lines_read(const char *path, struct line **lines)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0, n = 0, alloc = 0;
    ssize_t len;

    *lines = NULL;
    if (!f) {
        fprintf(stderr, "bench-pipe: cannot open %s\n", path);
        return 0;
    }
    while ((len = getline(&buf, &cap, f)) >= 0) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
            buf[--len] = '\0';
        }
        if (len == 0 || len > MAX_LINE) {
            continue;
        }
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            *lines = ks_xrealloc(*lines, alloc * sizeof(**lines));
        }
        (*lines)[n] = (struct line){.text = ks_xstrndup(buf, (size_t)len),
                                    .len = (size_t)len};
        line_find_id(&(*lines)[n++]);
    }
    free(buf);
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "bench-pipe: no lines in %s\n", path);
    }
    return n;
}

static void on_preload_delivery(rd_kafka_t *rk,
                                const rd_kafka_message_t *rkm,
                                void *opaque)
{
    int64_t *failed = opaque;

    (void)rk;
    if (rkm->err) {
        if ((*failed)++ == 0) {
            fprintf(stderr, "bench-pipe: delivery failed: %s\n",
                    rd_kafka_err2str(rkm->err));
        }
    }
}

/* Formats task i from ln into buf: the line with its id replaced by
 * b-<i>; the key is buf + *key_at, *key_len bytes. Returns the length. */
static size_t task_format(const struct line *ln,
                          int64_t i,
                          char *buf,
                          size_t size,
                          size_t *key_at,
                          size_t *key_len)
{
    int idl;

    if (ln->id_end == 0) {
        /* No id to replace: the line as it is, keyed by its number. */
        memcpy(buf, ln->text, ln->len);
        idl = snprintf(buf + ln->len, size - ln->len, "b-%" PRId64, i);
        *key_at = ln->len;
        *key_len = (size_t)idl;
        return ln->len;
    }
    memcpy(buf, ln->text, ln->id_at);
    idl = snprintf(buf + ln->id_at, size - ln->id_at, "b-%" PRId64, i);
    memcpy(buf + ln->id_at + idl, ln->text + ln->id_end, ln->len - ln->id_end);
    *key_at = ln->id_at;
    *key_len = (size_t)idl;
    return ln->len - (ln->id_end - ln->id_at) + (size_t)idl;
}

static int produce_all(rd_kafka_t *rk,
                       const struct opts *o,
                       const struct line *lines,
                       size_t n_lines)
{
    size_t size = MAX_LINE + 64, len, key_at, key_len;
    char *buf = ks_xmalloc(size);
    int ret = 0;

    for (int64_t i = 0; i < o->count && ret == 0; i++) {
        len = task_format(&lines[(size_t)i % n_lines], i, buf, size, &key_at,
                          &key_len);
        ret = ks_kafka_produce(rk, o->produce, buf + key_at, key_len, buf, len,
                               NULL, NULL) == KS_OK
                  ? 0
                  : -1;
        if (i % 1000 == 0) {
            rd_kafka_poll(rk, 0);
        }
    }
    free(buf);
    return ret;
}

static int run_produce(const struct opts *o)
{
    int64_t t_start = ks_mono_ms(), failed = 0;
    struct line *lines = NULL;
    size_t n_lines = lines_read(o->file, &lines);
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    char errstr[512];
    int ret = 1;

    if (n_lines == 0) {
        goto out;
    }
    conf = conf_new(o->bootstrap, preload_props, errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "bench-pipe: %s\n", errstr);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_preload_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    if (!(rk = client_new(RD_KAFKA_PRODUCER, conf)) ||
        produce_all(rk, o, lines, n_lines) != 0) {
        goto out;
    }
    if (rd_kafka_flush(rk, (int)o->timeout_s * 1000) != 0 || failed) {
        fprintf(stderr, "bench-pipe: %" PRId64 " failed, %d unacknowledged\n",
                failed, rd_kafka_outq_len(rk));
        goto out;
    }
    fprintf(stderr, "bench-pipe: produced %" PRId64 " to %s in %.2f s\n",
            o->count, o->produce, (double)(ks_mono_ms() - t_start) / 1000.0);
    ret = 0;

out:
    if (rk) {
        rd_kafka_destroy(rk);
    }
    for (size_t i = 0; i < n_lines; i++) {
        free(lines[i].text);
    }
    free(lines);
    return ret;
}

/* --------------------------------------------------------------- wait -- */

struct watch {
    char **topics;
    int32_t *n_parts;
    int64_t *sums; /* per topic, at the last sample */
    size_t n;
};

static void watch_fini(struct watch *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->topics[i]);
    }
    free(w->topics);
    free(w->n_parts);
    free(w->sums);
}

/* Splits the comma-separated list into w->topics. */
static void watch_split(struct watch *w, const char *list)
{
    const char *p = list, *comma;

    w->n = 0;
    w->topics = ks_xcalloc(strlen(list) + 1, sizeof(*w->topics));
    while (*p) {
        comma = strchr(p, ',');
        if (!comma) {
            comma = p + strlen(p);
        }
        if (comma > p) {
            w->topics[w->n++] = ks_xstrndup(p, (size_t)(comma - p));
        }
        p = *comma ? comma + 1 : comma;
    }
    w->n_parts = ks_xcalloc(w->n, sizeof(*w->n_parts));
    w->sums = ks_xcalloc(w->n, sizeof(*w->sums));
}

/* Looks up each topic's partition count. Returns 0, or -1 after a
 * message (a topic missing or in error). */
static int watch_partitions(struct watch *w, rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    int ret = 0;

    if (err) {
        fprintf(stderr, "bench-pipe: metadata: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    for (size_t i = 0; i < w->n; i++) {
        for (int t = 0; t < md->topic_cnt; t++) {
            if (strcmp(md->topics[t].topic, w->topics[i]) == 0 &&
                !md->topics[t].err) {
                w->n_parts[i] = md->topics[t].partition_cnt;
            }
        }
        if (w->n_parts[i] == 0) {
            fprintf(stderr, "bench-pipe: no topic %s\n", w->topics[i]);
            ret = -1;
        }
    }
    rd_kafka_metadata_destroy(md);
    return ret;
}

/* Returns the sum of the high watermarks; 0 while a partition has no
 * leader yet (a topic just created), so the caller samples again; -1
 * after a message on any other error. */
static int64_t watch_sum(struct watch *w, rd_kafka_t *rk)
{
    int64_t lo, hi, sum = 0;
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < w->n; i++) {
        w->sums[i] = 0;
        for (int32_t p = 0; p < w->n_parts[i]; p++) {
            err = rd_kafka_query_watermark_offsets(rk, w->topics[i], p, &lo,
                                                   &hi, 5000);
            if (err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                err == RD_KAFKA_RESP_ERR__TRANSPORT) {
                return 0;
            }
            if (err) {
                fprintf(stderr,
                        "bench-pipe: watermarks of %s/%" PRId32 ": %s\n",
                        w->topics[i], p, rd_kafka_err2str(err));
                return -1;
            }
            w->sums[i] += hi;
        }
        sum += w->sums[i];
    }
    return sum;
}

/* Samples until the sum reaches o->wait_sum. Returns 0 and fills the
 * times (wall ms) and sums at 10% and at the end, or -1. */
static int watch_wait(struct watch *w,
                      rd_kafka_t *rk,
                      const struct opts *o,
                      int64_t t[2],
                      int64_t s[2])
{
    int64_t deadline = ks_mono_ms() + o->timeout_s * 1000, sum = 0;
    struct timespec tick = {0, WAIT_TICK_MS * 1000000L};

    t[0] = -1;
    while ((sum = watch_sum(w, rk)) >= 0) {
        if (t[0] < 0 && sum * 10 >= o->wait_sum) {
            t[0] = ks_wall_ms();
            s[0] = sum;
        }
        if (sum >= o->wait_sum) {
            t[1] = ks_wall_ms();
            s[1] = sum;
            return 0;
        }
        if (ks_mono_ms() > deadline) {
            fprintf(stderr,
                    "bench-pipe: %" PRId64 " of %" PRId64 " after %" PRId64
                    " s\n",
                    sum, o->wait_sum, o->timeout_s);
            return -1;
        }
        nanosleep(&tick, NULL);
    }
    return -1;
}

static int run_wait(const struct opts *o)
{
    int64_t since = o->since_ms > 0 ? o->since_ms : ks_wall_ms();
    int64_t t[2] = {0, 0}, s[2] = {0, 0};
    struct watch w = {0};
    char errstr[512];
    rd_kafka_conf_t *conf =
        conf_new(o->bootstrap, NULL, errstr, sizeof(errstr));
    rd_kafka_t *rk = conf ? client_new(RD_KAFKA_PRODUCER, conf) : NULL;
    int ret = 1;

    watch_split(&w, o->topics);
    if (!rk || w.n == 0 || watch_partitions(&w, rk) != 0 ||
        watch_wait(&w, rk, o, t, s) != 0) {
        goto out;
    }
    printf("wait: sum=%" PRId64 " elapsed=%.3f rate=%.0f steady=%.0f\n", s[1],
           (double)(t[1] - since) / 1000.0, rate(s[1], t[1] - since),
           rate(s[1] - s[0], t[1] - t[0]));
    printf("topics:");
    for (size_t i = 0; i < w.n; i++) {
        printf(" %s=%" PRId64, w.topics[i], w.sums[i]);
    }
    printf("\n");
    ret = 0;

out:
    if (!conf) {
        fprintf(stderr, "bench-pipe: %s\n", errstr);
    }
    if (rk) {
        rd_kafka_destroy(rk);
    }
    watch_fini(&w);
    return ret;
}

/* --------------------------------------------------------------- main -- */

static int parse_count(const char *name, const char *s, int64_t *out)
{
    if (ks_parse_int64(s, 1, INT64_MAX / 1000, out) != 0) {
        fprintf(stderr, "bench-pipe: %s '%s' is not a positive number\n", name,
                s);
        return -1;
    }
    return 0;
}

/* Returns 0, or -1 after a message. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"produce", required_argument, NULL, 'P'},
        {"file", required_argument, NULL, 'f'},
        {"wait-sum", required_argument, NULL, 'W'},
        {"topics", required_argument, NULL, 'T'},
        {"since", required_argument, NULL, 'S'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, bad = 0;

    *o = (struct opts){.timeout_s = 300};
    while ((c = getopt_long(argc, argv, "b:i:o:g:n:h", longs, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 'i':
            o->in = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 'P':
            o->produce = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'T':
            o->topics = optarg;
            break;
        case 'n':
            bad |= parse_count("-n", optarg, &o->count);
            break;
        case 'W':
            bad |= parse_count("--wait-sum", optarg, &o->wait_sum);
            break;
        case 'S':
            bad |= parse_count("--since", optarg, &o->since_ms);
            break;
        case 't':
            bad |= parse_count("--timeout", optarg, &o->timeout_s);
            break;
        default:
            bad = -1;
            break;
        }
    }
    if (bad || optind != argc || !o->bootstrap) {
        return -1;
    }
    if (o->produce) {
        return o->count > 0 && o->file ? 0 : -1;
    }
    if (o->wait_sum > 0) {
        return o->topics ? 0 : -1;
    }
    return o->in && o->out && o->group && o->count > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o;

    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    if (o.produce) {
        return run_produce(&o);
    }
    if (o.wait_sum > 0) {
        return run_wait(&o);
    }
    return run_pipe(&o);
}
