/*
 * pricing.c - token and cost estimates of a model call (see pricing.h).
 */
#include "config/pricing.h"

#include <math.h>
#include <string.h>

#include "base/banned.h"

static int64_t text_bytes(const char *s)
{
    return s ? (int64_t)strlen(s) : 0;
}

static int64_t template_tokens(const struct ks_task *task)
{
    return KS_PRICE_TEMPLATE_TOKENS * (2 + (int64_t)task->n_messages);
}

int64_t ks_price_max_output(const struct ks_tier_cfg *tier,
                            const struct ks_task *task)
{
    return task->hints.max_output_tokens ? task->hints.max_output_tokens
                                         : tier->default_max_output_tokens;
}

int64_t ks_price_prompt_bytes(const struct ks_task *task, const char *system)
{
    int64_t bytes = text_bytes(system ? system : task->instructions) +
                    text_bytes(task->input);

    for (size_t i = 0; i < task->n_messages; i++) {
        bytes += text_bytes(task->messages[i].content);
    }
    return bytes;
}

int64_t ks_price_prompt_tokens(const struct ks_task *task, const char *system)
{
    return template_tokens(task) +
           (ks_price_prompt_bytes(task, system) + 3) / 4;
}

int64_t ks_price_call_tokens(const struct ks_tier_cfg *tier,
                             const struct ks_task *task,
                             const char *system)
{
    return ks_price_prompt_tokens(task, system) +
           ks_price_max_output(tier, task);
}

int64_t ks_price_cost_micro(const struct ks_provider_cfg *prov,
                            int64_t input_tokens,
                            int64_t output_tokens)
{
    /* USD per million tokens is micro-dollars per token. */
    return llround((double)input_tokens * prov->price_in +
                   (double)output_tokens * prov->price_out);
}

int64_t ks_price_worst_micro(const struct ks_tier_cfg *tier,
                             const struct ks_provider_cfg *prov,
                             const struct ks_task *task,
                             const char *system)
{
    int64_t in = template_tokens(task) + ks_price_prompt_bytes(task, system);

    return ks_price_cost_micro(prov, in, ks_price_max_output(tier, task));
}
