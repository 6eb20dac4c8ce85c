/*
 * pricing.h - the one estimate of a model call's size and cost, used by
 * the router's max_cost_usd and context-window checks, the workers' rate
 * limit admission and their budget reservations (docs/design.md section
 * 7), and the settlement of a finished call.
 *
 * A call's prompt is its system prompt, the task's messages and its input.
 * Token counts are estimated from bytes: the expected count is a token per
 * four bytes (rounded up), the worst case a token per byte; both add
 * KS_PRICE_TEMPLATE_TOKENS per message and twice that for the request
 * (role markers and separators). The output is max_output_tokens.
 *
 * Pure functions over borrowed config and task: any thread.
 */
#ifndef KASCADE_COMMON_CONFIG_PRICING_H
#define KASCADE_COMMON_CONFIG_PRICING_H

#include <stdint.h>

#include "config/config.h"
#include "wire/codec.h"

/* Tokens of chat template around each message (and twice per request). */
#define KS_PRICE_TEMPLATE_TOKENS 16

/* The output tokens a call may produce: the task's hint, else the tier's
 * default_max_output_tokens. */
int64_t ks_price_max_output(const struct ks_tier_cfg *tier,
                            const struct ks_task *task);

/* Bytes of the prompt: system (the call's system prompt; NULL: the task's
 * instructions, all a router knows of it), the messages and the input. */
int64_t ks_price_prompt_bytes(const struct ks_task *task, const char *system);

/* The expected prompt tokens (a token per four bytes, rounded up, plus
 * the template tokens). */
int64_t ks_price_prompt_tokens(const struct ks_task *task, const char *system);

/* The expected tokens of a whole call, prompt plus max output: what a
 * provider counts against its tokens-per-minute limit. */
int64_t ks_price_call_tokens(const struct ks_tier_cfg *tier,
                             const struct ks_task *task,
                             const char *system);

/* Cost in micro-dollars of input_tokens and output_tokens at prov's
 * prices (USD per million tokens). */
int64_t ks_price_cost_micro(const struct ks_provider_cfg *prov,
                            int64_t input_tokens,
                            int64_t output_tokens);

/* The worst case of a call to prov for task, in micro-dollars: every
 * prompt byte a token plus the template tokens, and max_output_tokens.
 * What a worker reserves before the call and what the router compares
 * with max_cost_usd (with system NULL: a lower bound of the worker's). */
int64_t ks_price_worst_micro(const struct ks_tier_cfg *tier,
                             const struct ks_provider_cfg *prov,
                             const struct ks_task *task,
                             const char *system);

#endif
