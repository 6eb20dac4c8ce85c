/*
 * curlbase.c - bench-curlbase: the bare HTTP client bench/worker.sh
 * measures kascade-worker against.
 *
 *   bench-curlbase -u BASE_URL -m MAX_INFLIGHT -n CALLS [-t TASKS.jsonl]
 *
 * Makes CALLS chat-completion calls (POST BASE_URL/chat/completions,
 * OpenAI dialect, one user message) with at most MAX_INFLIGHT in flight
 * on one curl multi handle, a new call started as soon as one ends, each
 * response read in full and checked for status 200. No Kafka, no Redis,
 * no decoding of the answer: the rate this machine can make calls to the
 * simulator at, which is the most a worker with the same max_inflight can
 * reach. The prompts cycle through the "input" values of TASKS (default:
 * a fixed sentence) so request sizes match the worker's.
 *
 * Prints "calls=N elapsed=S rate=R" on stdout; exits non-zero when a call
 * fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>

#include "base/util.h"

#define MAX_BODIES 64

struct run {
    CURLM *multi;
    char url[512];
    char *bodies[MAX_BODIES];
    size_t n_bodies;
    long started, done, failed;
    struct curl_slist *hdrs;
};

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * n;
}

static char *body_of(const char *input)
{
    cJSON *root = cJSON_CreateObject(), *msgs, *m;
    char *s;

    cJSON_AddStringToObject(root, "model", "mid-model");
    msgs = cJSON_AddArrayToObject(root, "messages");
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", input);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(root, "max_tokens", 64);
    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static void load_bodies(struct run *r, const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[65536];

    while (f && r->n_bodies < MAX_BODIES && fgets(line, sizeof(line), f)) {
        cJSON *t = cJSON_Parse(line);
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(t, "input");

        if (cJSON_IsString(in)) {
            r->bodies[r->n_bodies++] = body_of(in->valuestring);
        }
        cJSON_Delete(t);
    }
    if (f) {
        fclose(f);
    }
    if (r->n_bodies == 0) {
        r->bodies[r->n_bodies++] = body_of("How do I reset my password?");
    }
}

static void start_one(struct run *r)
{
    CURL *e = curl_easy_init();

    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                     r->bodies[r->started % (long)r->n_bodies]);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
    curl_multi_add_handle(r->multi, e);
    r->started++;
}

/* Collects finished calls; returns how many ended. */
static int reap(struct run *r)
{
    CURLMsg *msg;
    int left, ended = 0;

    while ((msg = curl_multi_info_read(r->multi, &left))) {
        long status = 0;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (msg->data.result != CURLE_OK || status != 200) {
            r->failed++;
        }
        curl_multi_remove_handle(r->multi, msg->easy_handle);
        curl_easy_cleanup(msg->easy_handle);
        r->done++;
        ended++;
    }
    return ended;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct run r = {0};
    const char *base = NULL, *tasks = NULL;
    long m = 0, n = 0;
    int opt, running;
    double t0, el;

    while ((opt = getopt(argc, argv, "u:m:n:t:")) != -1) {
        if (opt == 'u') {
            base = optarg;
        } else if (opt == 'm') {
            m = strtol(optarg, NULL, 10);
        } else if (opt == 'n') {
            n = strtol(optarg, NULL, 10);
        } else if (opt == 't') {
            tasks = optarg;
        } else {
            return 2;
        }
    }
    if (!base || m <= 0 || n <= 0) {
        fprintf(stderr, "usage: bench-curlbase -u BASE_URL -m MAX_INFLIGHT "
                        "-n CALLS [-t TASKS.jsonl]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(r.url, sizeof(r.url), "%s/chat/completions", base);
    r.hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    load_bodies(&r, tasks);
    r.multi = curl_multi_init();
    curl_multi_setopt(r.multi, CURLMOPT_MAXCONNECTS, m);
    t0 = now_s();
    while (r.done < n) {
        while (r.started < n && r.started - r.done < m) {
            start_one(&r);
        }
        curl_multi_perform(r.multi, &running);
        if (reap(&r) == 0) {
            curl_multi_poll(r.multi, NULL, 0, 100, NULL);
        }
    }
    el = now_s() - t0;
    printf("calls=%ld elapsed=%.3f rate=%.0f failed=%ld\n", r.done, el,
           (double)r.done / el, r.failed);
    curl_multi_cleanup(r.multi);
    curl_slist_free_all(r.hdrs);
    for (size_t i = 0; i < r.n_bodies; i++) {
        cJSON_free(r.bodies[i]);
    }
    curl_global_cleanup();
    return r.failed ? 1 : 0;
}
