/*
 * jparse.c - the strict one-pass JSON parser of jparse.h.
 *
 * The grammar and the error offsets follow cJSON 1.7.15 step by step
 * (parse_value, parse_string, parse_number, parse_array, parse_object,
 * buffer_skip_whitespace; Debian's 1.7.15-1+deb12u4), because the codec
 * promised cJSON's decisions and "syntax error at byte N" details before, and
 * the fuzz target tests/fuzz/fuzz_jparse.c checks that against cJSON itself.
 * Debian has streaming parsers (yajl, json-c's tokener), but neither reads
 * numbers and escapes as cJSON does, so keeping the contract would have needed
 * a shim as large as this file.
 *
 * Invariants: every string is unescaped into doc->strs, whose len + 1
 * bytes always suffice (an escape never grows); nodes are numbered in
 * document order, a container before its children. Containers recurse on
 * the C stack, at most min(max_depth, 1000) levels, as cJSON did.
 */
#include "wire/jparse.h"
/* the module header stays first: it must stand alone */

#include <stdlib.h>
#include <string.h>

#include "base/banned.h"

/* cJSON's CJSON_NESTING_LIMIT: deeper is a syntax error. */
#define JP_NESTING_LIMIT 1000
/* Number text up to this long is copied for strtod on the stack. */
#define JP_NUMBER_LOCAL 64

struct jp {
    const unsigned char *s;
    size_t len;
    size_t pos;
    int depth;
    int max_depth;
    bool too_deep;
    bool has_nul;
    bool nomem;
    struct jdoc *doc;
};

/* cJSON's buffer_skip_whitespace: bytes up to 32, and one step back when
 * that reaches the end (where cJSON then reports its errors). */
static void jp_skip_ws(struct jp *p)
{
    if (p->pos >= p->len) {
        return;
    }
    while (p->pos < p->len && p->s[p->pos] <= 32) {
        p->pos++;
    }
    if (p->pos == p->len) {
        p->pos--;
    }
}

static bool jp_at(const struct jp *p, size_t i, unsigned char c)
{
    return p->pos + i < p->len && p->s[p->pos + i] == c;
}

/* A new node of type at the current position; 0 when memory is gone
 * (index 0 is the root and never returned for a child). */
static uint32_t jp_node(struct jp *p, uint8_t type)
{
    struct jdoc *doc = p->doc;
    struct jnode *n;

    if (doc->n_nodes == doc->cap_nodes) {
        uint32_t cap = doc->cap_nodes * 2;
        struct jnode *nodes;

        if (doc->nodes == doc->local) {
            nodes = malloc(cap * sizeof(*nodes));
            if (nodes) {
                memcpy(nodes, doc->local, sizeof(doc->local));
            }
        } else {
            nodes = realloc(doc->nodes, cap * sizeof(*nodes));
        }
        if (!nodes) {
            p->nomem = true;
            return 0;
        }
        doc->nodes = nodes;
        doc->cap_nodes = cap;
    }
    n = &doc->nodes[doc->n_nodes];
    memset(n, 0, sizeof(*n));
    n->type = type;
    n->start = (uint32_t)p->pos;
    return doc->n_nodes++;
}

/* cJSON's parse_hex4, except that a non-hex digit fails (cJSON read 0). */
static bool jp_hex4(const unsigned char *s, unsigned *out)
{
    unsigned h = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];

        h <<= 4;
        if (c >= '0' && c <= '9') {
            h += c - '0';
        } else if (c >= 'A' && c <= 'F') {
            h += 10u + c - 'A';
        } else if (c >= 'a' && c <= 'f') {
            h += 10u + c - 'a';
        } else {
            return false;
        }
    }
    *out = h;
    return true;
}

/* cJSON's utf16_literal_to_utf8: the escape at in (ending before end)
 * into UTF-8 at *out. Returns the escape's length, 0 when invalid. */
