/*
 * model.c - request building and reply parsing for OpenAI-compatible chat
 * completions, and the HTTP side of every provider kind (the Anthropic
 * dialect's body and reply are in model_anthropic.c).
 *
 * The request carries the task's instructions (or the tier's executor
 * prompt) as the system message, then the task's messages or its input as
 * the user message, and asks for logprobs so confidence can be measured.
 * The response body is capped; usage is taken from the provider when it
 * reports it, else estimated at 4 bytes a token.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "model_anthropic.h"
#include "util.h"

#include "banned.h"

struct ks_model_call {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct ks_buf resp;
    size_t max_body;
    bool overflow;
    char *content;
    bool anthropic; /* kind "anthropic": the Messages API */
    void *opaque;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct ks_model_call *call = userdata;
    size_t n = size * nmemb;

    if (call->resp.len + n > call->max_body) {
        call->overflow = true;
        return 0; /* aborts the transfer */
    }
    ks_buf_append(&call->resp, ptr, n);
    return n;
}

static char *build_body(const struct ks_provider_cfg *prov,
                        const struct ks_task *task,
                        const char *instructions,
                        uint32_t max_output_tokens)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *msgs;
    const char *sys = task->instructions ? task->instructions : instructions;
    char *body;

    cJSON_AddStringToObject(root, "model", prov->model);
    msgs = cJSON_AddArrayToObject(root, "messages");
    if (sys) {
        cJSON *m = cJSON_CreateObject();

        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", sys);
        cJSON_AddItemToArray(msgs, m);
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        cJSON *m = cJSON_CreateObject();

        cJSON_AddStringToObject(m, "role", task->messages[i].role);
        cJSON_AddStringToObject(m, "content", task->messages[i].content);
        cJSON_AddItemToArray(msgs, m);
    }
    if (task->input) {
        cJSON *m = cJSON_CreateObject();

        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", task->input);
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON_AddNumberToObject(root, "max_tokens", max_output_tokens);
    cJSON_AddBoolToObject(root, "logprobs", 1);
    /* llama-cpp-python returns logprobs only when top_logprobs is set. */
    cJSON_AddNumberToObject(root, "top_logprobs", 1);
    cJSON_AddBoolToObject(root, "stream", 0);
    body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return body;
}

