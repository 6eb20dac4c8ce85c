/*
 * schema.h - checks a JSON answer against a task's output_schema: the
 * subset of JSON Schema that describes answer shapes (type, enum,
 * required, properties, additionalProperties: false, items, minimum,
 * maximum, minLength, maxLength). Other keywords are ignored, so a schema
 * using them is checked only as far as this subset goes. Pure functions.
 */
#ifndef KASCADE_COMMON_WIRE_SCHEMA_H
#define KASCADE_COMMON_WIRE_SCHEMA_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Returns 0 when value satisfies schema, -1 with the first reason in why
 * ("$.label: must be one of the enum values"). Nesting is capped at 32. */
int ks_schema_check(const cJSON *schema,
                    const cJSON *value,
                    char *why,
                    size_t why_size);

#endif
