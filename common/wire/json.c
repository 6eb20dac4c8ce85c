/*
 * json.c - decoding the JSON form of the envelopes.
 *
 * The envelopes are parsed by jparse.c into one flat array of nodes (one
 * allocation for the strings, the nodes on the stack for a small
 * envelope), which refuses nesting deeper than max_depth, a NUL in a
 * string (raw or \u0000) and bytes after the value, with the decisions
 * and error offsets cJSON gave before. cJSON remains for the text of an
 * output_schema: its compact form is cJSON's print of the object, from
 * the JSON envelope or from protobuf's output_schema string.
 *
 * Each object is read in one pass over its keys against a table of its
 * fields (name, kind, offset into the struct): an unknown key or a key
 * given twice is refused, JSON null counts as absent, and each value is
 * type-checked and converted by its kind. Nested objects and arrays are
 * read by their own functions. Format-independent checks follow in
 * decode.c.
 */
#include "wire/codec.h"
/* the module header stays first: it must stand alone */

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "wire/codec_internal.h"
#include "wire/jparse.h"

#include "base/banned.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Parses an envelope into doc: a JSON object within the caps. */
static enum ks_err json_parse_envelope(const char *buf,
                                       size_t len,
                                       const struct ks_codec_limits *lim,
                                       struct jdoc *doc,
                                       struct ks_codec_error *cerr)
{
    size_t where;

    switch (jparse(doc, buf, len, lim->max_depth, &where)) {
    case JPARSE_OK:
        break;
    case JPARSE_TOO_DEEP:
        return codec_too_large(cerr, NULL, "JSON nested deeper than %d",
                               lim->max_depth);
    case JPARSE_HAS_NUL:
        return codec_invalid(cerr, NULL, "a string holds a NUL byte (\\u0000)");
    case JPARSE_NOMEM:
        return codec_nomem(cerr);
    default:
        return codec_undecodable(cerr, "not JSON: syntax error at byte %zu",
                                 where);
    }
    if (jdoc_root(doc)->type != JT_OBJECT) {
        jdoc_fini(doc);
        return codec_invalid(cerr, NULL, "envelope must be a JSON object");
    }
    return KS_OK;
}

/* ---- table-driven field reading ---- */

enum jkind {
    J_NESTED = 0, /* an object or array read by its own function */
    J_STR,        /* char *, a heap copy */
    J_TEXT,       /* char *, pointing into the document's strings, which
                     the decoded task takes over (ks_task.strings) */
    J_RISK,       /* enum ks_risk from "low"/"high" */
    J_LATENCY,    /* enum ks_latency from "batch"/"interactive" */
    J_STATUS,     /* enum ks_status from its wire name */
    J_BOOL,       /* bool */
    J_MONEY,      /* int64_t micro-dollars from decimal USD */
    J_CONFIDENCE, /* double in [0, 1] */
    J_COUNT,      /* int64_t in [0, CODEC_MAX_COUNT] */
    J_TOKENS,     /* uint32_t in [0, CODEC_MAX_OUTPUT_TOKENS] */
    J_HOP,        /* uint32_t */
};

struct jfield {
    const char *name;
    enum jkind kind;
    size_t off; /* of the member in the struct being filled */
};

#define JF(type, member, kind)                                                 \
    {                                                                          \
#member, kind, offsetof(type, member)                                  \
    }
#define JNESTED(name)                                                          \
    {                                                                          \
        name, J_NESTED, 0                                                      \
    }

/* A whole number in [0, max] into *out; JSON has no integers, so 3.0 is
 * fine and 3.5 is not. */
static enum ks_err jwhole(const char *path,
                          double v,
                          int64_t max,
                          int64_t *out,
                          struct ks_codec_error *cerr)
{
    if (!(v >= 0 && v <= (double)max && v == floor(v))) {
        return codec_bad_integer(path, max, cerr);
    }
    *out = (int64_t)v;
    return KS_OK;
}

static enum ks_err jread_number(const struct jnode *item,
                                const char *path,
                                enum jkind kind,
                                void *p,
                                struct ks_codec_error *cerr)
{
    int64_t whole = 0;
    enum ks_err err;
    double v;

    if (item->type != JT_NUMBER) {
        return codec_invalid(cerr, path, "must be a number");
    }
    v = item->u.num;
    switch (kind) {
    case J_MONEY:
        return codec_money(path, v, p, cerr);
    case J_CONFIDENCE:
        return codec_confidence(path, v, p, cerr);
    case J_COUNT:
        return jwhole(path, v, CODEC_MAX_COUNT, p, cerr);
    default: /* J_TOKENS, J_HOP: uint32_t members */
        err = jwhole(path, v,
                     kind == J_TOKENS ? CODEC_MAX_OUTPUT_TOKENS : UINT32_MAX,
                     &whole, cerr);
        *(uint32_t *)p = (uint32_t)whole;
        return err;
    }
}

