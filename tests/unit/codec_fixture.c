/*
 * codec_fixture.c - the shared helpers of the codec test programs (see
 * codec_fixture.h).
 */
#include "codec_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/banned.h"

/* Small caps, so refusals fit in a readable line. */
const struct ks_codec_limits tight = {
    .max_message_bytes = 4096,
    .max_id_bytes = 16,
    .max_text_bytes = 64,
    .max_messages = 2,
    .max_metadata = 2,
    .max_path = 2,
    .max_depth = 6,
};

/* JSON text from a readable literal: ' stands for ". Caller frees. */
char *json_text(const char *readable)
{
    char *s = strdup(readable);

    for (char *p = s; *p; p++) {
        *p = *p == '\'' ? '"' : *p;
    }
    return s;
}

void assert_detail(const struct ks_codec_error *cerr,
                   const char *code,
                   const char *detail)
{
    assert_non_null(cerr->code);
    assert_string_equal(cerr->code, code);
    if (!strstr(cerr->detail, detail)) {
        fail_msg("detail \"%s\" lacks \"%s\"", cerr->detail, detail);
    }
}

void assert_same_double(double a, double b)
{
    if (a != b) {
        fail_msg("%.17g != %.17g", a, b);
    }
}

/* Decodes with the tight limits; returns the error, checks *out is NULL. */
enum ks_err decode_kind(enum kind kind,
                        enum ks_format fmt,
                        const void *buf,
                        size_t len,
                        const struct ks_codec_limits *lim,
                        struct ks_codec_error *cerr)
{
    struct ks_task *task = (void *)1;
    struct ks_result *result = (void *)1;
    struct ks_escalation *esc = (void *)1;
    enum ks_err err;

    if (kind == TASK) {
        err = ks_task_decode(fmt, buf, len, lim, &task, cerr);
        assert_true(err == KS_OK || task == NULL);
        ks_task_destroy(task);
    } else if (kind == RESULT) {
        err = ks_result_decode(fmt, buf, len, lim, &result, cerr);
        assert_true(err == KS_OK || result == NULL);
        ks_result_destroy(result);
    } else {
        err = ks_escalation_decode(fmt, buf, len, lim, &esc, cerr);
        assert_true(err == KS_OK || esc == NULL);
        ks_escalation_destroy(esc);
    }
    return err;
}

void run_reject(void **state)
{
    const struct reject_case *rc = *state;
    struct ks_codec_error cerr;
    struct wire w = {.len = 0};
    enum ks_err err;
    char *text;

    if (rc->json) {
        text = json_text(rc->json);
        err = decode_kind(rc->kind, KS_FORMAT_JSON, text, strlen(text), &tight,
                          &cerr);
        free(text);
    } else {
        rc->build(&w);
        err = decode_kind(rc->kind, KS_FORMAT_PROTOBUF, w.buf, w.len, &tight,
                          &cerr);
    }
    assert_int_equal(err, rc->err);
    assert_detail(&cerr, rc->code, rc->detail);
}

const char full_task[] =
    "{'id':'t-42','type':'classify_intent','tenant':'acme',"
    "'input':'I was charged twice',"
    "'messages':[{'role':'system','content':'be brief'},"
    "{'role':'user','content':'line\\nbreak \\u00e9'}],"
    "'instructions':'answer with one label',"
    "'output_schema':{ 'type' : 'object', 'required' : ['label'] },"
    "'hints':{'min_tier':'local','max_tier':'frontier','local_only':true,"
    "'risk':'high','latency':'interactive','max_cost_usd':0.05,"
    "'max_output_tokens':512},"
    "'reply_to':'acme.results','metadata':{'trace':'abc','team':'billing'}}";

const char full_result[] =
    "{'id':'t-42','type':'classify_intent','tenant':'acme',"
    "'status':'low_confidence','output':'billing','tier':'local',"
    "'model':'smollm2-135m','confidence':0.93,'confidence_source':'logprob',"
    "'cost_usd':0.000012,'usage':{'input_tokens':41,'output_tokens':3},"
    "'latency_ms':182,"
    "'path':[{'tier':'local','model':'smollm2-135m','confidence':0.41,"
    "'decision':'escalate','reason':'low_confidence','cost_usd':0.00001,"
    "'latency_ms':120},"
    "{'tier':'frontier','model':'big','confidence':null,'decision':'answer',"
    "'reason':null,'cost_usd':0.002,'latency_ms':900}],"
    "'error':null,'metadata':{'trace':'abc'}}";

const char full_escalation[] =
    "{'id':'t-42','tenant':'acme','from_tier':'local','hop':1,"
    "'reason':'low_confidence','confidence':0.41,"
    "'context_key':'ctx:acme:t-42','cost_so_far_usd':0.00001}";

struct ks_task *task_from(const char *readable)
{
    char *text = json_text(readable);
    struct ks_codec_error cerr;
    struct ks_task *task;

    if (ks_task_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &task,
                       &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(text);
    return task;
}

struct ks_result *result_from(const char *readable)
{
    char *text = json_text(readable);
    struct ks_codec_error cerr;
    struct ks_result *result;

    if (ks_result_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &result,
                         &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(text);
    return result;
}

struct ks_escalation *escalation_from(const char *readable)
{
    char *text = json_text(readable);
    struct ks_codec_error cerr;
    struct ks_escalation *esc;

    if (ks_escalation_decode(KS_FORMAT_JSON, text, strlen(text), NULL, &esc,
                             &cerr) != KS_OK) {
        fail_msg("%s: %s", cerr.code, cerr.detail);
    }
    free(text);
    return esc;
}