static size_t jp_utf16(const unsigned char *in,
                       const unsigned char *end,
                       char **out,
                       bool *nul)
{
    unsigned cp, lo;
    size_t n = 6, bytes;
    unsigned char mark = 0;

    if (end - in < 6 || !jp_hex4(in + 2, &cp) ||
        (cp >= 0xDC00 && cp <= 0xDFFF)) {
        return 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - (in + 6) < 6 || in[6] != '\\' || in[7] != 'u' ||
            !jp_hex4(in + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
            return 0;
        }
        cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
        n = 12;
    }
    bytes = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    mark = bytes == 1 ? 0 : bytes == 2 ? 0xC0 : bytes == 3 ? 0xE0 : 0xF0;
    for (size_t i = bytes - 1; i > 0; i--) {
        (*out)[i] = (char)((cp | 0x80) & 0xBF);
        cp >>= 6;
    }
    (*out)[0] = (char)(bytes > 1 ? (cp | mark) & 0xFF : cp);
    *nul = *nul || (bytes == 1 && cp == 0);
    *out += bytes;
    return n;
}

static char jp_simple_escape(unsigned char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case '"':
    case '\\':
    case '/':
        return (char)c;
    default:
        return 0;
    }
}

/* Unescapes the string body [in, end) into *out. Returns NULL on success,
 * else the position of the bad escape. */
static const unsigned char *jp_unescape(struct jp *p,
                                        const unsigned char *in,
                                        const unsigned char *end,
                                        char **out)
{
    size_t n;
    char c;

    while (in < end) {
        if (*in != '\\') {
            p->has_nul = p->has_nul || *in == '\0';
            *(*out)++ = (char)*in++;
            continue;
        }
        if (in[1] == 'u') {
            n = jp_utf16(in, end, out, &p->has_nul);
            if (n == 0) {
                return in;
            }
            in += n;
            continue;
        }
        c = jp_simple_escape(in[1]);
        if (!c) {
            return in;
        }
        *(*out)++ = c;
        in += 2;
    }
    return NULL;
}

/* The body [start, end) of a string without escapes: copied as it is. */
static void jp_copy(struct jp *p,
                    const unsigned char *start,
                    const unsigned char *end,
                    char *out)
{
    size_t n = (size_t)(end - start);

    memcpy(out, start, n);
    out[n] = '\0';
    p->has_nul = p->has_nul || memchr(start, '\0', n);
    p->doc->n_strs += n + 1;
}

/* cJSON's parse_string: the string at pos into strs; *off is its offset.
 * On failure pos is where cJSON reported it. */
static bool jp_string(struct jp *p, uint32_t *off)
{
    const unsigned char *start = p->s + p->pos + 1, *end, *bad;
    const unsigned char *limit = p->s + p->len;
    char *out;

    if (p->s[p->pos] != '"') {
        p->pos++;
        return false;
    }
    *off = (uint32_t)p->doc->n_strs;
    out = p->doc->strs + p->doc->n_strs;
    /* Most strings have no escape: two memchr and a copy. */
    end = memchr(start, '"', (size_t)(limit - start));
    if (end && !memchr(start, '\\', (size_t)(end - start))) {
        jp_copy(p, start, end, out);
        p->pos = (size_t)(end - p->s) + 1;
        return true;
    }
    for (end = start; end < limit && *end != '"'; end++) {
        if (*end == '\\' && ++end >= limit) {
            break; /* a backslash as the last byte */
        }
    }
    if (end >= limit) {
        p->pos = (size_t)(start - p->s);
        return false;
    }
    bad = jp_unescape(p, start, end, &out);
    if (bad) {
        p->pos = (size_t)(bad - p->s);
        return false;
    }
    *out++ = '\0';
    p->doc->n_strs = (size_t)(out - p->doc->strs);
    p->pos = (size_t)(end - p->s) + 1;
    return true;
}

static bool jp_number_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' ||
           c == 'E' || c == '.';
}

/* cJSON's parse_number (as Debian patched it for CVE-2023-26819): strtod
 * over a copy of the whole run of number bytes. */
static bool jp_number(struct jp *p, double *out)
{
    char local[JP_NUMBER_LOCAL], *text = local, *after = NULL;
    size_t n = 0;
    bool ok;

    while (p->pos + n < p->len && jp_number_byte(p->s[p->pos + n])) {
        n++;
    }
    if (n >= sizeof(local)) {
        text = malloc(n + 1);
        if (!text) {
            p->nomem = true;
            return false;
        }
    }
    memcpy(text, p->s + p->pos, n);
    text[n] = '\0';
    *out = strtod(text, &after);
    ok = after != text;
    if (ok) {
        p->pos += (size_t)(after - text);
    }
    if (text != local) {
        free(text);
    }
    return ok;
}

static bool jp_value(struct jp *p, uint32_t idx);