struct ks_model_call *ks_model_call_new(const struct ks_provider_cfg *prov,
                                        const struct ks_task *task,
                                        const char *instructions,
                                        uint32_t max_output_tokens,
                                        size_t max_body,
                                        void *opaque,
                                        char *errstr,
                                        size_t errstr_size)
{
    struct ks_model_call *call;
    char url[1024], auth[1024];
    const char *key = NULL;

    if (prov->api_key_env) {
        key = getenv(prov->api_key_env);
        if (!key || !*key) {
            snprintf(errstr, errstr_size,
                     "environment variable %s (the "
                     "provider's api_key_env) is not set",
                     prov->api_key_env);
            return NULL;
        }
    }
    call = ks_xcalloc(1, sizeof(*call));
    call->opaque = opaque;
    call->max_body = max_body;
    ks_buf_init(&call->resp);
    call->anthropic = strcmp(prov->kind, "anthropic") == 0;
    call->body = call->anthropic
                     ? ks_model_anthropic_body(prov, task, instructions,
                                               max_output_tokens)
                     : build_body(prov, task, instructions, max_output_tokens);
    call->easy = curl_easy_init();
    if (!call->body || !call->easy) {
        snprintf(errstr, errstr_size, "out of memory building the request");
        ks_model_call_destroy(call);
        return NULL;
    }
    snprintf(url, sizeof(url), "%s/%s", prov->base_url,
             call->anthropic ? "messages" : "chat/completions");
    call->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (call->anthropic) {
        call->headers =
            curl_slist_append(call->headers, "anthropic-version: 2023-06-01");
    }
    if (key) {
        snprintf(auth, sizeof(auth), "%s%s",
                 call->anthropic ? "x-api-key: " : "Authorization: Bearer ",
                 key);
        call->headers = curl_slist_append(call->headers, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    curl_easy_setopt(call->easy, CURLOPT_URL, url);
    curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(call->easy, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(call->easy, CURLOPT_TIMEOUT_MS, (long)prov->timeout_ms);
    curl_easy_setopt(call->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(call->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(call->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(call->easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(call->easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt(call->easy, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(call->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    return call;
}

CURL *ks_model_call_easy(struct ks_model_call *call)
{
    return call->easy;
}

void *ks_model_call_opaque(const struct ks_model_call *call)
{
    return call->opaque;
}

static enum ks_err transport_err(struct ks_model_call *call,
                                 CURLcode rc,
                                 struct ks_model_reply *reply)
{
    snprintf(reply->detail, sizeof(reply->detail), "%s",
             call->errbuf[0] ? call->errbuf : curl_easy_strerror(rc));
    if (rc == CURLE_WRITE_ERROR && call->overflow) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response body over %zu bytes", call->max_body);
        return KS_ERR_TOO_LARGE;
    }
    return rc == CURLE_OPERATION_TIMEDOUT ? KS_ERR_TIMEOUT : KS_ERR_RETRY;
}

static enum ks_err status_err(long status, struct ks_model_reply *reply)
{
    snprintf(reply->detail, sizeof(reply->detail), "HTTP %ld", status);
    if (status == 429 || status == 408 || status >= 500) {
        return KS_ERR_RETRY;
    }
    return KS_ERR_UPSTREAM;
}

/* Mean log-probability of the answer tokens, when the provider sent
 * choices[0].logprobs.content[].logprob. */
static void read_logprobs(const cJSON *choice, struct ks_model_reply *reply)
{
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(choice, "logprobs");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(lp, "content");
    const cJSON *tok;
    double sum = 0;
    int n = 0;

    cJSON_ArrayForEach(tok, content) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(tok, "logprob");

        if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
            sum += v->valuedouble;
            n++;
        }
    }
    if (n > 0) {
        reply->has_logprobs = true;
        reply->mean_logprob = sum / n;
    }
}

int64_t ks_model_usage_field(const cJSON *usage,
                             const char *name,
                             int64_t estimate)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, name);

    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e12) {
        return (int64_t)v->valuedouble;
    }
    return estimate;
}

static enum ks_err parse_body(struct ks_model_call *call,
                              struct ks_model_reply *reply)
{
    cJSON *root;
    const cJSON *choice, *msg, *content, *finish;
    enum ks_err err = KS_ERR_UPSTREAM;

    if (call->anthropic) {
        err = ks_model_anthropic_parse(call->resp.data, call->resp.len,
                                       (int64_t)strlen(call->body) / 4 + 1,
                                       &call->content, reply);
        reply->content = call->content;
        return err;
    }
    root = cJSON_ParseWithLength(call->resp.data, call->resp.len);
    choice = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!root) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response is not JSON (%zu bytes)", call->resp.len);
        goto out;
    }
    if (!cJSON_IsString(content)) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response has no choices[0].message.content string");
        goto out;
    }
    call->content = ks_xstrdup(content->valuestring);
    reply->content = call->content;
    read_logprobs(choice, reply);
    finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    if (cJSON_IsString(finish)) {
        ks_strlcpy(reply->stop_reason, finish->valuestring,
                   sizeof(reply->stop_reason));
    }
    reply->input_tokens = ks_model_usage_field(
        cJSON_GetObjectItemCaseSensitive(root, "usage"), "prompt_tokens",
        (int64_t)strlen(call->body) / 4 + 1);
    reply->output_tokens = ks_model_usage_field(
        cJSON_GetObjectItemCaseSensitive(root, "usage"), "completion_tokens",
        (int64_t)strlen(call->content) / 4 + 1);
    err = KS_OK;

out:
    cJSON_Delete(root);
    return err;
}

enum ks_err ks_model_call_finish(struct ks_model_call *call,
                                 CURLcode rc,
                                 struct ks_model_reply *reply)
{
    curl_off_t retry_after = -1;

    memset(reply, 0, sizeof(*reply));
    reply->retry_after_ms = -1;
    if (rc != CURLE_OK) {
        reply->err = transport_err(call, rc, reply);
        return reply->err;
    }
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &reply->http_status);
    if (curl_easy_getinfo(call->easy, CURLINFO_RETRY_AFTER, &retry_after) ==
            CURLE_OK &&
        retry_after > 0) {
        reply->retry_after_ms = (int64_t)retry_after * 1000;
    }
    if (reply->http_status != 200) {
        reply->err = status_err(reply->http_status, reply);
        if (call->anthropic) {
            ks_model_anthropic_error(call->resp.data, call->resp.len, reply);
        }
        return reply->err;
    }
    reply->err = parse_body(call, reply);
    return reply->err;
}

void ks_model_call_destroy(struct ks_model_call *call)
{
    if (!call) {
        return;
    }
    if (call->easy) {
        curl_easy_cleanup(call->easy);
    }
    curl_slist_free_all(call->headers);
    cJSON_free(call->body);
    ks_buf_fini(&call->resp);
    free(call->content);
    free(call);
}

int64_t ks_model_cost_micro(const struct ks_provider_cfg *prov,
                            int64_t input_tokens,
                            int64_t output_tokens)
{
    /* USD per million tokens is micro-dollars per token. */
    return llround((double)input_tokens * prov->price_in +
                   (double)output_tokens * prov->price_out);
}
