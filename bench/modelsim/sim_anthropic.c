/*
 * sim_anthropic.c - POST /v1/messages: the Anthropic Messages API over the
 * simulator's chat model.
 *
 * A Messages request is rewritten as the equivalent chat request (its
 * `system` first as a system message, then its messages, max_tokens) and
 * answered by sim_answer_chat(), so both endpoints give the same answer
 * to the same prompt; the completion is then rewritten as a `message`:
 * content[] with one text block, stop_reason end_turn or max_tokens,
 * usage input_tokens / output_tokens.
 *
 * Faults as for chat completions (one draw per request from the shared
 * injector, counted and billed in the shared /stats; the faults after
 * processing go through sim_deliver.c, and a huge body is OpenAI-shaped,
 * as only its size matters), in Anthropic's error shape
 * {"type":"error","error":{"type","message"}}: 429 rate_limit_error with
 * Retry-After: 1, 500 api_error, and the `503` kind answers 529
 * overloaded_error, Anthropic's status for an overloaded API.
 *
 * Like the real API, a request without an `anthropic-version` header gets
 * 400 and one without `x-api-key` gets 401 authentication_error (both
 * counted under "400"), so a client that forgets them fails its tests.
 *
 * Invariant: each complete request counts exactly once in ok or
 * errors[kind] (a shutdown mid-wait counts nowhere), as in sim_chat.c.
 */
#include "sim_anthropic.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/util.h"
#include "sim_answer.h"
#include "sim_deliver.h"
#include "sim_reply.h"

#include "base/banned.h"

#define TAG "modelsim"

#define HTTP_OVERLOADED 529

static char *error_body(const char *type, const char *message)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err;
    char *text;

    cJSON_AddStringToObject(root, "type", "error");
    err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "type", type);
    cJSON_AddStringToObject(err, "message", message);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static enum MHD_Result send_error(struct MHD_Connection *conn,
                                  unsigned int status,
                                  const char *type,
                                  const char *message)
{
    return sim_reply_send(
        conn, status, error_body(type, message), SIM_REPLY_JSON,
        status == MHD_HTTP_TOO_MANY_REQUESTS ? MHD_HTTP_HEADER_RETRY_AFTER
                                             : NULL,
        "1");
}

/* The system prompt: a string, or an array of text blocks. */
static void add_system(cJSON *msgs, const cJSON *system)
{
    cJSON *m;

    if (!cJSON_IsString(system) && !cJSON_IsArray(system)) {
        return;
    }
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddItemToObject(m, "content", cJSON_Duplicate(system, 1));
    cJSON_AddItemToArray(msgs, m);
}

/* The chat request equivalent to a Messages request, or NULL with err. */
static char *to_chat(const char *body, size_t len, char *err, size_t err_size)
{
    cJSON *req = cJSON_ParseWithLength(body, len);
    const cJSON *msgs, *max, *msg;
    cJSON *chat = NULL, *out;
    char *text = NULL;

    msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    max = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
    if (!cJSON_IsObject(req)) {
        snprintf(err, err_size, "the body is not a JSON object");
        goto out;
    }
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        snprintf(err, err_size, "messages: field required (non-empty array)");
        goto out;
    }
    if (!cJSON_IsNumber(max) || max->valuedouble < 1) {
        snprintf(err, err_size, "max_tokens: field required (integer >= 1)");
        goto out;
    }
    cJSON_ArrayForEach(msg, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");

        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "user") != 0 &&
             strcmp(role->valuestring, "assistant") != 0)) {
            snprintf(err, err_size,
                     "messages: each role must be user or assistant");
            goto out;
        }
    }
    chat = cJSON_CreateObject();
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(req, "model"))) {
        cJSON_AddStringToObject(
            chat, "model",
            cJSON_GetObjectItemCaseSensitive(req, "model")->valuestring);
    }
    out = cJSON_AddArrayToObject(chat, "messages");
    add_system(out, cJSON_GetObjectItemCaseSensitive(req, "system"));
    cJSON_ArrayForEach(msg, msgs) {
        cJSON_AddItemToArray(out, cJSON_Duplicate(msg, 1));
    }
    cJSON_AddNumberToObject(chat, "max_tokens", max->valuedouble);
    text = cJSON_PrintUnformatted(chat);
    if (!text) {
        snprintf(err, err_size, "out of memory");
    }
