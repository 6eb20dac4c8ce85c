/*
 * fuzz_openai.c - the OpenAI chat-completions reply parser
 * (ks_model_openai_parse) on any body a provider could send with a 200.
 */
#include "fuzz.h"
#include "llm/openai.h"

#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ks_model_reply reply;
    char *content = NULL;

    memset(&reply, 0, sizeof(reply));
    if (ks_model_openai_parse((const char *)data, size, 100, &content,
                              &reply) == KS_OK &&
        !content) {
        abort();
    }
    free(content);
    ks_model_reply_free_more(&reply);
    return 0;
}
