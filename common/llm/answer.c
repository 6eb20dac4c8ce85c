/*
 * answer.c - how sure is an answer? (docs/design.md section 6)
 *
 * In this order: an answer that sets "escalate": true has confidence 0
 * (the model says it is out of its lane; the flag can only escalate);
 * with an output_schema, an answer that is not JSON or fails the schema
 * has confidence 0 (source "schema"); else the mean token probability
 * from logprobs (source "logprob"), lowered to a "confidence" number the
 * JSON answer reports when that is lower (source "self_report"); without
 * logprobs the reported number as is; else there is no signal
 * (confidence -1), and such an answer never escalates. A tier with
 * self_report false ignores the reported number. Text the task carries
 * can make the model say anything, so what it says can only lower the
 * confidence the tokens give, never raise it. A JSON answer wrapped in a
 * Markdown code fence is read without the fence.
 */
#include "llm/answer.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "wire/schema.h"

#include "base/banned.h"

/* The answer text without surrounding blanks and a ``` fence. */
static char *unfenced(const char *content)
{
    const char *s = content, *e = content + strlen(content);
    const char *nl;

    while (s < e && (unsigned char)*s <= ' ') {
        s++;
    }
    while (e > s && (unsigned char)e[-1] <= ' ') {
        e--;
    }
    if (e - s >= 6 && strncmp(s, "```", 3) == 0 &&
        strncmp(e - 3, "```", 3) == 0 &&
        (nl = memchr(s, '\n', (size_t)(e - s)))) {
        s = nl + 1;
        e -= 3;
        while (e > s && (unsigned char)e[-1] <= ' ') {
            e--;
        }
    }
    return ks_xstrndup(s, (size_t)(e - s));
}

static void set(struct ks_answer *a,
                double conf,
                const char *source,
                const char *reason)
{
    a->confidence = conf;
    a->source = source;
    a->reason = reason;
}

/* The answer checked against the task's output_schema. Returns true when
 * it passes (or there is no schema). */
static bool schema_ok(const struct ks_task *task,
                      const cJSON *json,
                      struct ks_answer *a)
{
    cJSON *schema;
    char why[256];
    int rc;

    if (!task->output_schema) {
        return true;
    }
    if (!json) {
        set(a, 0, "schema", "not_json");
        return false;
    }
    schema = cJSON_Parse(task->output_schema);
    rc = ks_schema_check(schema, json, why, sizeof(why));
    cJSON_Delete(schema);
    if (rc != 0) {
        set(a, 0, "schema", "schema");
        return false;
    }
    return true;
}

/* The self-reported confidence of json (an object), or -1. */
static double reported(const cJSON *json)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "confidence");

    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1) {
        return v->valuedouble;
    }
    return -1;
}

void ks_answer_judge(const struct ks_task *task,
                     const struct ks_model_reply *reply,
                     bool self_report,
                     struct ks_answer *a)
{
    char *text = unfenced(reply->content ? reply->content : "");
    cJSON *json = (text[0] == '{' || text[0] == '[') ? cJSON_Parse(text) : NULL;
    double self = -1;
    const cJSON *v;

    memset(a, 0, sizeof(*a));
    set(a, -1, NULL, "ok");
    a->logprob = reply->has_logprobs ? exp(reply->mean_logprob) : -1;
    a->self_report = -1;
    a->output = ks_xstrdup(reply->content ? reply->content : "");
    /* The flag can only lower: it is honoured even with self_report off. */
    if (cJSON_IsObject(json) &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "escalate"))) {
        set(a, 0, "self_report", "escalate_flag");
        a->decided = true;
        goto out;
    }
    if (!schema_ok(task, json, a)) {
        a->decided = true;
        goto out;
    }
    if (json && task->output_schema) {
        free(a->output);
        a->output = ks_xstrdup(text); /* the JSON itself, unfenced */
    }
    if (cJSON_IsObject(json)) {
        v = cJSON_GetObjectItemCaseSensitive(json, "answer");
        if (!task->output_schema && cJSON_IsString(v)) {
            free(a->output);
            a->output = ks_xstrdup(v->valuestring);
        }
        self = self_report ? reported(json) : -1;
        a->self_report = self;
    }
    /* The model's words are the task's words too (prompt injection): a
     * reported confidence may lower what the tokens say, never raise it. */
    if (reply->has_logprobs) {
        double lp = exp(reply->mean_logprob);

        if (self >= 0 && self < lp) {
            set(a, self, "self_report", "ok");
        } else {
            set(a, lp, "logprob", "ok");
        }
    } else if (self >= 0) {
        set(a, self, "self_report", "ok");
    }
out:
    cJSON_Delete(json);
    free(text);
}

void ks_answer_fini(struct ks_answer *a)
{
    free(a->output);
    a->output = NULL;
}
