/*
 * test_pricing.c - the one estimate of a call's size and cost: template
 * tokens per message, a token per four prompt bytes expected and per byte
 * at worst, the output cap from the task or the tier, prices per million
 * tokens; the router's estimate (instructions only) never exceeds the
 * worker's (the full system prompt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/pricing.h"

#include "base/banned.h"

static struct ks_provider_cfg prov = {.price_in = 2.0, .price_out = 10.0};
static struct ks_tier_cfg tier = {.default_max_output_tokens = 100};

static void max_output_prefers_the_tasks_hint(void **state)
{
    struct ks_task task = {0};

    (void)state;
    assert_int_equal(ks_price_max_output(&tier, &task), 100);
    task.hints.max_output_tokens = 7;
    assert_int_equal(ks_price_max_output(&tier, &task), 7);
}

static void prompt_counts_system_messages_and_input(void **state)
{
    struct ks_chat_message msgs[2] = {{.role = "user", .content = "abcd"},
                                      {.role = "assistant", .content = "ef"}};
    struct ks_task task = {.input = "12345",
                           .instructions = "xyz",
                           .messages = msgs,
                           .n_messages = 2};

    (void)state;
    /* NULL system: the task's instructions stand for it. */
    assert_int_equal(ks_price_prompt_bytes(&task, NULL), 3 + 4 + 2 + 5);
    assert_int_equal(ks_price_prompt_bytes(&task, "system prompt"),
                     13 + 4 + 2 + 5);
    /* 16 per message and twice per request; 14 bytes -> 4 tokens. */
    assert_int_equal(ks_price_prompt_tokens(&task, NULL),
                     KS_PRICE_TEMPLATE_TOKENS * 4 + 4);
    assert_int_equal(ks_price_call_tokens(&tier, &task, NULL),
                     KS_PRICE_TEMPLATE_TOKENS * 4 + 4 + 100);
}

static void cost_is_micro_dollars_at_the_providers_prices(void **state)
{
    (void)state;
    /* USD per million tokens is micro-dollars per token. */
    assert_int_equal(ks_price_cost_micro(&prov, 1000, 10), 2000 + 100);
    assert_int_equal(ks_price_cost_micro(&prov, 0, 0), 0);
}

static void worst_case_counts_every_prompt_byte(void **state)
{
    struct ks_task task = {.input = "0123456789"};

    (void)state;
    task.hints.max_output_tokens = 20;
    /* (32 template + 10 bytes) in at 2, 20 out at 10. */
    assert_int_equal(ks_price_worst_micro(&tier, &prov, &task, NULL),
                     (2 * KS_PRICE_TEMPLATE_TOKENS + 10) * 2 + 20 * 10);
}

static void router_estimate_never_exceeds_the_workers(void **state)
{
    struct ks_task task = {.input = "question", .instructions = "be brief"};
    /* A worker's system prompt: the tier's lane plus the instructions. */
    const char *system = "You are the local tier.\n\nbe brief";

    (void)state;
    assert_true(ks_price_worst_micro(&tier, &prov, &task, NULL) <=
                ks_price_worst_micro(&tier, &prov, &task, system));
    assert_true(ks_price_prompt_tokens(&task, NULL) <=
                ks_price_prompt_tokens(&task, system));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(max_output_prefers_the_tasks_hint),
        cmocka_unit_test(prompt_counts_system_messages_and_input),
        cmocka_unit_test(cost_is_micro_dollars_at_the_providers_prices),
        cmocka_unit_test(worst_case_counts_every_prompt_byte),
        cmocka_unit_test(router_estimate_never_exceeds_the_workers),
    };

    return cmocka_run_group_tests_name("pricing", tests, NULL, NULL);
}
