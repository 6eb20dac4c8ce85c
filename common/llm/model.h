/*
 * model.h - one call to a model provider: an OpenAI-compatible
 * /chat/completions endpoint (kind "openai") or the Anthropic Messages API
 * (kind "anthropic", /messages), as a libcurl easy handle that the caller
 * drives in its own curl multi loop (no streaming: a broken stream cannot
 * fall back cleanly).
 *
 * Errors are mapped once, here, the same for every kind: timeouts ->
 * KS_ERR_TIMEOUT; connection failures, 408, 429 and 5xx (Anthropic's 529
 * "overloaded" included) -> KS_ERR_RETRY; other 4xx and malformed bodies
 * -> KS_ERR_UPSTREAM; a body over the cap -> KS_ERR_TOO_LARGE.
 * A call is owned by one thread.
 */
#ifndef KASCADE_COMMON_LLM_MODEL_H
#define KASCADE_COMMON_LLM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "base/err.h"
#include "config/config.h"
#include "wire/codec.h"

struct ks_model_call;

struct ks_model_reply {
    enum ks_err err;
    long http_status;       /* 0 when no response arrived */
    int64_t retry_after_ms; /* from Retry-After; -1 when absent */
    char *content;          /* the answer; owned by the call */
    int64_t input_tokens;
    int64_t output_tokens;
    bool has_logprobs;
    double mean_logprob; /* over the answer tokens, when has_logprobs */
    char detail[256];    /* why, when err != KS_OK */
    /* finish_reason (openai) or stop_reason (anthropic); "" when absent */
    char stop_reason[24];
    /* A call that asked for n > 1 answers (openai "n"): the other
     * choices' contents, in order (content is choices[0]); owned by the
     * call. The provider may send fewer than asked: n_more < n - 1. Usage
     * covers every choice. */
    char **more;
    size_t n_more;
};

/* Prepares a call of prov for task. instructions (may be NULL) is the
 * system prompt when the task carries none. n > 1 asks for n answers in
 * one call (openai "n"; only for a provider with supports_n, else 1).
 * opaque is returned by
 * ks_model_call_opaque(). Returns a new call the caller owns, or NULL with
 * errstr (e.g. the API key variable is empty). */
struct ks_model_call *ks_model_call_new(const struct ks_provider_cfg *prov,
                                        const struct ks_task *task,
                                        const char *instructions,
                                        uint32_t max_output_tokens,
                                        unsigned n,
                                        size_t max_body,
                                        void *opaque,
                                        char *errstr,
                                        size_t errstr_size);

/* The easy handle to add to a multi handle; borrowed, valid until
 * ks_model_call_destroy(). Its CURLOPT_PRIVATE is the call. */
CURL *ks_model_call_easy(struct ks_model_call *call);

void *ks_model_call_opaque(const struct ks_model_call *call);

/* Interprets the transfer's result (from CURLMSG_DONE). The reply's
 * strings are owned by the call. Returns reply->err. */
enum ks_err ks_model_call_finish(struct ks_model_call *call,
                                 CURLcode rc,
                                 struct ks_model_reply *reply);

/* Frees reply->more (the other choices); for a parser's caller that owns
 * them (ks_model_openai_parse). Accepts a reply without any. */
void ks_model_reply_free_more(struct ks_model_reply *reply);

/* Accepts NULL. Remove the easy handle from its multi handle first. */
void ks_model_call_destroy(struct ks_model_call *call);

/* For the dialects (openai.c, anthropic.c): usage field `name` as a
 * token count, or estimate when it is absent or not a sane number. */
int64_t ks_model_usage_field(const cJSON *usage,
                             const char *name,
                             int64_t estimate);

#endif
