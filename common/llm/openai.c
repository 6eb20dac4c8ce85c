/*
 * openai.c - request and reply of an OpenAI-compatible chat completion
 * (POST /chat/completions), for model.c.
 *
 * The request carries the task's instructions (or the tier's executor
 * prompt) as the system message, then the task's messages or its input as
 * the user message, and asks for logprobs so confidence can be measured;
 * a call for several answers (agreement's samples) asks for n choices.
 * Usage is taken from the provider when it reports it, else estimated at
 * 4 bytes a token.
 */
#include "llm/openai.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

char *ks_model_openai_body(const struct ks_provider_cfg *prov,
                           const struct ks_task *task,
                           const char *instructions,
                           uint32_t max_output_tokens,
                           unsigned n)
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
    if (n > 1) {
        cJSON_AddNumberToObject(root, "n", n);
    }
    cJSON_AddBoolToObject(root, "logprobs", 1);
    /* llama-cpp-python returns logprobs only when top_logprobs is set. */
    cJSON_AddNumberToObject(root, "top_logprobs", 1);
    cJSON_AddBoolToObject(root, "stream", 0);
    body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return body;
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

/* The content strings of choices[1..] into reply->more. */
static void read_more(const cJSON *choices, struct ks_model_reply *reply)
{
    const cJSON *choice;
    int i = 0;

    cJSON_ArrayForEach(choice, choices) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(choice, "message"), "content");

        if (i++ == 0 || !cJSON_IsString(c) ||
            reply->n_more + 1 >= KS_MODEL_MAX_CHOICES) {
            continue;
        }
        if (!reply->more) {
            reply->more =
                ks_xcalloc(KS_MODEL_MAX_CHOICES - 1, sizeof(*reply->more));
        }
        reply->more[reply->n_more++] = ks_xstrdup(c->valuestring);
    }
}

enum ks_err ks_model_openai_parse(const char *data,
                                  size_t len,
                                  int64_t est_input_tokens,
                                  char **contentp,
                                  struct ks_model_reply *reply)
{
    cJSON *root = cJSON_ParseWithLength(data, len);
    const cJSON *choice, *msg, *content, *finish, *usage;
    enum ks_err err = KS_ERR_UPSTREAM;

    *contentp = NULL;
    choice = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!root) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response is not JSON (%zu bytes)", len);
        goto out;
    }
    if (!cJSON_IsString(content)) {
        snprintf(reply->detail, sizeof(reply->detail),
                 "response has no choices[0].message.content string");
        goto out;
    }
    *contentp = ks_xstrdup(content->valuestring);
    read_more(cJSON_GetObjectItemCaseSensitive(root, "choices"), reply);
    read_logprobs(choice, reply);
    finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    if (cJSON_IsString(finish)) {
        ks_strlcpy(reply->stop_reason, finish->valuestring,
                   sizeof(reply->stop_reason));
    }
    usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    reply->input_tokens =
        ks_model_usage_field(usage, "prompt_tokens", est_input_tokens);
    reply->output_tokens = ks_model_usage_field(
        usage, "completion_tokens", (int64_t)strlen(*contentp) / 4 + 1);
    err = KS_OK;

out:
    cJSON_Delete(root);
    return err;
}