out:
    cJSON_Delete(chat);
    cJSON_Delete(req);
    return text;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

    if (b) {
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    }
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A chat.completion rewritten as a Messages API `message`. */
static char *to_message(const char *completion, uint64_t seq)
{
    cJSON *c = cJSON_Parse(completion);
    const cJSON *choice =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "choices"), 0);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(c, "usage");
    const char *text = str_at(choice, "message", "content");
    const char *finish = str_at(choice, "finish_reason", NULL);
    const char *model = str_at(c, "model", NULL);
    cJSON *m, *blocks, *block, *u;
    char id[48], *out = NULL;

    if (!text) {
        goto out;
    }
    m = cJSON_CreateObject();
    snprintf(id, sizeof(id), "msg_sim_%llu", (unsigned long long)seq);
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "model", model ? model : "");
    blocks = cJSON_AddArrayToObject(m, "content");
    block = cJSON_CreateObject();
    cJSON_AddStringToObject(block, "type", "text");
    cJSON_AddStringToObject(block, "text", text);
    cJSON_AddItemToArray(blocks, block);
    cJSON_AddStringToObject(
        m, "stop_reason",
        finish && strcmp(finish, "length") == 0 ? "max_tokens" : "end_turn");
    cJSON_AddNullToObject(m, "stop_sequence");
    u = cJSON_AddObjectToObject(m, "usage");
    cJSON_AddItemToObject(
        u, "input_tokens",
        cJSON_Duplicate(
            cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens"), 1));
    cJSON_AddItemToObject(
        u, "output_tokens",
        cJSON_Duplicate(
            cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens"), 1));
    out = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
out:
    cJSON_Delete(c);
    return out;
}

/* The message for a request; KS_ERR_INVALID with err for a 400. */
static enum ks_err answer(struct sim_chat *chat,
                          const char *body,
                          size_t len,
                          uint64_t seq,
                          char **out,
                          struct sim_answer_info *info,
                          char *err,
                          size_t err_size)
{
    char *chat_body = to_chat(body, len, err, err_size);
    char *completion = NULL;
    enum ks_err rc;

    *out = NULL;
    if (!chat_body) {
        return KS_ERR_INVALID;
    }
    rc = sim_answer_chat(chat_body, strlen(chat_body), &chat->cfg->answer, seq,
                         &completion, info);
    if (rc == KS_ERR_INVALID) {
        /* Its OpenAI error body carries the reason. */
        cJSON *e = cJSON_Parse(completion);
        const char *msg = str_at(e, "error", "message");

        snprintf(err, err_size, "%s", msg ? msg : "invalid request");
        cJSON_Delete(e);
    } else if (rc == KS_OK) {
        *out = to_message(completion, seq);
        rc = *out ? KS_OK : KS_ERR_NOMEM;
    }
    free(completion);
    cJSON_free(chat_body);
    return rc;
}

static enum MHD_Result reply_normal(struct sim_chat *chat,
                                    struct MHD_Connection *conn,
                                    const char *body,
                                    size_t len,
                                    const struct sim_draw *draw,
                                    int64_t start_ms)
{
    struct sim_answer_info info;
    char err[256], *out;
    enum ks_err rc;

    if (!MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     "anthropic-version")) {
        sim_chat_count_error(chat, SIM_KIND_400);
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request_error",
                          "anthropic-version: header is required");
    }
    if (!MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key")) {
        sim_chat_count_error(chat, SIM_KIND_400);
        return send_error(conn, MHD_HTTP_UNAUTHORIZED, "authentication_error",
                          "x-api-key header is required");
    }
    rc = answer(chat, body, len, draw->seq, &out, &info, err, sizeof(err));

    if (rc == KS_ERR_INVALID) {
        sim_chat_count_error(chat, SIM_KIND_400);
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request_error",
                          err);
    }
    if (rc != KS_OK) {
        sim_chat_count_error(chat, SIM_KIND_500);
        return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "api_error",
                          "out of memory");
    }
    sim_chat_bill(chat, &info);
    if (sim_deliver_handles(draw->kind)) {
        sim_chat_count_error(chat, draw->kind);
        return sim_deliver_fault(chat, conn, draw->kind, out, start_ms);
    }
    if (draw->kind == SIM_KIND_MALFORMED) {
        out[strlen(out) / 2] = '\0';
        sim_chat_count_error(chat, SIM_KIND_MALFORMED);
    } else {
        atomic_fetch_add(&chat->stats.ok, 1);
    }
    return sim_reply_send(conn, MHD_HTTP_OK, out, SIM_REPLY_JSON, NULL, NULL);
}

enum MHD_Result sim_anthropic_reply(struct sim_chat *chat,
                                    struct MHD_Connection *conn,
                                    const char *body,
                                    size_t len,
                                    int64_t start_ms)
{
    struct sim_draw draw = sim_fault_draw(&chat->fault);
    int64_t delay = chat->cfg->latency_ms;

    ks_log_debug(TAG, "messages #%llu: %zu bytes, fate %s",
                 (unsigned long long)draw.seq, len, sim_kind_name(draw.kind));
    if (body == NULL) {
        body = "";
    }
    if (draw.kind == SIM_KIND_HANG) {
        sim_chat_count_error(chat, SIM_KIND_HANG);
        sim_chat_wait_until(chat, start_ms + chat->cfg->hang_ms);
        return MHD_NO;
    }
    if (chat->cfg->jitter_ms > 0) {
        delay +=
            (int64_t)(draw.jitter_bits % (uint64_t)(chat->cfg->jitter_ms + 1));
    }
    if (!sim_chat_wait_until(chat, start_ms + delay)) {
        return MHD_NO;
    }
    switch (draw.kind) {
    case SIM_KIND_NONE:
    case SIM_KIND_MALFORMED:
    case SIM_KIND_RESET:
    case SIM_KIND_RST:
    case SIM_KIND_TIMEOUT:
    case SIM_KIND_TRUNCATED:
    case SIM_KIND_HUGE:
        return reply_normal(chat, conn, body, len, &draw, start_ms);
    case SIM_KIND_429:
        sim_chat_count_error(chat, SIM_KIND_429);
        return send_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limit_error",
                          "rate limit reached (simulated)");
    case SIM_KIND_503:
        sim_chat_count_error(chat, SIM_KIND_503);
        return send_error(conn, HTTP_OVERLOADED, "overloaded_error",
                          "the API is overloaded (simulated)");
    default:
        sim_chat_count_error(chat, SIM_KIND_500);
        return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "api_error",
                          "internal error (simulated)");
    }
}
