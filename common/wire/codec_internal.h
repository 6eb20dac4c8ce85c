/*
 * codec_internal.h - what the files of the codec share; not for use outside
 * it. codec.c: basics and encode entry points; decode.c: decode entry
 * points and shared checks; json.c / json_encode.c: JSON;
 * pb.c: protobuf.
 *
 * A decode runs in three steps: the public entry point checks the message
 * size cap, the format decoder turns the wire form into the in-memory
 * struct, refusing wrong types, unknown fields, bad enum strings and
 * out-of-range numbers as it goes, and then decode.c checks what does
 * not depend on the format (required fields, string caps, roles, duplicate
 * metadata keys). Both formats therefore refuse the same things with the
 * same words.
 *
 * String caps: max_id_bytes holds identifiers and names (id, type, tenant,
 * tier names, model, reply_to, role, decision, confidence_source,
 * context_key, metadata keys); max_text_bytes holds free text (input,
 * content, instructions, output_schema, output, error, reason, metadata
 * values).
 */
#ifndef KASCADE_COMMON_WIRE_CODEC_INTERNAL_H
#define KASCADE_COMMON_WIRE_CODEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/codec.h"

/* Money on the wire: 0 to one billion USD, so micro-dollars stay exact in
 * a double (< 2^53) and llround cannot overflow. */
#define CODEC_MAX_USD 1e9
/* Counters (tokens, latency): JSON numbers are exact up to 2^53. */
#define CODEC_MAX_COUNT         (INT64_C(1) << 53)
#define CODEC_MAX_OUTPUT_TOKENS 1000000
/* Longest field path in an error detail ("path[15].confidence_source"). */
#define CODEC_PATH_MAX 96
/* Enough for any int64 or shortest-round-trip double, with NUL. */
#define CODEC_NUM_MAX 32

/* Error reporting; cerr may be NULL. Each returns the error it records.
 * detail is "field '<field>': <text>", or just the text when field is NULL
 * (for what is not one field: the whole message, its nesting). */
void codec_error_clear(struct ks_codec_error *cerr);
/* KS_ERR_NOMEM with code "nomem": not a DLQ case, the caller may retry. */
enum ks_err codec_nomem(struct ks_codec_error *cerr);
enum ks_err codec_undecodable(struct ks_codec_error *cerr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum ks_err codec_invalid(struct ks_codec_error *cerr,
                          const char *field,
                          const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));
enum ks_err codec_too_large(struct ks_codec_error *cerr,
                            const char *field,
                            const char *fmt,
                            ...) __attribute__((format(printf, 3, 4)));

/* Writes "prefix.name" (or "name" when prefix is empty) into buf. */
const char *codec_path(char *buf,
                       size_t size,
                       const char *prefix,
                       const char *name);
/* Refuses n entries of field when over cap (TOO_LARGE). */
enum ks_err codec_check_count(const char *field,
                              size_t n,
                              size_t cap,
                              struct ks_codec_error *cerr);

/* Wire values to memory, shared by both formats. s may be NULL (absent):
 * risk and latency then stay UNSET, status is reported missing. */
enum ks_err codec_parse_risk(const char *s,
                             enum ks_risk *risk,
                             struct ks_codec_error *cerr);
enum ks_err codec_parse_latency(const char *s,
                                enum ks_latency *latency,
                                struct ks_codec_error *cerr);
enum ks_err codec_parse_status_field(const char *s,
                                     enum ks_status *status,
                                     struct ks_codec_error *cerr);
/* Wire names of the hint enums; NULL for UNSET (or out of range). */
const char *codec_risk_str(enum ks_risk risk);
const char *codec_latency_str(enum ks_latency latency);
/* usd must be finite and within [0, CODEC_MAX_USD]. */
enum ks_err codec_money(const char *field,
                        double usd,
                        int64_t *micro,
                        struct ks_codec_error *cerr);
/* v must be finite and within [0, 1]. */
enum ks_err codec_confidence(const char *field,
                             double v,
                             double *out,
                             struct ks_codec_error *cerr);
/* The range error of an integer field, in one wording for both formats. */
enum ks_err codec_bad_integer(const char *field,
                              int64_t max,
                              struct ks_codec_error *cerr);