/* Enters a container: false when too deep for the caller or for cJSON. */
static bool jp_enter(struct jp *p)
{
    if (p->depth >= p->max_depth) {
        p->too_deep = true;
        return false;
    }
    if (p->depth >= JP_NESTING_LIMIT) {
        return false;
    }
    p->depth++;
    return true;
}

/* Appends a child to container idx after prev (0 for the first). */
static uint32_t jp_child(struct jp *p, uint32_t idx, uint32_t prev)
{
    uint32_t child = jp_node(p, JT_NULL);

    if (child) {
        if (prev) {
            p->doc->nodes[prev].next = child;
        } else {
            p->doc->nodes[idx].u.kids.first = child;
        }
        p->doc->nodes[idx].u.kids.count++;
    }
    return child;
}

/* The opening of a container at pos: true when it is empty (pos then at
 * its close), false with pos before the first entry otherwise. *fail says
 * the input ended. */
static bool jp_open(struct jp *p, unsigned char close, bool *fail)
{
    p->pos++;
    jp_skip_ws(p);
    *fail = false;
    if (jp_at(p, 0, close)) {
        return true;
    }
    if (p->pos >= p->len) {
        *fail = true;
    }
    p->pos--;
    return false;
}

/* Leaves a container whose entries are read: pos must be at close. */
static bool jp_close(struct jp *p, unsigned char close)
{
    if (!jp_at(p, 0, close)) {
        return false;
    }
    p->depth--;
    p->pos++;
    return true;
}

static bool jp_array(struct jp *p, uint32_t idx)
{
    uint32_t child = 0;
    bool fail;

    if (!jp_enter(p)) {
        return false;
    }
    if (jp_open(p, ']', &fail)) {
        return jp_close(p, ']');
    }
    if (fail) {
        return false;
    }
    do {
        child = jp_child(p, idx, child);
        if (!child) {
            return false;
        }
        p->pos++;
        jp_skip_ws(p);
        p->doc->nodes[child].start = (uint32_t)p->pos;
        if (!jp_value(p, child)) {
            return false;
        }
        jp_skip_ws(p);
    } while (jp_at(p, 0, ','));
    return jp_close(p, ']');
}

static bool jp_member(struct jp *p, uint32_t child)
{
    uint32_t key = 0;

    p->pos++;
    jp_skip_ws(p);
    if (p->pos >= p->len || !jp_string(p, &key)) {
        return false;
    }
    p->doc->nodes[child].key = key;
    jp_skip_ws(p);
    if (!jp_at(p, 0, ':')) {
        return false;
    }
    p->pos++;
    jp_skip_ws(p);
    p->doc->nodes[child].start = (uint32_t)p->pos;
    if (!jp_value(p, child)) {
        return false;
    }
    jp_skip_ws(p);
    return true;
}

static bool jp_object(struct jp *p, uint32_t idx)
{
    uint32_t child = 0;
    bool fail;

    if (!jp_enter(p)) {
        return false;
    }
    if (jp_open(p, '}', &fail)) {
        return jp_close(p, '}');
    }
    if (fail) {
        return false;
    }
    do {
        child = jp_child(p, idx, child);
        if (!child || !jp_member(p, child)) {
            return false;
        }
    } while (jp_at(p, 0, ','));
    return jp_close(p, '}');
}

/* null, true or false at pos into n; false when it is none of them. */
static bool jp_literal(struct jp *p, struct jnode *n, unsigned char c)
{
    static const struct {
        const char *word;
        size_t len;
        uint8_t type;
    } lits[] = {
        {"null", 4, JT_NULL},
        {"true", 4, JT_TRUE},
        {"false", 5, JT_FALSE},
    };
    size_t i = c == 'n' ? 0 : c == 't' ? 1 : 2;

    if (p->pos + lits[i].len > p->len ||
        memcmp(p->s + p->pos, lits[i].word, lits[i].len) != 0) {
        return false;
    }
    n->type = lits[i].type;
    p->pos += lits[i].len;
    return true;
}