/* Reads one present, non-null value into the member at p. */
static enum ks_err jread(const struct jdoc *doc,
                         const struct jnode *item,
                         const char *path,
                         enum jkind kind,
                         void *p,
                         struct ks_codec_error *cerr)
{
    if (kind == J_NESTED) {
        return KS_OK;
    }
    if (kind == J_BOOL) {
        if (item->type != JT_TRUE && item->type != JT_FALSE) {
            return codec_invalid(cerr, path, "must be true or false");
        }
        *(bool *)p = item->type == JT_TRUE;
        return KS_OK;
    }
    if (kind > J_BOOL) {
        return jread_number(item, path, kind, p, cerr);
    }
    if (item->type != JT_STRING) {
        return codec_invalid(cerr, path, "must be a string");
    }
    switch (kind) {
    case J_RISK:
        return codec_parse_risk(jnode_str(doc, item), p, cerr);
    case J_LATENCY:
        return codec_parse_latency(jnode_str(doc, item), p, cerr);
    case J_STATUS:
        return codec_parse_status_field(jnode_str(doc, item), p, cerr);
    case J_TEXT:
        *(char **)p = (char *)(uintptr_t)jnode_str(doc, item);
        return KS_OK;
    default:
        *(char **)p = ks_xstrdup(jnode_str(doc, item));
        return KS_OK;
    }
}

/* Reads the fields of obj into dst, refusing unknown keys and keys given
 * twice. prefix names obj in error details ("" for the envelope). */
static enum ks_err jfields(const struct jdoc *doc,
                           const struct jnode *obj,
                           const char *prefix,
                           const struct jfield *fields,
                           size_t n,
                           void *dst,
                           struct ks_codec_error *cerr)
{
    char path[CODEC_PATH_MAX];
    uint32_t seen = 0;
    enum ks_err err;
    const char *key;
    size_t i;

    JNODE_FOREACH(doc, item, obj)
    {
        key = jnode_key(doc, item);
        i = 0;
        while (i < n && (key[0] != fields[i].name[0] ||
                         strcmp(key, fields[i].name) != 0)) {
            i++;
        }
        if (i == n) {
            return codec_invalid(
                cerr, codec_path(path, sizeof(path), prefix, key), "unknown");
        }
        if (seen & (UINT32_C(1) << i)) {
            return codec_invalid(cerr,
                                 codec_path(path, sizeof(path), prefix, key),
                                 "given twice");
        }
        seen |= UINT32_C(1) << i;
        if (item->type == JT_NULL) {
            continue;
        }
        /* The field's path names it only in an error: built then, and the
         * value read again for the detail (a read that fails has written
         * nothing the caller keeps). Most fields read fine, and building
         * every path was a tenth of a small task's decoding. */
        err = jread(doc, item, NULL, fields[i].kind,
                    (char *)dst + fields[i].off, cerr);
        if (err != KS_OK) {
            codec_path(path, sizeof(path), prefix, key);
            return jread(doc, item, path, fields[i].kind,
                         (char *)dst + fields[i].off, cerr);
        }
    }
    return KS_OK;
}

/* The item of a field, NULL when absent or JSON null. */
static const struct jnode *jget(const struct jdoc *doc,
                                const struct jnode *obj,
                                const char *name)
{
    const struct jnode *item = jnode_get(doc, obj, name);

    return item && item->type == JT_NULL ? NULL : item;
}

/* A top-level object (JT_OBJECT) or array field; *out NULL if absent.
 * *n is the number of entries, refused when over cap. */
static enum ks_err jcontainer(const struct jdoc *doc,
                              const struct jnode *root,
                              const char *name,
                              enum jtype type,
                              size_t cap,
                              const struct jnode **out,
                              size_t *n,
                              struct ks_codec_error *cerr)
{
    const struct jnode *item = jget(doc, root, name);

    *out = NULL;
    *n = 0;
    if (!item) {
        return KS_OK;
    }
    if (item->type != type) {
        return codec_invalid(cerr, name,
                             type == JT_OBJECT ? "must be an object"
                                               : "must be an array");
    }
    *out = item;
    *n = item->u.kids.count;
    return codec_check_count(name, *n, cap, cerr);
}

