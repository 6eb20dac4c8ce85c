/*
 * codec_fixture.h - what the envelope codec's test programs
 * (test_codec_decode, test_codec_encode, test_codec_reject_json,
 * test_codec_reject_pb) share: tight limits, JSON written with ' for ",
 * the valid full envelopes of the design, decoding them, and the runner
 * of the refusal tables (one named cmocka test per case).
 *
 * Ownership: json_text() and the *_from() helpers return what the caller
 * frees; everything else is static data, borrowed. Single-threaded: call
 * from the running cmocka test; failures fail that test.
 */
#ifndef KASCADE_TESTS_CODEC_FIXTURE_H
#define KASCADE_TESTS_CODEC_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "wire/codec.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Small caps, so refusals fit in a readable line. */
extern const struct ks_codec_limits tight;

/* JSON text from a readable literal: ' stands for ". Caller frees. */
char *json_text(const char *readable);

/* Fails the test unless cerr has code and its detail contains detail. */
void assert_detail(const struct ks_codec_error *cerr,
                   const char *code,
                   const char *detail);

/* Fails the test unless a and b are the same double, bit for bit. */
void assert_same_double(double a, double b);

/* ---- protobuf wire writer: the buffer a refusal case is built in ---- */

struct wire {
    uint8_t buf[8192];
    size_t len;
};

/* ---- refusal tables ---- */

enum kind {
    TASK,
    RESULT,
    ESCALATION,
};

/* One refusal: the state of a run_reject() cmocka test (borrowed). */
struct reject_case {
    enum kind kind;
    const char *json;             /* readable JSON, or NULL */
    void (*build)(struct wire *); /* protobuf bytes, when json is NULL */
    enum ks_err err;
    const char *code;
    const char *detail; /* must occur in cerr.detail */
};

/* Decodes buf as kind with lim (NULL: the defaults); returns the error
 * and checks the output is NULL on failure. */
enum ks_err decode_kind(enum kind kind,
                        enum ks_format fmt,
                        const void *buf,
                        size_t len,
                        const struct ks_codec_limits *lim,
                        struct ks_codec_error *cerr);

/* The cmocka test of one refusal: *state is its struct reject_case,
 * decoded with the tight limits. */
void run_reject(void **state);

/* ---- valid envelopes: the design's examples, every field set ---- */

extern const char full_task[];
extern const char full_result[];
extern const char full_escalation[];

/* Decodes readable JSON (default limits) or fails the test; caller owns
 * the result. */
struct ks_task *task_from(const char *readable);
struct ks_result *result_from(const char *readable);
struct ks_escalation *escalation_from(const char *readable);

#endif