/* cJSON's parse_value, into the node idx (its start already set). */
static bool jp_value(struct jp *p, uint32_t idx)
{
    struct jnode *n = &p->doc->nodes[idx];
    unsigned char c;
    bool ok;

    if (p->pos >= p->len) {
        return false;
    }
    c = p->s[p->pos];
    if (c == '"') {
        n->type = JT_STRING;
        ok = jp_string(p, &n->u.str);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        n->type = JT_NUMBER;
        ok = jp_number(p, &n->u.num);
    } else if (c == '[' || c == '{') {
        n->type = c == '[' ? JT_ARRAY : JT_OBJECT;
        ok = c == '[' ? jp_array(p, idx) : jp_object(p, idx);
        n = &p->doc->nodes[idx]; /* the children may have moved it */
    } else if (c == 'n' || c == 't' || c == 'f') {
        ok = jp_literal(p, n, c);
    } else {
        return false;
    }
    n->end = (uint32_t)p->pos;
    return ok;
}

/* The codec's old raw-text scan, kept for the error path only: does any
 * bracket outside a string nest deeper than cap? Decides TOO_DEEP over a
 * syntax error, as when the scan ran before cJSON. */
static bool jp_scan_too_deep(const char *s, size_t len, int cap)
{
    bool in_str = false;
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        if (in_str && s[i] == '\\') {
            i++;
        } else if (s[i] == '"') {
            in_str = !in_str;
        } else if (!in_str && (s[i] == '{' || s[i] == '[')) {
            if (++depth > cap) {
                return true;
            }
        } else if (!in_str && (s[i] == '}' || s[i] == ']')) {
            depth--;
        }
    }
    return false;
}

/* The end of the value, or where cJSON reported a syntax error (its
 * offset, or the last byte when that is past the end); then past
 * " \t\r\n" as the codec always did. */
static size_t jp_where(const struct jp *p, bool ok)
{
    size_t w = ok || p->pos < p->len ? p->pos : p->len ? p->len - 1 : 0;

    while (w < p->len && (p->s[w] == ' ' || p->s[w] == '\t' ||
                          p->s[w] == '\r' || p->s[w] == '\n')) {
        w++;
    }
    return w;
}

static bool jp_document(struct jp *p)
{
    if (p->len == 0) {
        return false;
    }
    if (p->len > 4 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0) {
        p->pos = 3;
    }
    jp_skip_ws(p);
    if (jp_node(p, JT_NULL) != 0 || !jp_value(p, 0)) {
        return false;
    }
    return true;
}

enum jparse_status jparse(
    struct jdoc *doc, const char *buf, size_t len, int max_depth, size_t *where)
{
    struct jp p = {
        .s = (const unsigned char *)buf,
        .len = len,
        .max_depth = max_depth,
        .doc = doc,
    };
    bool ok;

    memset(doc, 0, offsetof(struct jdoc, local));
    doc->nodes = doc->local;
    doc->cap_nodes = JDOC_LOCAL_NODES;
    *where = 0;
    if (len >= UINT32_MAX) {
        return JPARSE_NOMEM; /* offsets are 32 bits; caps are far below */
    }
    doc->strs = malloc(len + 1);
    if (!doc->strs) {
        return JPARSE_NOMEM;
    }
    ok = jp_document(&p);
    *where = jp_where(&p, ok);
    if (ok && *where != len) {
        ok = false; /* bytes after the value */
    }
    if (p.too_deep ||
        (!ok && !p.nomem && jp_scan_too_deep(buf, len, max_depth))) {
        jdoc_fini(doc);
        return JPARSE_TOO_DEEP;
    }
    if (!ok) {
        jdoc_fini(doc);
        return p.nomem ? JPARSE_NOMEM : JPARSE_SYNTAX;
    }
    if (p.has_nul) {
        jdoc_fini(doc);
        return JPARSE_HAS_NUL;
    }
    return JPARSE_OK;
}

void jdoc_fini(struct jdoc *doc)
{
    if (doc->nodes && doc->nodes != doc->local) {
        free(doc->nodes);
    }
    free(doc->strs);
    doc->nodes = doc->local;
    doc->strs = NULL;
    doc->n_nodes = 0;
    doc->n_strs = 0;
}

const struct jnode *jnode_get(const struct jdoc *doc,
                              const struct jnode *obj,
                              const char *key)
{
    if (obj->type != JT_OBJECT) {
        return NULL;
    }
    JNODE_FOREACH(doc, it, obj)
    {
        const char *k = jnode_key(doc, it);

        if (k[0] == key[0] && strcmp(k, key) == 0) {
            return it;
        }
    }
    return NULL;
}
