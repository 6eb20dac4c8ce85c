/*
 * anthropic.c - request and reply of the Anthropic Messages API
 * (POST /v1/messages, anthropic-version 2023-06-01), for model.c.
 *
 * The Messages API has no system role inside `messages`: the system
 * prompt is the top-level `system` string, so system messages of a task
 * are appended to it. Roles other than user and assistant become user
 * turns (the API merges consecutive turns of one role). Replies carry a
 * list of content blocks; the text blocks are joined in order and any
 * other block (tool_use, thinking) is ignored. There are no logprobs.
 */
#include "llm/anthropic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"

#include "base/banned.h"

static void add_turn(cJSON *msgs, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();

    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    cJSON_AddItemToArray(msgs, m);
}

/* The system prompt: the instructions, then each system message. */
static void build_system(struct ks_buf *sys,
                         const struct ks_task *task,
                         const char *instructions)
{
    const char *base = task->instructions ? task->instructions : instructions;

    if (base) {
        ks_buf_append(sys, base, strlen(base));
    }
    for (size_t i = 0; i < task->n_messages; i++) {
        const char *c = task->messages[i].content;

        if (strcmp(task->messages[i].role, "system") != 0) {
            continue;
        }
        if (sys->len > 0) {
            ks_buf_append(sys, "\n\n", 2);
        }
        ks_buf_append(sys, c, strlen(c));
    }
}

char *ks_model_anthropic_body(const struct ks_provider_cfg *prov,
                              const struct ks_task *task,
                              const char *instructions,
                              uint32_t max_output_tokens)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *msgs;
    struct ks_buf sys;
    char *body;

    ks_buf_init(&sys);
    build_system(&sys, task, instructions);
    cJSON_AddStringToObject(root, "model", prov->model);
    cJSON_AddNumberToObject(root, "max_tokens", max_output_tokens);
    if (sys.len > 0) {
        cJSON_AddStringToObject(root, "system", sys.data);
    }
    msgs = cJSON_AddArrayToObject(root, "messages");
    for (size_t i = 0; i < task->n_messages; i++) {
        const char *role = task->messages[i].role;

        if (strcmp(role, "system") == 0) {
            continue;
        }
        add_turn(msgs, strcmp(role, "assistant") == 0 ? "assistant" : "user",
                 task->messages[i].content);
    }
    if (task->input) {
        add_turn(msgs, "user", task->input);
    }
    cJSON_AddBoolToObject(root, "stream", 0);
    body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    ks_buf_fini(&sys);
    return body;
}

enum ks_err ks_model_anthropic_parse(const char *data,
                                     size_t len,
                                     int64_t est_input_tokens,
                                     char **contentp,
                                     struct ks_model_reply *reply)
{
    cJSON *root = cJSON_ParseWithLength(data, len);
    const cJSON *content, *block, *usage, *stop;
    enum ks_err err = KS_ERR_UPSTREAM;
    struct ks_buf text;
    int n_text = 0;

    ks_buf_init(&text);
    *contentp = NULL;
    if (!root) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response is not JSON (%zu bytes)", len);
        goto out;
    }
    content = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (!cJSON_IsArray(content)) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response has no content[] array");
        goto out;
    }
    cJSON_ArrayForEach(block, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(block, "type");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(block, "text");

        if (cJSON_IsString(type) && strcmp(type->valuestring, "text") == 0 &&
            cJSON_IsString(t)) {
            ks_buf_append(&text, t->valuestring, strlen(t->valuestring));
            n_text++;
        }
    }
    if (n_text == 0) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response has no text block in content[]");
        goto out;
    }
    *contentp = ks_buf_take(&text);
    usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    reply->input_tokens =
        ks_model_usage_field(usage, "input_tokens", est_input_tokens);
    reply->output_tokens = ks_model_usage_field(
        usage, "output_tokens", (int64_t)strlen(*contentp) / 4 + 1);
    stop = cJSON_GetObjectItemCaseSensitive(root, "stop_reason");
    if (cJSON_IsString(stop)) {
        ks_strlcpy(reply->stop_reason, stop->valuestring,
                   sizeof(reply->stop_reason));
    }
    err = KS_OK;

out:
    ks_buf_fini(&text);
    cJSON_Delete(root);
    return err;
}

void ks_model_anthropic_error(const char *data,
                              size_t len,
                              struct ks_model_reply *reply)
{
    cJSON *root = cJSON_ParseWithLength(data, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "error"), "type");
    size_t n = strlen(reply->detail);

    if (cJSON_IsString(type) && n + 2 < sizeof(reply->detail)) {
        snprintf(reply->detail + n, sizeof(reply->detail) - n, " %.64s",
                 type->valuestring);
    }
    cJSON_Delete(root);
}
