/*
 * fuzz_jparse.c - the JSON parser of the codec (common/wire/jparse.c)
 * against the reference it replaced: the codec's old raw-text scan for
 * nesting and NULs, then cJSON_ParseWithLengthOpts, then " \t\r\n" to the
 * end. Both must give the same status and error offset, and on success
 * the same tree (types, keys, strings, numbers, order).
 *
 * The one accepted difference: cJSON read a \u escape with a non-hex
 * digit as U+0000 and cut the string there; jparse refuses it as a syntax
 * error at the backslash.
 *
 * Inputs of odd length use a depth cap of 8, even ones 2000 (past cJSON's
 * own limit of 1000, which is then a syntax error).
 */
#include <math.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "wire/jparse.h"

#include "base/banned.h"

/* The codec's old json_scan_text. */
static void ref_scan(const char *s, size_t len, int cap, int *dp, bool *nul)
{
    bool in_str = false;
    int depth = 0;

    *dp = 0;
    *nul = false;
    for (size_t i = 0; i < len && *dp <= cap; i++) {
        if (in_str && s[i] == '\\') {
            if (len - i > 5 && memcmp(s + i + 1, "u0000", 5) == 0) {
                *nul = true;
            }
            i++;
        } else if (in_str && s[i] == '\0') {
            *nul = true;
        } else if (s[i] == '"') {
            in_str = !in_str;
        } else if (!in_str && (s[i] == '{' || s[i] == '[')) {
            depth++;
            *dp = depth > *dp ? depth : *dp;
        } else if (!in_str && (s[i] == '}' || s[i] == ']')) {
            depth--;
        }
    }
}

/* The codec's old json_parse, as a jparse status. */
static enum jparse_status ref_parse(
    const char *buf, size_t len, int max_depth, cJSON **rootp, size_t *where)
{
    const char *end = NULL;
    bool nul;
    int depth;

    *rootp = NULL;
    *where = 0;
    ref_scan(buf, len, max_depth, &depth, &nul);
    if (depth > max_depth) {
        return JPARSE_TOO_DEEP;
    }
    *rootp = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (end) {
        while (end < buf + len &&
               (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) {
            end++;
        }
        *where = (size_t)(end - buf);
    }
    if (!*rootp || *where != len) {
        return JPARSE_SYNTAX;
    }
    return nul ? JPARSE_HAS_NUL : JPARSE_OK;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* The known difference: a \u escape at where with a non-hex digit in it
 * or in the low surrogate after it. */
static bool bad_hex_at(const uint8_t *s, size_t len, size_t where)
{
    for (size_t at = where; at + 1 < len && s[at] == '\\' && s[at + 1] == 'u';
         at += 6) {
        for (size_t i = at + 2; i < at + 6 && i < len; i++) {
            if (!is_hex(s[i])) {
                return true;
            }
        }
        if (at != where) {
            break;
        }
    }
    return false;
}

static void same_tree(const struct jdoc *doc,
                      const struct jnode *n,
                      const cJSON *c)
{
    static const int types[] = {
        [JT_NULL] = cJSON_NULL,     [JT_FALSE] = cJSON_False,
        [JT_TRUE] = cJSON_True,     [JT_NUMBER] = cJSON_Number,
        [JT_STRING] = cJSON_String, [JT_ARRAY] = cJSON_Array,
        [JT_OBJECT] = cJSON_Object,
    };
    const struct jnode *it;
    const cJSON *ci;

    if (types[n->type] != (c->type & 0xff)) {
        abort();
    }
    if (n->type == JT_STRING && strcmp(jnode_str(doc, n), c->valuestring)) {
        abort();
    }
    if (n->type == JT_NUMBER &&
        memcmp(&n->u.num, &c->valuedouble, sizeof(double))) {
        abort();
    }
    if (n->type != JT_ARRAY && n->type != JT_OBJECT) {
        return;
    }
    if ((int)n->u.kids.count != cJSON_GetArraySize(c)) {
        abort();
    }
    for (it = jnode_first(doc, n), ci = c->child; it && ci;
         it = jnode_next(doc, it), ci = ci->next) {
        if (n->type == JT_OBJECT && strcmp(jnode_key(doc, it), ci->string)) {
            abort();
        }
        same_tree(doc, it, ci);
    }
    if (it || ci) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int max_depth = size % 2 ? 8 : 2000;
    enum jparse_status got, want;
    size_t got_at, want_at;
    struct jdoc doc;
    cJSON *root;

    got = jparse(&doc, (const char *)data, size, max_depth, &got_at);
    want = ref_parse((const char *)data, size, max_depth, &root, &want_at);
    if (got == JPARSE_SYNTAX && want != JPARSE_TOO_DEEP &&
        bad_hex_at(data, size, got_at)) {
        goto out; /* cJSON read the bad escape as U+0000 */
    }
    if (got != want) {
        abort();
    }
    if (got == JPARSE_SYNTAX && got_at != want_at) {
        abort();
    }
    if (got == JPARSE_OK) {
        same_tree(&doc, jdoc_root(&doc), root);
    }

out:
    jdoc_fini(&doc);
    cJSON_Delete(root);
    return 0;
}
