/*
 * jparse.h - a strict JSON parser for the envelope decoders: one pass over
 * the text into a flat array of nodes, with every string unescaped into
 * one buffer, so a decode makes one or two allocations instead of a cJSON
 * tree's one per node, key and string.
 *
 * What it accepts is exactly what cJSON 1.7.15's cJSON_ParseWithLengthOpts
 * accepted behind the codec's old raw-text scan (json.c's history), with
 * the same error offsets, so the codec's decisions and details did not
 * change: bytes 0..32 are whitespace between tokens (cJSON's rule), only
 * " \t\r\n" may follow the value, a UTF-8 byte order mark is skipped,
 * numbers are what strtod reads from the run of [0-9+-eE.] bytes there
 * (leading zeros and "1." pass, 1e400 reads as infinity and is left to
 * the range checks), strings take raw bytes as they are (no UTF-8 check,
 * like cJSON), lone or reversed UTF-16 surrogates are refused. One
 * deliberate difference: cJSON read a \u escape with a non-hex digit as
 * U+0000 and silently cut the string there; it is a syntax error here.
 *
 * Nesting deeper than max_depth is reported as JPARSE_TOO_DEEP even when a
 * syntax error comes first or later (the old scan ran before cJSON), and
 * nesting past 1000 levels is a syntax error, as in cJSON. A NUL in a
 * string (raw, or \u0000) is reported after a clean parse.
 *
 * Ownership: a struct jdoc owns its nodes and strings until jdoc_fini;
 * pointers from the accessors are borrowed, valid until then. The input is
 * not kept. Thread rule: a jdoc is used by one thread at a time.
 */
#ifndef KASCADE_COMMON_WIRE_JPARSE_H
#define KASCADE_COMMON_WIRE_JPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jtype {
    JT_NULL = 0,
    JT_FALSE,
    JT_TRUE,
    JT_NUMBER,
    JT_STRING,
    JT_ARRAY,
    JT_OBJECT,
};

/* One value. Index 0 is the root; a next or first of 0 means none. */
struct jnode {
    union {
        double num;   /* JT_NUMBER */
        uint32_t str; /* JT_STRING: offset of its text in jdoc.strs */
        struct {
            uint32_t first; /* first child */
            uint32_t count; /* children */
        } kids;             /* JT_ARRAY, JT_OBJECT */
    } u;
    uint32_t next;  /* next sibling in the parent */
    uint32_t key;   /* members of an object: offset of the key in strs */
    uint32_t start; /* byte offsets of the value in the input */
    uint32_t end;
    uint8_t type; /* enum jtype */
};

/* Enough nodes for a small envelope without touching the heap. */
#define JDOC_LOCAL_NODES 48

struct jdoc {
    struct jnode *nodes; /* local or heap */
    uint32_t n_nodes;
    uint32_t cap_nodes;
    char *strs; /* NUL-terminated strings, back to back */
    size_t n_strs;
    struct jnode local[JDOC_LOCAL_NODES];
};

enum jparse_status {
    JPARSE_OK = 0,
    JPARSE_TOO_DEEP, /* nested deeper than max_depth */
    JPARSE_SYNTAX,   /* *where is the byte offset of the error */
    JPARSE_HAS_NUL,  /* a string holds a NUL byte or \u0000 */
    JPARSE_NOMEM,
};

/* Parses len bytes (no NUL needed) holding one JSON value and nothing else
 * but whitespace. On JPARSE_OK the root is jdoc_root(doc); on any other
 * status doc holds nothing. Either way call jdoc_fini. */
enum jparse_status jparse(struct jdoc *doc,
                          const char *buf,
                          size_t len,
                          int max_depth,
                          size_t *where);

/* Frees what doc holds; safe on a zeroed or failed doc. */
void jdoc_fini(struct jdoc *doc);

static inline const struct jnode *jdoc_root(const struct jdoc *doc)
{
    return &doc->nodes[0];
}

/* First child of a container, NULL when empty or not a container. */
static inline const struct jnode *jnode_first(const struct jdoc *doc,
                                              const struct jnode *n)
{
    if ((n->type != JT_ARRAY && n->type != JT_OBJECT) || !n->u.kids.first) {
        return NULL;
    }
    return &doc->nodes[n->u.kids.first];
}

static inline const struct jnode *jnode_next(const struct jdoc *doc,
                                             const struct jnode *n)
{
    return n->next ? &doc->nodes[n->next] : NULL;
}

/* The key of an object member. */
static inline const char *jnode_key(const struct jdoc *doc,
                                    const struct jnode *n)
{
    return doc->strs + n->key;
}

/* The text of a JT_STRING node. */
static inline const char *jnode_str(const struct jdoc *doc,
                                    const struct jnode *n)
{
    return doc->strs + n->u.str;
}

/* The first member of obj named key (NULL when absent). */
const struct jnode *jnode_get(const struct jdoc *doc,
                              const struct jnode *obj,
                              const char *key);

#define JNODE_FOREACH(doc, it, parent)                                         \
    for (const struct jnode *it = jnode_first(doc, parent); it;                \
         it = jnode_next(doc, it))

#endif
