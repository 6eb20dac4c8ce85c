/*
 * fuzz_anthropic.c - the Anthropic Messages reply parser
 * (ks_model_anthropic_parse) on any body a provider could send with a 200.
 */
#include "fuzz.h"
#include "llm/anthropic.h"

#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ks_model_reply reply;
    char *content = NULL;

    memset(&reply, 0, sizeof(reply));
    if (ks_model_anthropic_parse((const char *)data, size, 100, &content,
                                 &reply) == KS_OK &&
        !content) {
        abort();
    }
    free(content);
    return 0;
}
