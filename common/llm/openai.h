/*
 * openai.h - the OpenAI-compatible chat-completions dialect of model.c:
 * the request body and the reply parsing. Internal to the model client
 * (the HTTP side, headers and error mapping live in model.c); callers use
 * model.h. Pure functions on memory: any thread.
 */
#ifndef KASCADE_COMMON_LLM_OPENAI_H
#define KASCADE_COMMON_LLM_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "llm/model.h"
#include "wire/codec.h"

/* The most choices read from one reply (agreement takes at most 16). */
#define KS_MODEL_MAX_CHOICES 16

/* The request body of a POST {base_url}/chat/completions for task: the
 * system message (the task's instructions, else instructions), the task's
 * messages, then its input as a user turn; logprobs asked for; n > 1
 * asks for n choices. Returns a string the caller frees with
 * cJSON_free(). */
char *ks_model_openai_body(const struct ks_provider_cfg *prov,
                           const struct ks_task *task,
                           const char *instructions,
                           uint32_t max_output_tokens,
                           unsigned n);

/* Parses a 200 reply body (len bytes): choices[0].message.content, the
 * mean token logprob, finish_reason and usage (estimated at 4 bytes a
 * token when absent; est_input_tokens for the input). On KS_OK *contentp
 * is a new string the caller frees, and the content strings of
 * choices[1..] (at most KS_MODEL_MAX_CHOICES - 1; a choice without one is
 * skipped) are in reply->more, which the caller frees with
 * ks_model_reply_free_more(). Returns KS_ERR_UPSTREAM with reply->detail
 * for a body that is not a completion. */
enum ks_err ks_model_openai_parse(const char *data,
                                  size_t len,
                                  int64_t est_input_tokens,
                                  char **contentp,
                                  struct ks_model_reply *reply);

#endif
