/*
 * codec.h - the Task, Result and Escalation envelopes of docs/design.md
 * section 4, in memory, and their JSON (cJSON) and protobuf (protobuf-c)
 * encodings.
 *
 * Decoding is strict: a wrong type, an unknown field, a missing required
 * field or anything over a cap is refused with an error that names the
 * field. Money is integer micro-dollars in memory and decimal USD on the
 * wire. Strings in the structs are NUL-terminated heap copies owned by the
 * struct; NULL means "absent". No function here keeps global state: all are
 * safe to call from any thread on distinct objects.
 */
#ifndef KASCADE_COMMON_WIRE_CODEC_H
#define KASCADE_COMMON_WIRE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum ks_format {
    KS_FORMAT_JSON = 0,
    KS_FORMAT_PROTOBUF,
};

/* Caps on everything sized by the producer. */
struct ks_codec_limits {
    size_t max_message_bytes; /* whole encoded envelope; default 1 MiB */
    size_t max_id_bytes;      /* id, type, tenant, tier names; default 256 */
    size_t max_text_bytes;    /* input, content, instructions, output;
                                 default 512 KiB */
    size_t max_messages;      /* entries of messages[]; default 256 */
    size_t max_metadata;      /* metadata entries; default 64 */
    size_t max_path;          /* Result path entries; default 16 */
    int max_depth;            /* JSON nesting; default 32 */
};

/* Fills lim with the defaults above. */
void ks_codec_limits_default(struct ks_codec_limits *lim);

/* Why a decode failed. code is the DLQ error code of docs/design.md section 4:
 * "decode" (not JSON/protobuf at all), "invalid" (decodes, but a field is
 * missing, of the wrong type or unknown) or "too_large" (over a cap).
 * detail names the field: "field 'hints.risk': must be \"low\" or \"high\"". */
struct ks_codec_error {
    const char *code; /* static string */
    char detail[256];
};

struct ks_chat_message {
    char *role;
    char *content;
};

struct ks_kv {
    char *key;
    char *value;
};

enum ks_risk {
    KS_RISK_UNSET = 0,
    KS_RISK_LOW,
    KS_RISK_HIGH,
};

enum ks_latency {
    KS_LATENCY_UNSET = 0,
    KS_LATENCY_BATCH,
    KS_LATENCY_INTERACTIVE,
};

struct ks_hints {
    char *min_tier; /* NULL when unset */
    char *max_tier;
    bool local_only;
    enum ks_risk risk;
    enum ks_latency latency;
    int64_t max_cost_micro;     /* -1 when unset */
    uint32_t max_output_tokens; /* 0 when unset */
};

/* The longest tenant name. A tenant is 1 to KS_TENANT_MAX bytes of
 * [A-Za-z0-9._-] starting with a letter or digit; decoding refuses any
 * other (code "invalid"), so a tenant is safe in keys and topic names. */
#define KS_TENANT_MAX 128

/* The tenant rule above for s (NULL: no tenant, fine). Returns KS_OK, or
 * KS_ERR_INVALID with cerr naming the field `tenant` and the reason. */
enum ks_err ks_tenant_check(const char *s, struct ks_codec_error *cerr);

/* A task. Required: id, type, and input or messages (at least one). */
struct ks_task {
    char *id;
    char *type;
    char *tenant;
    char *input;
    struct ks_chat_message *messages;
    size_t n_messages;
    char *instructions;
    char *output_schema; /* compact JSON text of an object, or NULL */
    struct ks_hints hints;
    char *reply_to;
    struct ks_kv *metadata;
    size_t n_metadata;
    /* Owned by the task, set only by ks_task_decode_lent: the decoded
     * JSON's strings, back to back, that the string fields above (id to
     * reply_to, the hints' tier names, the messages) point into instead
     * of owning a copy each. NULL (every field its own allocation) for a
     * task from ks_task_decode. ks_task_destroy never frees a pointer
     * inside it on its own. */
    char *strings;
    size_t strings_len;
};

enum ks_status {
    KS_STATUS_OK = 0,
    KS_STATUS_LOW_CONFIDENCE,
    KS_STATUS_FAILED,
    KS_STATUS_REJECTED,
    KS_STATUS_BUDGET_EXCEEDED,
};

/* One step of a task's way through the tiers. */
struct ks_attempt {
    char *tier;
    char *model;
    double confidence;
    char *decision; /* "answer", "escalate", ... */
    char *reason;
    int64_t cost_micro;
    int64_t latency_ms;
};

