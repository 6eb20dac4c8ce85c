/*
 * test_model_anthropic.c - the Anthropic Messages API dialect of the model
 * client: the request body (model, max_tokens, system from the
 * instructions and system messages, user/assistant turns, the input last)
 * and the reply parsing (text blocks joined, usage, stop_reason, an error
 * for anything that is not a message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "llm/anthropic.h"

#include "base/banned.h"

static struct ks_provider_cfg prov = {
    .kind = "anthropic", .base_url = "http://h/v1", .model = "claude-test"};

static cJSON *body_of(const struct ks_task *task, const char *instructions)
{
    char *body = ks_model_anthropic_body(&prov, task, instructions, 77);
    cJSON *root;

    assert_non_null(body);
    root = cJSON_Parse(body);
    cJSON_free(body);
    assert_non_null(root);
    return root;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void anthropic_body_puts_the_input_in_one_user_turn(void **state)
{
    struct ks_task task = {.id = "t", .type = "x", .input = "hello"};
    cJSON *root = body_of(&task, "default prompt");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");

    (void)state;
    assert_string_equal(str(root, "model"), "claude-test");
    assert_int_equal(
        cJSON_GetObjectItemCaseSensitive(root, "max_tokens")->valueint, 77);
    assert_string_equal(str(root, "system"), "default prompt");
    assert_int_equal(cJSON_GetArraySize(msgs), 1);
    assert_string_equal(str(cJSON_GetArrayItem(msgs, 0), "role"), "user");
    assert_string_equal(str(cJSON_GetArrayItem(msgs, 0), "content"), "hello");
    cJSON_Delete(root);
}

static void anthropic_body_moves_system_messages_into_system(void **state)
{
    struct ks_chat_message m[] = {
        {.role = "system", .content = "Be terse."},
        {.role = "user", .content = "q1"},
        {.role = "assistant", .content = "a1"},
        {.role = "tool", .content = "t1"},
    };
    struct ks_task task = {.id = "t",
                           .type = "x",
                           .instructions = "Task rules.",
                           .messages = m,
                           .n_messages = 4,
                           .input = "q2"};
    cJSON *root = body_of(&task, "default prompt");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    static const char *const roles[] = {"user", "assistant", "user", "user"};
    static const char *const texts[] = {"q1", "a1", "t1", "q2"};

    (void)state;
    assert_string_equal(str(root, "system"), "Task rules.\n\nBe terse.");
    assert_int_equal(cJSON_GetArraySize(msgs), 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(str(cJSON_GetArrayItem(msgs, i), "role"), roles[i]);
        assert_string_equal(str(cJSON_GetArrayItem(msgs, i), "content"),
                            texts[i]);
    }
    cJSON_Delete(root);
}

static void anthropic_body_without_any_prompt_has_no_system(void **state)
{
    struct ks_task task = {.id = "t", .type = "x", .input = "hi"};
    cJSON *root = body_of(&task, NULL);

    (void)state;
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "system"));
    cJSON_Delete(root);
}

static enum ks_err parse(const char *body,
                         char **content,
                         struct ks_model_reply *reply)
{
    memset(reply, 0, sizeof(*reply));
    return ks_model_anthropic_parse(body, strlen(body), 99, content, reply);
}

static void anthropic_reply_joins_text_blocks_and_reads_usage(void **state)
{
    static const char body[] =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
        "\"content\":[{\"type\":\"text\",\"text\":\"bill\"},"
        "{\"type\":\"tool_use\",\"id\":\"x\",\"name\":\"n\",\"input\":{}},"
        "{\"type\":\"text\",\"text\":\"ing\"}],"
        "\"stop_reason\":\"max_tokens\","
        "\"usage\":{\"input_tokens\":41,\"output_tokens\":3}}";
    struct ks_model_reply reply;
    char *content = NULL;

    (void)state;
    assert_int_equal(parse(body, &content, &reply), KS_OK);
    assert_string_equal(content, "billing");
    assert_int_equal(reply.input_tokens, 41);
    assert_int_equal(reply.output_tokens, 3);
    assert_string_equal(reply.stop_reason, "max_tokens");
    assert_false(reply.has_logprobs);
    free(content);
}

static void anthropic_reply_without_usage_is_estimated(void **state)
{
    static const char body[] =
        "{\"content\":[{\"type\":\"text\",\"text\":\"12345678\"}]}";
    struct ks_model_reply reply;
    char *content = NULL;

    (void)state;
    assert_int_equal(parse(body, &content, &reply), KS_OK);
    assert_int_equal(reply.input_tokens, 99);
    assert_int_equal(reply.output_tokens, 3);
    assert_string_equal(reply.stop_reason, "");
    free(content);
}

static void anthropic_reply_that_is_not_a_message_is_upstream(void **state)
{
    static const char *const bodies[] = {
        "{\"id\":\"msg_1\",\"content\":[{\"type\":\"text\",\"te",
        "{\"type\":\"message\"}",
        "{\"content\":\"text\"}",
        "{\"content\":[{\"type\":\"tool_use\",\"input\":{}}]}",
        "[]",
    };
    struct ks_model_reply reply;
    char *content = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        assert_int_equal(parse(bodies[i], &content, &reply), KS_ERR_UPSTREAM);
        assert_null(content);
        assert_true(reply.detail[0] != '\0');
    }
}

static void anthropic_error_type_goes_into_the_detail(void **state)
{
    static const char body[] = "{\"type\":\"error\",\"error\":{\"type\":"
                               "\"overloaded_error\",\"message\":\"busy\"}}";
    struct ks_model_reply reply = {0};

    (void)state;
    snprintf(reply.detail, sizeof(reply.detail), "HTTP 529");
    ks_model_anthropic_error(body, strlen(body), &reply);
    assert_string_equal(reply.detail, "HTTP 529 overloaded_error");
    snprintf(reply.detail, sizeof(reply.detail), "HTTP 502");
    ks_model_anthropic_error("<html>", 6, &reply);
    assert_string_equal(reply.detail, "HTTP 502");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(anthropic_body_puts_the_input_in_one_user_turn),
        cmocka_unit_test(anthropic_body_moves_system_messages_into_system),
        cmocka_unit_test(anthropic_body_without_any_prompt_has_no_system),
        cmocka_unit_test(anthropic_reply_joins_text_blocks_and_reads_usage),
        cmocka_unit_test(anthropic_reply_without_usage_is_estimated),
        cmocka_unit_test(anthropic_reply_that_is_not_a_message_is_upstream),
        cmocka_unit_test(anthropic_error_type_goes_into_the_detail),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
