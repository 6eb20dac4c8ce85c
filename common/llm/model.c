/*
 * model.c - the HTTP side of every provider kind: the easy handle, its
 * headers, the capped response body and the mapping of transport and
 * status errors. The dialects build the bodies and parse the replies
 * (openai.c, anthropic.c).
 */
#include "llm/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"
#include "llm/anthropic.h"
#include "llm/openai.h"

#include "base/banned.h"

struct ks_model_call {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct ks_buf resp;
    size_t max_body;
    bool overflow;
    char *content;
    struct ks_model_reply more; /* owns the other choices (more, n_more) */
    bool anthropic;             /* kind "anthropic": the Messages API */
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

struct ks_model_call *ks_model_call_new(const struct ks_provider_cfg *prov,
                                        const struct ks_task *task,
                                        const char *instructions,
                                        uint32_t max_output_tokens,
                                        unsigned n,
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
    call->body =
        call->anthropic
            ? ks_model_anthropic_body(prov, task, instructions,
                                      max_output_tokens)
            : ks_model_openai_body(prov, task, instructions, max_output_tokens,
                                   prov->supports_n ? n : 1);
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
    int64_t est_input = (int64_t)strlen(call->body) / 4 + 1;
    enum ks_err err;

    if (call->anthropic) {
        err = ks_model_anthropic_parse(call->resp.data, call->resp.len,
                                       est_input, &call->content, reply);
    } else {
        err = ks_model_openai_parse(call->resp.data, call->resp.len, est_input,
                                    &call->content, reply);
    }
    reply->content = call->content;
    call->more.more = reply->more; /* freed with the call */
    call->more.n_more = reply->n_more;
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

void ks_model_reply_free_more(struct ks_model_reply *reply)
{
    for (size_t i = 0; i < reply->n_more; i++) {
        free(reply->more[i]);
    }
    free(reply->more);
    reply->more = NULL;
    reply->n_more = 0;
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
    ks_model_reply_free_more(&call->more);
    free(call);
}