/* One signal behind a combined confidence (Result.confidence_parts). */
struct ks_conf_part {
    char *source; /* logprob, self_report, schema, verifier, agreement,
                     classifier */
    double value; /* in [0,1] */
};
/* A Result carries at most this many parts. */
#define KS_CONF_PARTS_MAX 8

struct ks_result {
    char *id;
    char *type;
    char *tenant;
    enum ks_status status;
    char *output; /* NULL encodes as JSON null */
    char *tier;
    char *model;
    double confidence;       /* < 0 when unset (encodes as null) */
    char *confidence_source; /* logprob, self_report, classifier, schema,
                                verifier, agreement, combined */
    /* confidence_source "combined": each signal's own value; absent from
     * the JSON when there are none */
    struct ks_conf_part *confidence_parts;
    size_t n_confidence_parts;
    int64_t cost_micro;
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t latency_ms;
    struct ks_attempt *path;
    size_t n_path;
    char *error; /* NULL encodes as JSON null */
    struct ks_kv *metadata;
    size_t n_metadata;
};

struct ks_escalation {
    char *id;
    char *tenant; /* the task's, NULL when it has none */
    char *from_tier;
    uint32_t hop;
    char *reason;
    double confidence;
    char *context_key;
    int64_t cost_so_far_micro;
};

/* Picks the format of a Kafka value: protobuf when content_type (the
 * content-type header, may be NULL) is application/x-protobuf, JSON when
 * the first non-blank byte is '{'. Returns KS_OK, or KS_ERR_INVALID with
 * cerr->code "decode" when it is neither. */
enum ks_err ks_codec_detect(const char *content_type,
                            const void *buf,
                            size_t len,
                            enum ks_format *fmt,
                            struct ks_codec_error *cerr);

/* Decodes buf (len bytes, need not be NUL-terminated). On KS_OK *taskp is
 * a new task the caller owns (ks_task_destroy). On error *taskp is NULL,
 * the return is KS_ERR_INVALID or KS_ERR_TOO_LARGE (or KS_ERR_NOMEM), and
 * cerr says why. */
enum ks_err ks_task_decode(enum ks_format fmt,
                           const void *buf,
                           size_t len,
                           const struct ks_codec_limits *lim,
                           struct ks_task **taskp,
                           struct ks_codec_error *cerr);

/* ks_task_decode, but a JSON task's string fields point into one block
 * the task owns (ks_task.strings) instead of a copy each: fewer
 * allocations for a reader that only reads them (the router). Never free
 * or replace such a field on its own; ks_task_destroy frees the block. */
enum ks_err ks_task_decode_lent(enum ks_format fmt,
                                const void *buf,
                                size_t len,
                                const struct ks_codec_limits *lim,
                                struct ks_task **taskp,
                                struct ks_codec_error *cerr);
enum ks_err ks_result_decode(enum ks_format fmt,
                             const void *buf,
                             size_t len,
                             const struct ks_codec_limits *lim,
                             struct ks_result **resultp,
                             struct ks_codec_error *cerr);
enum ks_err ks_escalation_decode(enum ks_format fmt,
                                 const void *buf,
                                 size_t len,
                                 const struct ks_codec_limits *lim,
                                 struct ks_escalation **escp,
                                 struct ks_codec_error *cerr);

/* Encodes into a new buffer: *bufp (caller frees with free()) of *lenp
 * bytes; JSON output is compact and NUL-terminated (not counted in *lenp).
 * Returns KS_OK or KS_ERR_NOMEM. */
enum ks_err ks_task_encode(enum ks_format fmt,
                           const struct ks_task *task,
                           char **bufp,
                           size_t *lenp);
enum ks_err ks_result_encode(enum ks_format fmt,
                             const struct ks_result *result,
                             char **bufp,
                             size_t *lenp);
enum ks_err ks_escalation_encode(enum ks_format fmt,
                                 const struct ks_escalation *esc,
                                 char **bufp,
                                 size_t *lenp);

/* Destructors; all accept NULL and free every string the struct holds. */
void ks_task_destroy(struct ks_task *task);
void ks_result_destroy(struct ks_result *result);
void ks_escalation_destroy(struct ks_escalation *esc);

/* Returns a new zeroed result (confidence -1) the caller owns. */
struct ks_result *ks_result_new(void);

/* Status names as on the wire ("ok", "low_confidence", ...), and back:
 * returns 0, or -1 when s is unknown. */
const char *ks_status_str(enum ks_status status);
int ks_status_parse(const char *s, enum ks_status *status);

/* Micro-dollars to and from decimal USD (rounded to the nearest micro). */
double ks_micro_to_usd(int64_t micro);
int64_t ks_usd_to_micro(double usd);

#endif