/* Reads the entries of an array of objects into elems (n of elem_size
 * bytes each), naming each "<name>[i]". */
static enum ks_err jentries(const struct jdoc *doc,
                            const struct jnode *arr,
                            const char *name,
                            const struct jfield *fields,
                            size_t n_fields,
                            void *elems,
                            size_t elem_size,
                            struct ks_codec_error *cerr)
{
    char prefix[CODEC_PATH_MAX];
    enum ks_err err;
    size_t i = 0;

    JNODE_FOREACH(doc, item, arr)
    {
        snprintf(prefix, sizeof(prefix), "%s[%zu]", name, i);
        if (item->type != JT_OBJECT) {
            return codec_invalid(cerr, prefix, "must be an object");
        }
        err = jfields(doc, item, prefix, fields, n_fields,
                      (char *)elems + i * elem_size, cerr);
        if (err != KS_OK) {
            return err;
        }
        i++;
    }
    return KS_OK;
}

static enum ks_err json_metadata(const struct jdoc *doc,
                                 const struct jnode *root,
                                 const struct ks_codec_limits *lim,
                                 struct ks_kv **kvp,
                                 size_t *np,
                                 struct ks_codec_error *cerr)
{
    char path[CODEC_PATH_MAX];
    const struct jnode *obj;
    struct ks_kv *kv;
    size_t n, i = 0;
    enum ks_err err;

    err = jcontainer(doc, root, "metadata", JT_OBJECT, lim->max_metadata, &obj,
                     &n, cerr);
    if (err != KS_OK || n == 0) {
        return err;
    }
    *kvp = kv = ks_xcalloc(n, sizeof(*kv));
    *np = n;
    JNODE_FOREACH(doc, item, obj)
    {
        if (item->type != JT_STRING) {
            codec_path(path, sizeof(path), "metadata", jnode_key(doc, item));
            return codec_invalid(cerr, path, "must be a string");
        }
        kv[i].key = ks_xstrdup(jnode_key(doc, item));
        kv[i].value = ks_xstrdup(jnode_str(doc, item));
        i++;
    }
    return KS_OK;
}

/* ---- Task ---- */

static const struct jfield hint_fields[] = {
    JF(struct ks_hints, min_tier, J_TEXT),
    JF(struct ks_hints, max_tier, J_TEXT),
    JF(struct ks_hints, local_only, J_BOOL),
    JF(struct ks_hints, risk, J_RISK),
    JF(struct ks_hints, latency, J_LATENCY),
    {"max_cost_usd", J_MONEY, offsetof(struct ks_hints, max_cost_micro)},
    JF(struct ks_hints, max_output_tokens, J_TOKENS),
};

static const struct jfield message_fields[] = {
    JF(struct ks_chat_message, role, J_TEXT),
    JF(struct ks_chat_message, content, J_TEXT),
};

static const struct jfield task_fields[] = {
    JF(struct ks_task, id, J_TEXT),
    JF(struct ks_task, type, J_TEXT),
    JF(struct ks_task, tenant, J_TEXT),
    JF(struct ks_task, input, J_TEXT),
    JNESTED("messages"),
    JF(struct ks_task, instructions, J_TEXT),
    JNESTED("output_schema"),
    JNESTED("hints"),
    JF(struct ks_task, reply_to, J_TEXT),
    JNESTED("metadata"),
};

/* The compact text of the object at item: cJSON's print of it, as the
 * codec has always written an output_schema (jparse has checked the text;
 * only a schema pays for a cJSON tree). */
static enum ks_err json_compact(const char *buf,
                                const struct jnode *item,
                                char **out,
                                struct ks_codec_error *cerr)
{
    cJSON *tree =
        cJSON_ParseWithLength(buf + item->start, item->end - item->start);
    char *compact = tree ? cJSON_PrintUnformatted(tree) : NULL;

    cJSON_Delete(tree);
    if (!compact) {
        return codec_nomem(cerr);
    }
    *out = ks_xstrdup(compact);
    cJSON_free(compact);
    return KS_OK;
}

enum ks_err codec_json_schema_text(const char *text,
                                   int max_depth,
                                   char **out,
                                   struct ks_codec_error *cerr)
{
    enum ks_err err;
    struct jdoc doc;
    size_t where;

