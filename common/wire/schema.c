/*
 * schema.c - the JSON Schema subset of schema.h, walked recursively with a
 * path for the error ("$.items[2].name") and a depth cap.
 */
#include "wire/schema.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/banned.h"

#define SCHEMA_MAX_DEPTH 32
#define PATH_MAX_LEN     256

static int fail(char *why, size_t size, const char *path, const char *what)
{
    snprintf(why, size, "%s: %s", path, what);
    return -1;
}

static bool type_is(const char *type, const cJSON *v)
{
    if (strcmp(type, "object") == 0) {
        return cJSON_IsObject(v);
    }
    if (strcmp(type, "array") == 0) {
        return cJSON_IsArray(v);
    }
    if (strcmp(type, "string") == 0) {
        return cJSON_IsString(v);
    }
    if (strcmp(type, "number") == 0) {
        return cJSON_IsNumber(v);
    }
    if (strcmp(type, "integer") == 0) {
        return cJSON_IsNumber(v) && floor(v->valuedouble) == v->valuedouble;
    }
    if (strcmp(type, "boolean") == 0) {
        return cJSON_IsBool(v);
    }
    if (strcmp(type, "null") == 0) {
        return cJSON_IsNull(v);
    }
    return true; /* an unknown type name constrains nothing */
}

static bool type_ok(const cJSON *type, const cJSON *v)
{
    const cJSON *t;

    if (cJSON_IsString(type)) {
        return type_is(type->valuestring, v);
    }
    if (cJSON_IsArray(type)) {
        cJSON_ArrayForEach(t, type) {
            if (cJSON_IsString(t) && type_is(t->valuestring, v)) {
                return true;
            }
        }
        return false;
    }
    return true;
}

static bool in_enum(const cJSON *en, const cJSON *v)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, en) {
        if (cJSON_Compare(e, v, true)) {
            return true;
        }
    }
    return false;
}

static int check(const cJSON *s,
                 const cJSON *v,
                 const char *path,
                 int depth,
                 char *why,
                 size_t size);

static int check_object(const cJSON *s,
                        const cJSON *v,
                        const char *path,
                        int depth,
                        char *why,
                        size_t size)
{
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *addl =
        cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    const cJSON *item;
    char sub[PATH_MAX_LEN];

    cJSON_ArrayForEach(item, req) {
        if (cJSON_IsString(item) &&
            !cJSON_GetObjectItemCaseSensitive(v, item->valuestring)) {
            snprintf(sub, sizeof(sub), "missing required '%s'",
                     item->valuestring);
            return fail(why, size, path, sub);
        }
    }
    cJSON_ArrayForEach(item, v) {
        const cJSON *ps =
            cJSON_IsObject(props)
                ? cJSON_GetObjectItemCaseSensitive(props, item->string)
                : NULL;

        snprintf(sub, sizeof(sub), "%s.%s", path, item->string);
        if (ps && check(ps, item, sub, depth + 1, why, size) != 0) {
            return -1;
        }
        if (!ps && cJSON_IsFalse(addl)) {
            return fail(why, size, sub, "not allowed");
        }
    }
    return 0;
}

static int check_bounds(
    const cJSON *s, const cJSON *v, const char *path, char *why, size_t size)
{
    const cJSON *b;

    if (cJSON_IsNumber(v)) {
        b = cJSON_GetObjectItemCaseSensitive(s, "minimum");
        if (cJSON_IsNumber(b) && v->valuedouble < b->valuedouble) {
            return fail(why, size, path, "below the minimum");
        }
        b = cJSON_GetObjectItemCaseSensitive(s, "maximum");
        if (cJSON_IsNumber(b) && v->valuedouble > b->valuedouble) {
            return fail(why, size, path, "above the maximum");
        }
    }
    if (cJSON_IsString(v)) {
        size_t len = strlen(v->valuestring);

        b = cJSON_GetObjectItemCaseSensitive(s, "minLength");
        if (cJSON_IsNumber(b) && (double)len < b->valuedouble) {
            return fail(why, size, path, "shorter than minLength");
        }
        b = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
        if (cJSON_IsNumber(b) && (double)len > b->valuedouble) {
            return fail(why, size, path, "longer than maxLength");
        }
    }
    return 0;
}

static int check(const cJSON *s,
                 const cJSON *v,
                 const char *path,
                 int depth,
                 char *why,
                 size_t size)
{
    const cJSON *type, *en, *items, *item;
    char sub[PATH_MAX_LEN];
    int i = 0;

    if (depth > SCHEMA_MAX_DEPTH) {
        return fail(why, size, path, "nested too deeply");
    }
    if (!cJSON_IsObject(s)) {
        return 0; /* true, {} or a keyword we do not read */
    }
    type = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (type && !type_ok(type, v)) {
        return fail(why, size, path, "wrong type");
    }
    en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (cJSON_IsArray(en) && !in_enum(en, v)) {
        return fail(why, size, path, "not one of the enum values");
    }
    if (check_bounds(s, v, path, why, size) != 0) {
        return -1;
    }
    if (cJSON_IsObject(v)) {
        return check_object(s, v, path, depth, why, size);
    }
    items = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (cJSON_IsArray(v) && cJSON_IsObject(items)) {
        cJSON_ArrayForEach(item, v) {
            snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
            if (check(items, item, sub, depth + 1, why, size) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

int ks_schema_check(const cJSON *schema,
                    const cJSON *value,
                    char *why,
                    size_t why_size)
{
    return check(schema, value, "$", 0, why, why_size);
}
