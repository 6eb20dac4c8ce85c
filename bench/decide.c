/*
 * decide.c - bench-decide: the cost of one routing decision, measured by
 * bench/decide.sh under valgrind's callgrind.
 *
 *   bench-decide -c CONFIG -t TASK_FILE [-m MODEL] [-n N] [-X key=value]...
 *   bench-decide --parse-only -c CONFIG -t TASK_FILE [-n N]
 *
 * Reads one task (the whole file: JSON, or protobuf when the file does
 * not start with '{') and decides it N times (default 1000) the way the
 * router does for a record it consumed: detect the format, decode with
 * the config's limits (strict decoding, as in the router), make the rules
 * step (route_task_rules), score the task's text with the learned model
 * when -m is given, decide the tier (route_task), free the task. Kafka is
 * not involved: what is measured is the work the router adds per record.
 *
 * --parse-only is the baseline: the least any JSON router must do with
 * the record, cJSON_ParseWithLength and cJSON_Delete of the same bytes,
 * in parse_one().
 *
 * Every decision runs inside decide_one() (the baseline inside
 * parse_one()); callgrind's --toggle-collect on it counts exactly that
 * (bench/decide.sh divides by N). Without
 * valgrind the program prints the wall time per decision, a rough figure
 * only. Exits non-zero when the task does not decode or is refused.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <getopt.h>

#include "../router/route.h"
#include "base/util.h"
#include "config/config.h"
#include "learn/lr.h"
#include "wire/codec.h"

#define MAX_OVERRIDES 16

struct bench {
    const struct ks_config *cfg;
    const struct ks_lr_model *model; /* NULL: no score step */
    const char *buf;
    size_t len;
    int tier; /* the last decision's tier */
};

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = ks_xmalloc((size_t)n + 1);
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

/* The text the router's scorer reads: the input, then each message. */
static double score(const struct ks_lr_model *m, const struct ks_task *task)
{
    struct ks_buf text;
    double sc;

    ks_buf_init(&text);
    if (task->input) {
        ks_buf_append(&text, task->input, strlen(task->input));
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        ks_buf_append(&text, "\n", text.len ? 1 : 0);
        ks_buf_append(&text, task->messages[i].content,
                      strlen(task->messages[i].content));
    }
    sc = ks_lr_score(m, text.data ? text.data : "", text.len);
    ks_buf_fini(&text);
    return sc;
}

/* One decision, decode included. Not inlined: callgrind counts it. */
__attribute__((noinline)) static int decide_one(struct bench *b)
{
    struct ks_codec_error cerr = {0};
    struct ks_task *task = NULL;
    struct route_rules rules;
    struct route_state st = {-1, NULL};
    struct route_decision d;
    enum ks_format fmt;
    int rc = -1;

    if (ks_codec_detect(NULL, b->buf, b->len, &fmt, &cerr) != KS_OK ||
        ks_task_decode(fmt, b->buf, b->len, &b->cfg->limits, &task, &cerr) !=
            KS_OK) {
        fprintf(stderr, "bench-decide: %s: %s\n", cerr.code, cerr.detail);
        return -1;
    }
    route_task_rules(b->cfg, task, &rules);
    if (b->model) {
        st.score = score(b->model, task);
    }
    if (route_task(b->cfg, task, &rules, &st, &d) == 0 &&
        d.action == ROUTE_PUBLISH) {
        b->tier = d.tier;
        rc = 0;
    } else {
        fprintf(stderr, "bench-decide: not published: %s\n", d.detail);
    }
    ks_task_destroy(task);
    return rc;
}

/* The baseline: parse and free the bytes, nothing else. */
__attribute__((noinline)) static int parse_one(struct bench *b)
{
    cJSON *root = cJSON_ParseWithLength(b->buf, b->len);

    if (!root) {
        fprintf(stderr, "bench-decide: not JSON\n");
        return -1;
    }
    cJSON_Delete(root);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-decide -c CONFIG -t TASK_FILE [-m MODEL] "
                    "[-n N] [-X key=value]... [--parse-only]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *task_path = NULL, *model_path = NULL;
    const char *overrides[MAX_OVERRIDES];
    size_t n_over = 0;
    long n = 1000;
    char errstr[512];
    struct bench b = {0};
    struct ks_config *cfg;
    struct ks_lr_model *model = NULL;
    char *buf;
    struct timespec t0, t1;
    static const struct option longopts[] = {
        {"parse-only", no_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    int (*one)(struct bench *) = decide_one;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:t:m:n:X:", longopts, NULL)) !=
           -1) {
        switch (opt) {
        case 'P':
            one = parse_one;
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case 't':
            task_path = optarg;
            break;
        case 'm':
            model_path = optarg;
            break;
        case 'n':
            n = strtol(optarg, NULL, 10);
            break;
        case 'X':
            if (n_over == MAX_OVERRIDES) {
                usage();
            }
            overrides[n_over++] = optarg;
            break;
        default:
            usage();
        }
    }
    if (!cfg_path || !task_path || n <= 0) {
        usage();
    }
    cfg = ks_config_load(cfg_path, overrides, n_over, errstr, sizeof(errstr));
    if (!cfg) {
        fprintf(stderr, "bench-decide: %s\n", errstr);
        return 1;
    }
    if (model_path &&
        !(model = ks_lr_load(model_path, errstr, sizeof(errstr)))) {
        fprintf(stderr, "bench-decide: %s\n", errstr);
        return 1;
    }
    if (!(buf = read_file(task_path, &b.len))) {
        fprintf(stderr, "bench-decide: cannot read %s\n", task_path);
        return 1;
    }
    b.cfg = cfg;
    b.model = model;
    b.buf = buf;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        if (one(&b) != 0) {
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("decisions=%ld tier=%s bytes=%zu ns_per_decision=%.0f\n", n,
           one == parse_one ? "-" : cfg->tiers[b.tier].name, b.len,
           ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
            (double)(t1.tv_nsec - t0.tv_nsec)) /
               (double)n);
    free(buf);
    ks_lr_destroy(model);
    ks_config_destroy(cfg);
    return 0;
}
