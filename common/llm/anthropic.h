/*
 * anthropic.h - the Anthropic Messages API dialect of model.c: the
 * request body and the reply parsing. Internal to the model client (the
 * HTTP side, headers and error mapping live in model.c); callers use
 * model.h. Pure functions on memory: any thread.
 */
#ifndef KASCADE_COMMON_LLM_ANTHROPIC_H
#define KASCADE_COMMON_LLM_ANTHROPIC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "llm/model.h"
#include "wire/codec.h"

/* The request body of a POST {base_url}/messages for task: `system` is
 * the task's instructions (else instructions) plus the text of any system
 * messages, `messages` the task's other messages then its input as a user
 * turn. Returns a string the caller frees with cJSON_free(), or NULL when
 * memory ran out. */
char *ks_model_anthropic_body(const struct ks_provider_cfg *prov,
                              const struct ks_task *task,
                              const char *instructions,
                              uint32_t max_output_tokens);

/* Parses a 200 reply body (len bytes): the text blocks of content[]
 * joined, usage.input_tokens / output_tokens (estimated at 4 bytes a token
 * when absent; est_input_tokens for the input), stop_reason. On KS_OK
 * *contentp is a new string the caller frees. Returns KS_ERR_UPSTREAM
 * with reply->detail for a body that is not a message. */
enum ks_err ks_model_anthropic_parse(const char *data,
                                     size_t len,
                                     int64_t est_input_tokens,
                                     char **contentp,
                                     struct ks_model_reply *reply);

/* Adds the `error.type` of an Anthropic error body (data, len bytes) to
 * reply->detail ("HTTP 429 rate_limit_error"), when there is one. */
void ks_model_anthropic_error(const char *data,
                              size_t len,
                              struct ks_model_reply *reply);

#endif
