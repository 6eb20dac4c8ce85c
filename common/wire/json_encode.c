/*
 * json_encode.c - the JSON form of the envelopes, written with cJSON.
 *
 * Output is compact. A Task carries only its present fields; a Result and
 * an Escalation carry every field of docs/design.md section 4, null where
 * absent. Numbers are raw text we format ourselves: integers exactly,
 * money as decimal USD from integer micro-dollars ("0.000012"), doubles as
 * the shortest text that reads back as the same double (cJSON's own
 * printer can lose the last bit). output_schema is already compact JSON
 * text (decoding guarantees it) and is written as is.
 */
#include "wire/codec.h"
/* the module header stays first: it must stand alone */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "wire/codec_internal.h"

#include "base/banned.h"

/* Builder state: the first failed allocation sets nomem, later calls on a
 * NULL parent fail harmlessly, and the finish step reports it once. */
struct jenc {
    bool nomem;
};

static void put(struct jenc *je, const cJSON *added)
{
    if (!added) {
        je->nomem = true;
    }
}

/* A string, or null when s is NULL. */
static void put_str(struct jenc *je,
                    cJSON *obj,
                    const char *name,
                    const char *s)
{
    put(je, s ? cJSON_AddStringToObject(obj, name, s)
              : cJSON_AddNullToObject(obj, name));
}

/* A string, left out when s is NULL. */
static void put_opt_str(struct jenc *je,
                        cJSON *obj,
                        const char *name,
                        const char *s)
{
    if (s) {
        put(je, cJSON_AddStringToObject(obj, name, s));
    }
}

static void put_int(struct jenc *je, cJSON *obj, const char *name, int64_t v)
{
    char num[CODEC_NUM_MAX];

    snprintf(num, sizeof(num), "%" PRId64, v);
    put(je, cJSON_AddRawToObject(obj, name, num));
}

static void put_money(struct jenc *je,
                      cJSON *obj,
                      const char *name,
                      int64_t micro)
{
    char num[CODEC_NUM_MAX];

    codec_money_text(micro, num);
    put(je, cJSON_AddRawToObject(obj, name, num));
}

/* A confidence, or null when unset (< 0). */
static void put_confidence(struct jenc *je, cJSON *obj, double v)
{
    char num[CODEC_NUM_MAX];

    if (v < 0) {
        put(je, cJSON_AddNullToObject(obj, "confidence"));
        return;
    }
    codec_double_text(v, num);
    put(je, cJSON_AddRawToObject(obj, "confidence", num));
}

static void put_metadata(struct jenc *je,
                         cJSON *obj,
                         const struct ks_kv *kv,
                         size_t n)
{
    cJSON *md = cJSON_AddObjectToObject(obj, "metadata");

    put(je, md);
    for (size_t i = 0; i < n; i++) {
        put_str(je, md, kv[i].key, kv[i].value);
    }
}

/* Prints root (and frees it) into *bufp, or reports NOMEM. */
static enum ks_err json_finish(struct jenc *je,
                               cJSON *root,
                               char **bufp,
                               size_t *lenp)
{
    char *text = NULL;

    if (root && !je->nomem) {
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    if (!text) {
        return KS_ERR_NOMEM;
    }
    *bufp = text; /* cJSON allocates with malloc: no hooks in kascade */
    *lenp = strlen(text);
    return KS_OK;
}

static bool hints_present(const struct ks_hints *h)
{
    return h->min_tier || h->max_tier || h->local_only ||
           h->risk != KS_RISK_UNSET || h->latency != KS_LATENCY_UNSET ||
           h->max_cost_micro >= 0 || h->max_output_tokens > 0;
}

static void put_hints(struct jenc *je, cJSON *root, const struct ks_hints *h)
{
    cJSON *obj = cJSON_AddObjectToObject(root, "hints");

    put(je, obj);
    put_opt_str(je, obj, "min_tier", h->min_tier);
    put_opt_str(je, obj, "max_tier", h->max_tier);
    if (h->local_only) {
        put(je, cJSON_AddTrueToObject(obj, "local_only"));
    }
    put_opt_str(je, obj, "risk", codec_risk_str(h->risk));
    put_opt_str(je, obj, "latency", codec_latency_str(h->latency));
    if (h->max_cost_micro >= 0) {
        put_money(je, obj, "max_cost_usd", h->max_cost_micro);
    }
    if (h->max_output_tokens > 0) {
        put_int(je, obj, "max_output_tokens", h->max_output_tokens);
    }
}

static void put_messages(struct jenc *je,
                         cJSON *root,
                         const struct ks_task *task)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "messages"), *obj;

    put(je, arr);
    for (size_t i = 0; i < task->n_messages && arr; i++) {
        obj = cJSON_CreateObject();
        put(je, obj);
        if (obj && !cJSON_AddItemToArray(arr, obj)) {
            cJSON_Delete(obj);
            obj = NULL;
            je->nomem = true;
        }
        put_str(je, obj, "role", task->messages[i].role);
        put_str(je, obj, "content", task->messages[i].content);
    }
}