    *out = NULL;
    switch (jparse(&doc, text, strlen(text), max_depth, &where)) {
    case JPARSE_OK:
        break;
    case JPARSE_TOO_DEEP:
        return codec_too_large(cerr, "output_schema",
                               "JSON nested deeper than %d", max_depth);
    case JPARSE_HAS_NUL:
        return codec_invalid(cerr, "output_schema", "holds \\u0000");
    case JPARSE_NOMEM:
        return codec_nomem(cerr);
    default:
        return codec_invalid(cerr, "output_schema",
                             "not JSON: syntax error at byte %zu", where);
    }
    if (jdoc_root(&doc)->type != JT_OBJECT) {
        err = codec_invalid(cerr, "output_schema", "must be an object");
    } else {
        err = json_compact(text, jdoc_root(&doc), out, cerr);
    }
    jdoc_fini(&doc);
    return err;
}

static enum ks_err json_task_nested(const struct jdoc *doc,
                                    const char *buf,
                                    const struct ks_codec_limits *lim,
                                    struct ks_task *task,
                                    struct ks_codec_error *cerr)
{
    const struct jnode *root = jdoc_root(doc), *item;
    size_t n;
    enum ks_err err;

    err = jcontainer(doc, root, "messages", JT_ARRAY, lim->max_messages, &item,
                     &n, cerr);
    if (err == KS_OK && n > 0) {
        task->messages = ks_xcalloc(n, sizeof(*task->messages));
        task->n_messages = n;
        err = jentries(doc, item, "messages", message_fields,
                       N_OF(message_fields), task->messages,
                       sizeof(*task->messages), cerr);
    }
    if (err == KS_OK) {
        err = jcontainer(doc, root, "hints", JT_OBJECT, SIZE_MAX, &item, &n,
                         cerr);
    }
    if (err == KS_OK && item) {
        err = jfields(doc, item, "hints", hint_fields, N_OF(hint_fields),
                      &task->hints, cerr);
    }
    if (err == KS_OK) {
        err = jcontainer(doc, root, "output_schema", JT_OBJECT, SIZE_MAX, &item,
                         &n, cerr);
    }
    if (err == KS_OK && item) {
        err = json_compact(buf, item, &task->output_schema, cerr);
    }
    return err;
}

enum ks_err codec_json_task_decode(const char *buf,
                                   size_t len,
                                   const struct ks_codec_limits *lim,
                                   struct ks_task **taskp,
                                   struct ks_codec_error *cerr)
{
    struct ks_task *task;
    struct jdoc doc;
    enum ks_err err;

    *taskp = NULL;
    err = json_parse_envelope(buf, len, lim, &doc, cerr);
    if (err != KS_OK) {
        return err;
    }
    task = codec_task_new();
    /* The string fields point into the document's strings (J_TEXT): the
     * task takes them over, one block instead of a copy per field. */
    task->strings = doc.strs;
    task->strings_len = doc.n_strs;
    err = jfields(&doc, jdoc_root(&doc), "", task_fields, N_OF(task_fields),
                  task, cerr);
    if (err == KS_OK) {
        err = json_task_nested(&doc, buf, lim, task, cerr);
    }
    if (err == KS_OK) {
        err = json_metadata(&doc, jdoc_root(&doc), lim, &task->metadata,
                            &task->n_metadata, cerr);
    }
    doc.strs = NULL; /* the task's now */
    jdoc_fini(&doc);
    if (err != KS_OK) {
        ks_task_destroy(task);
        return err;
    }
    *taskp = task;
    return KS_OK;
}

/* ---- Result ---- */

static const struct jfield usage_fields[] = {
    JF(struct ks_result, input_tokens, J_COUNT),
    JF(struct ks_result, output_tokens, J_COUNT),
};

static const struct jfield attempt_fields[] = {
    JF(struct ks_attempt, tier, J_STR),
    JF(struct ks_attempt, model, J_STR),
    JF(struct ks_attempt, confidence, J_CONFIDENCE),
    JF(struct ks_attempt, decision, J_STR),
    JF(struct ks_attempt, reason, J_STR),
    {"cost_usd", J_MONEY, offsetof(struct ks_attempt, cost_micro)},
    JF(struct ks_attempt, latency_ms, J_COUNT),
};

static const struct jfield result_fields[] = {
    JF(struct ks_result, id, J_STR),
    JF(struct ks_result, type, J_STR),
    JF(struct ks_result, tenant, J_STR),
    JF(struct ks_result, status, J_STATUS),
    JF(struct ks_result, output, J_STR),
    JF(struct ks_result, tier, J_STR),
    JF(struct ks_result, model, J_STR),
    JF(struct ks_result, confidence, J_CONFIDENCE),
    JF(struct ks_result, confidence_source, J_STR),
    {"cost_usd", J_MONEY, offsetof(struct ks_result, cost_micro)},
    JNESTED("usage"),
    JF(struct ks_result, latency_ms, J_COUNT),
    JNESTED("path"),
    JF(struct ks_result, error, J_STR),
    JNESTED("metadata"),
    JNESTED("confidence_parts"),
};

