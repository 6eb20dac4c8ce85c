/*
 * test_model_openai.c - the OpenAI chat-completions dialect of the model
 * client with several answers per call (agreement's samples): the body
 * asks for "n" only when n > 1, and the reply's other choices come back
 * in reply->more, in order, capped, with usage covering all of them.
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

#include "llm/openai.h"

#include "base/banned.h"

static struct ks_provider_cfg prov = {
    .kind = "openai", .base_url = "http://h/v1", .model = "gpt-test"};

static cJSON *body_of(unsigned n)
{
    struct ks_task task = {.id = "t", .type = "x", .input = "hello"};
    char *body = ks_model_openai_body(&prov, &task, "sys", 77, n);
    cJSON *root;

    assert_non_null(body);
    root = cJSON_Parse(body);
    cJSON_free(body);
    assert_non_null(root);
    return root;
}

static void openai_body_asks_for_n_only_above_one(void **state)
{
    cJSON *one = body_of(1), *three = body_of(3);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(three, "n");

    (void)state;
    assert_null(cJSON_GetObjectItemCaseSensitive(one, "n"));
    assert_true(cJSON_IsNumber(n));
    assert_int_equal(n->valueint, 3);
    cJSON_Delete(one);
    cJSON_Delete(three);
}

/* A reply with `count` choices "a0".."a<count-1>", usage 10 + 4 each. */
static char *reply_with(int count)
{
    cJSON *root = cJSON_CreateObject(), *choices, *usage;
    char text[16], *out;

    choices = cJSON_AddArrayToObject(root, "choices");
    for (int i = 0; i < count; i++) {
        cJSON *c = cJSON_CreateObject(), *m;

        snprintf(text, sizeof(text), "a%d", i);
        cJSON_AddNumberToObject(c, "index", i);
        m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddStringToObject(c, "finish_reason", "stop");
        cJSON_AddItemToArray(choices, c);
    }
    usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", 10);
    cJSON_AddNumberToObject(usage, "completion_tokens", 4 * count);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static void parse(int count, struct ks_model_reply *r, char **content)
{
    char *body = reply_with(count);

    memset(r, 0, sizeof(*r));
    assert_int_equal(ks_model_openai_parse(body, strlen(body), 99, content, r),
                     KS_OK);
    cJSON_free(body);
}

static void openai_parse_keeps_every_choice_in_order(void **state)
{
    struct ks_model_reply r;
    char *content;

    (void)state;
    parse(3, &r, &content);
    assert_string_equal(content, "a0");
    assert_int_equal(r.n_more, 2);
    assert_string_equal(r.more[0], "a1");
    assert_string_equal(r.more[1], "a2");
    assert_int_equal(r.input_tokens, 10);
    assert_int_equal(r.output_tokens, 12); /* usage covers all three */
    free(content);
    ks_model_reply_free_more(&r);
    assert_null(r.more);
    assert_int_equal(r.n_more, 0);
}

static void openai_parse_of_one_choice_has_no_more(void **state)
{
    struct ks_model_reply r;
    char *content;

    (void)state;
    parse(1, &r, &content);
    assert_string_equal(content, "a0");
    assert_int_equal(r.n_more, 0);
    assert_null(r.more);
    free(content);
    ks_model_reply_free_more(&r); /* accepts a reply without any */
}

static void openai_parse_caps_the_choices(void **state)
{
    struct ks_model_reply r;
    char *content;

    (void)state;
    parse(40, &r, &content);
    assert_int_equal(r.n_more, KS_MODEL_MAX_CHOICES - 1);
    assert_string_equal(r.more[KS_MODEL_MAX_CHOICES - 2], "a15");
    free(content);
    ks_model_reply_free_more(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(openai_body_asks_for_n_only_above_one),
        cmocka_unit_test(openai_parse_keeps_every_choice_in_order),
        cmocka_unit_test(openai_parse_of_one_choice_has_no_more),
        cmocka_unit_test(openai_parse_caps_the_choices),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