enum ks_err codec_json_task_encode(const struct ks_task *task,
                                   char **bufp,
                                   size_t *lenp)
{
    struct jenc je = {false};
    cJSON *root = cJSON_CreateObject();

    put_opt_str(&je, root, "id", task->id);
    put_opt_str(&je, root, "type", task->type);
    put_opt_str(&je, root, "tenant", task->tenant);
    put_opt_str(&je, root, "input", task->input);
    if (task->n_messages > 0) {
        put_messages(&je, root, task);
    }
    put_opt_str(&je, root, "instructions", task->instructions);
    if (task->output_schema) {
        put(&je,
            cJSON_AddRawToObject(root, "output_schema", task->output_schema));
    }
    if (hints_present(&task->hints)) {
        put_hints(&je, root, &task->hints);
    }
    put_opt_str(&je, root, "reply_to", task->reply_to);
    if (task->n_metadata > 0) {
        put_metadata(&je, root, task->metadata, task->n_metadata);
    }
    return json_finish(&je, root, bufp, lenp);
}

static void put_attempt(struct jenc *je, cJSON *arr, const struct ks_attempt *a)
{
    cJSON *obj = cJSON_CreateObject();

    put(je, obj);
    if (obj && !cJSON_AddItemToArray(arr, obj)) {
        cJSON_Delete(obj);
        obj = NULL;
        je->nomem = true;
    }
    put_str(je, obj, "tier", a->tier);
    put_str(je, obj, "model", a->model);
    put_confidence(je, obj, a->confidence);
    put_str(je, obj, "decision", a->decision);
    put_str(je, obj, "reason", a->reason);
    put_money(je, obj, "cost_usd", a->cost_micro);
    put_int(je, obj, "latency_ms", a->latency_ms);
}

/* Every field of the Result of docs/design.md section 4, null where absent. */
enum ks_err codec_json_result_encode(const struct ks_result *result,
                                     char **bufp,
                                     size_t *lenp)
{
    struct jenc je = {false};
    cJSON *root = cJSON_CreateObject(), *usage, *path;

    put_str(&je, root, "id", result->id);
    put_str(&je, root, "type", result->type);
    put_str(&je, root, "tenant", result->tenant);
    put_str(&je, root, "status", ks_status_str(result->status));
    put_str(&je, root, "output", result->output);
    put_str(&je, root, "tier", result->tier);
    put_str(&je, root, "model", result->model);
    put_confidence(&je, root, result->confidence);
    put_str(&je, root, "confidence_source", result->confidence_source);
    put_money(&je, root, "cost_usd", result->cost_micro);
    usage = cJSON_AddObjectToObject(root, "usage");
    put(&je, usage);
    put_int(&je, usage, "input_tokens", result->input_tokens);
    put_int(&je, usage, "output_tokens", result->output_tokens);
    put_int(&je, root, "latency_ms", result->latency_ms);
    path = cJSON_AddArrayToObject(root, "path");
    put(&je, path);
    for (size_t i = 0; i < result->n_path && path; i++) {
        put_attempt(&je, path, &result->path[i]);
    }
    put_str(&je, root, "error", result->error);
    put_metadata(&je, root, result->metadata, result->n_metadata);
    if (root && !codec_parts_json_encode(root, result)) {
        je.nomem = true;
    }
    return json_finish(&je, root, bufp, lenp);
}

enum ks_err codec_json_escalation_encode(const struct ks_escalation *esc,
                                         char **bufp,
                                         size_t *lenp)
{
    struct jenc je = {false};
    cJSON *root = cJSON_CreateObject();

    put_str(&je, root, "id", esc->id);
    put_str(&je, root, "tenant", esc->tenant);
    put_str(&je, root, "from_tier", esc->from_tier);
    put_int(&je, root, "hop", esc->hop);
    put_str(&je, root, "reason", esc->reason);
    put_confidence(&je, root, esc->confidence);
    put_str(&je, root, "context_key", esc->context_key);
    put_money(&je, root, "cost_so_far_usd", esc->cost_so_far_micro);
    return json_finish(&je, root, bufp, lenp);
}