static enum ks_err json_result_nested(const struct jdoc *doc,
                                      const struct ks_codec_limits *lim,
                                      struct ks_result *result,
                                      struct ks_codec_error *cerr)
{
    const struct jnode *root = jdoc_root(doc), *item;
    size_t n;
    enum ks_err err;

    if (!jget(doc, root, "status")) {
        return codec_parse_status_field(NULL, &result->status, cerr);
    }
    err = jcontainer(doc, root, "usage", JT_OBJECT, SIZE_MAX, &item, &n, cerr);
    if (err == KS_OK && item) {
        err = jfields(doc, item, "usage", usage_fields, N_OF(usage_fields),
                      result, cerr);
    }
    if (err == KS_OK) {
        err = jcontainer(doc, root, "path", JT_ARRAY, lim->max_path, &item, &n,
                         cerr);
    }
    if (err == KS_OK && n > 0) {
        result->path = ks_xcalloc(n, sizeof(*result->path));
        result->n_path = n;
        for (size_t i = 0; i < n; i++) {
            result->path[i].confidence = -1;
        }
        err = jentries(doc, item, "path", attempt_fields, N_OF(attempt_fields),
                       result->path, sizeof(*result->path), cerr);
    }
    return err;
}

enum ks_err codec_json_result_decode(const char *buf,
                                     size_t len,
                                     const struct ks_codec_limits *lim,
                                     struct ks_result **resultp,
                                     struct ks_codec_error *cerr)
{
    struct ks_result *result;
    struct jdoc doc;
    enum ks_err err;

    *resultp = NULL;
    err = json_parse_envelope(buf, len, lim, &doc, cerr);
    if (err != KS_OK) {
        return err;
    }
    result = ks_result_new();
    err = jfields(&doc, jdoc_root(&doc), "", result_fields, N_OF(result_fields),
                  result, cerr);
    if (err == KS_OK) {
        err = json_result_nested(&doc, lim, result, cerr);
    }
    if (err == KS_OK) {
        err = json_metadata(&doc, jdoc_root(&doc), lim, &result->metadata,
                            &result->n_metadata, cerr);
    }
    if (err == KS_OK) {
        err = codec_parts_json_decode(
            &doc, jnode_get(&doc, jdoc_root(&doc), "confidence_parts"), result,
            cerr);
    }
    jdoc_fini(&doc);
    if (err != KS_OK) {
        ks_result_destroy(result);
        return err;
    }
    *resultp = result;
    return KS_OK;
}

/* jfields tracks the keys it has seen in a uint32_t. */
_Static_assert(N_OF(result_fields) <= 32, "jfields tables hold <= 32 fields");
_Static_assert(N_OF(task_fields) <= 32, "jfields tables hold <= 32 fields");

/* ---- Escalation ---- */

static const struct jfield escalation_fields[] = {
    JF(struct ks_escalation, id, J_STR),
    JF(struct ks_escalation, tenant, J_STR),
    JF(struct ks_escalation, from_tier, J_STR),
    JF(struct ks_escalation, hop, J_HOP),
    JF(struct ks_escalation, reason, J_STR),
    JF(struct ks_escalation, confidence, J_CONFIDENCE),
    JF(struct ks_escalation, context_key, J_STR),
    {"cost_so_far_usd", J_MONEY,
     offsetof(struct ks_escalation, cost_so_far_micro)},
};

enum ks_err codec_json_escalation_decode(const char *buf,
                                         size_t len,
                                         const struct ks_codec_limits *lim,
                                         struct ks_escalation **escp,
                                         struct ks_codec_error *cerr)
{
    struct ks_escalation *esc;
    struct jdoc doc;
    enum ks_err err;

    *escp = NULL;
    err = json_parse_envelope(buf, len, lim, &doc, cerr);
    if (err != KS_OK) {
        return err;
    }
    esc = codec_escalation_new();
    err = jfields(&doc, jdoc_root(&doc), "", escalation_fields,
                  N_OF(escalation_fields), esc, cerr);
    if (err == KS_OK && !jget(&doc, jdoc_root(&doc), "hop")) {
        err = codec_invalid(cerr, "hop", "missing");
    }
    jdoc_fini(&doc);
    if (err != KS_OK) {
        ks_escalation_destroy(esc);
        return err;
    }
    *escp = esc;
    return KS_OK;
}
