/*
 * fuzz_verify.c - the verifier's text readers (learn/verify.h): numbers,
 * arithmetic statements, answer markers, the answer pattern, JSON answers
 * under a schema, repetition, agreement and the stated final answer, on
 * arbitrary bytes. The input
 * is split at its first NUL into prompt and answer; every check must stay
 * finite and in [0, 1].
 */
#include <math.h>

#include "fuzz.h"
#include "learn/verify.h"

#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ks_rule_re *re;
    static const char schema[] = "{\"type\":\"object\",\"properties\":"
                                 "{\"answer\":{\"type\":\"number\"}}}";
    char *buf = malloc(size + 1), *answer, out[64];
    const char *answers[3];
    struct ks_verify_input in = {.type = "t", .output_tokens = -1};
    double v[KS_VC_COUNT];
    size_t maj;

    fuzz_quiet();
    if (!re) {
        char err[256];

        re = ks_rule_re_new("####\\s*(-?[0-9][0-9,.]*)", 100000, err,
                            sizeof(err));
    }
    memcpy(buf, data, size);
    buf[size] = '\0';
    answer = buf + strlen(buf) + (strlen(buf) < size);
    in.prompt = buf;
    in.answer = answer;
    in.max_output_tokens = 64;
    for (int pass = 0; pass < 2; pass++) {
        in.answer_pattern = pass ? NULL : re;
        in.output_schema = pass ? schema : NULL;
        ks_verify_checks(&in, v);
        for (int c = 0; c < KS_VC_COUNT; c++) {
            if (!isfinite(v[c]) || v[c] < 0 || v[c] > 1) {
                abort();
            }
        }
    }
    (void)ks_verify_final_answer(answer, re, out, sizeof(out));
    /* what an escalated call reads (escalate_context final): a string,
     * empty exactly when nothing is stated */
    for (int pass = 0; pass < 2; pass++) {
        bool stated = ks_verify_stated_answer(
            answer, pass ? NULL : re, pass ? schema : NULL, out, sizeof(out));

        if (strlen(out) >= sizeof(out) || stated != (out[0] != '\0')) {
            abort();
        }
    }
    answers[0] = buf;
    answers[1] = answer;
    answers[2] = answer;
    if (ks_verify_agreement(answers, 3, re, NULL, &maj) <= 0 || maj > 2) {
        abort();
    }
    free(buf);
    return 0;
}