/* Number text for JSON: integer micro-dollars as decimal USD without float
 * noise ("0.000012"), and the shortest text that reads back as exactly v. */
void codec_money_text(int64_t micro, char buf[CODEC_NUM_MAX]);
void codec_double_text(double v, char buf[CODEC_NUM_MAX]);

/* Empty envelopes with the "unset" markers in place (max_cost_micro and
 * confidences -1). Abort on OOM like ks_xcalloc. */
struct ks_task *codec_task_new(void);

/* Gives each string field of task that points into task->strings its own
 * copy and frees the block (no-op when there is none). */
void codec_task_unlend(struct ks_task *task);
struct ks_escalation *codec_escalation_new(void);
/* Frees the strings of one path entry (not the entry itself). */
void codec_attempt_fini(struct ks_attempt *attempt);

/* Format decoders. On KS_OK *outp is a new struct the caller owns; on
 * error *outp is NULL and cerr says why. The size cap is already checked. */
enum ks_err codec_json_task_decode(const char *buf,
                                   size_t len,
                                   const struct ks_codec_limits *lim,
                                   struct ks_task **taskp,
                                   struct ks_codec_error *cerr);
enum ks_err codec_json_result_decode(const char *buf,
                                     size_t len,
                                     const struct ks_codec_limits *lim,
                                     struct ks_result **resultp,
                                     struct ks_codec_error *cerr);
enum ks_err codec_json_escalation_decode(const char *buf,
                                         size_t len,
                                         const struct ks_codec_limits *lim,
                                         struct ks_escalation **escp,
                                         struct ks_codec_error *cerr);
enum ks_err codec_pb_task_decode(const uint8_t *buf,
                                 size_t len,
                                 const struct ks_codec_limits *lim,
                                 struct ks_task **taskp,
                                 struct ks_codec_error *cerr);
enum ks_err codec_pb_result_decode(const uint8_t *buf,
                                   size_t len,
                                   const struct ks_codec_limits *lim,
                                   struct ks_result **resultp,
                                   struct ks_codec_error *cerr);
enum ks_err codec_pb_escalation_decode(const uint8_t *buf,
                                       size_t len,
                                       const struct ks_codec_limits *lim,
                                       struct ks_escalation **escp,
                                       struct ks_codec_error *cerr);

/* Checks the text of an output_schema (from protobuf, where it travels as
 * a string): a JSON object no deeper than max_depth. On KS_OK *out is its
 * compact form, a new string the caller owns. */
enum ks_err codec_json_schema_text(const char *text,
                                   int max_depth,
                                   char **out,
                                   struct ks_codec_error *cerr);

/* Format encoders (json_encode.c, pb.c): *bufp (free()) of
 * *lenp bytes, NUL-terminated. */
enum ks_err codec_json_task_encode(const struct ks_task *task,
                                   char **bufp,
                                   size_t *lenp);
enum ks_err codec_json_result_encode(const struct ks_result *result,
                                     char **bufp,
                                     size_t *lenp);
enum ks_err codec_json_escalation_encode(const struct ks_escalation *esc,
                                         char **bufp,
                                         size_t *lenp);
enum ks_err codec_pb_task_encode(const struct ks_task *task,
                                 char **bufp,
                                 size_t *lenp);
enum ks_err codec_pb_result_encode(const struct ks_result *result,
                                   char **bufp,
                                   size_t *lenp);
enum ks_err codec_pb_escalation_encode(const struct ks_escalation *esc,
                                       char **bufp,
                                       size_t *lenp);

/* parts.c: Result.confidence_parts. Each reports what is wrong in cerr
 * (a source that is not a signal, a value outside [0,1], too many). */
#include <cjson/cJSON.h>
enum ks_err codec_parts_check(const struct ks_result *result,
                              struct ks_codec_error *cerr);
/* The JSON object item (may be NULL or null: none). */
struct jdoc;
struct jnode;
enum ks_err codec_parts_json_decode(const struct jdoc *doc,
                                    const struct jnode *item,
                                    struct ks_result *result,
                                    struct ks_codec_error *cerr);
/* Adds "confidence_parts" to root when the result has some; false when
 * memory ran out. */
bool codec_parts_json_encode(cJSON *root, const struct ks_result *result);
void codec_parts_free(struct ks_result *result);

#endif
