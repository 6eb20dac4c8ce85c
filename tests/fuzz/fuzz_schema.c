/*
 * fuzz_schema.c - the output_schema checker (ks_schema_check): both the
 * schema (from the producer) and the answer (from a model, which text in
 * the task can steer) are outside input. The input is the schema's JSON,
 * a newline, then the answer's JSON.
 */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "wire/schema.h"

#include "base/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    cJSON *schema;
    cJSON *value;
    char why[256];

    if (!nl) {
        return 0;
    }
    schema = cJSON_ParseWithLength((const char *)data, (size_t)(nl - data));
    value = cJSON_ParseWithLength((const char *)nl + 1,
                                  size - (size_t)(nl - data) - 1);
    if (schema && value) {
        (void)ks_schema_check(schema, value, why, sizeof(why));
    }
    cJSON_Delete(value);
    cJSON_Delete(schema);
    return 0;
}
