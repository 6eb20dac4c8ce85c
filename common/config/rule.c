/*
 * rule.c - routing-rule patterns with PCRE2 (see rule.h for the syntax
 * and the bound).
 *
 * Why the wrapper: PCRE2's match limit restarts at each start position of
 * an unanchored match, so a quadratic pattern on a 16 KiB text could
 * still take seconds under any per-position limit. Anchored at \A with a
 * lazy prefix, the search over start positions is one match and the
 * limit bounds all of it. The user's pattern is compiled alone first, so
 * its errors name its own offsets, and the wrapper never changes what it
 * means (a pattern that would escape the wrapper, such as an unterminated
 * \Q or a start-of-pattern (*VERB), is refused).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rule.h"

#include <stdio.h>
#include <stdlib.h>

#include <pcre2.h>

#include "base/util.h"

/* valgrind's client request, when its header is there: see ks_rule_re_new. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "base/banned.h"

/* Bounds of one match besides the step limit: backtracking depth of the
 * interpreter and its heap (KiB); the JIT uses its default 32 KiB stack. */
#define RULE_DEPTH_LIMIT    10000
#define RULE_HEAP_LIMIT_KIB 16384

#define RULE_OPTIONS                                                           \
    (PCRE2_CASELESS | PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY | PCRE2_UTF |        \
     PCRE2_MATCH_INVALID_UTF)

struct ks_rule_re {
    pcre2_code *code;
    pcre2_match_context *mctx;
};

static pcre2_code *compile(const char *pattern, char *errstr, size_t size)
{
    PCRE2_SIZE off = 0;
    int rc = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                     RULE_OPTIONS, &rc, &off, NULL);

    if (!code) {
        PCRE2_UCHAR why[160];

        pcre2_get_error_message(rc, why, sizeof(why));
        snprintf(errstr, size, "%s at offset %zu", (const char *)why,
                 (size_t)off);
    }
    return code;
}

struct ks_rule_re *ks_rule_re_new(const char *pattern,
                                  uint32_t match_limit,
                                  char *errstr,
                                  size_t errstr_size)
{
    struct ks_rule_re *re;
    pcre2_code *alone;
    struct ks_buf wrapped;
    char why[8];

    alone = compile(pattern, errstr, errstr_size);
    if (!alone) {
        return NULL;
    }
    pcre2_code_free(alone);
    re = ks_xcalloc(1, sizeof(*re));
    ks_buf_init(&wrapped);
    ks_buf_printf(&wrapped, "\\A(?s:.*?)((?:%s))", pattern);
    re->code = compile(wrapped.data, why, sizeof(why));
    ks_buf_fini(&wrapped);
    if (!re->code) {
        snprintf(errstr, errstr_size,
                 "cannot be matched with a bound (an unterminated \\Q, a "
                 "comment to the end, or a start-of-pattern (*...) item)");
        ks_rule_re_destroy(re);
        return NULL;
    }
    /* JIT when the platform has it; the interpreter otherwise (same
     * results, same limits, slower). Under valgrind, the interpreter:
     * PCRE2's JIT code reads stack bytes memcheck cannot know are set
     * (PCRE2 is not built for valgrind), and those reports would bury
     * kascade's own (`tests/run.sh BUILD memcheck`). */
    if (!RUNNING_ON_VALGRIND) {
        (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    }
    re->mctx = pcre2_match_context_create(NULL);
    if (!re->mctx) {
        snprintf(errstr, errstr_size, "out of memory");
        ks_rule_re_destroy(re);
        return NULL;
    }
    pcre2_set_match_limit(re->mctx, match_limit);
    pcre2_set_depth_limit(re->mctx, RULE_DEPTH_LIMIT);
    pcre2_set_heap_limit(re->mctx, RULE_HEAP_LIMIT_KIB);
    return re;
}

void ks_rule_re_destroy(struct ks_rule_re *re)
{
    if (!re) {
        return;
    }
    pcre2_match_context_free(re->mctx);
    pcre2_code_free(re->code);
    free(re);
}

enum ks_rule_match ks_rule_re_match(const struct ks_rule_re *re,
                                    const char *text,
                                    size_t len)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc;

    if (!md) {
        return KS_RULE_LIMIT; /* out of memory: gave up */
    }
    rc = pcre2_match(re->code, (PCRE2_SPTR)text, len, 0, 0, md, re->mctx);
    pcre2_match_data_free(md);
    if (rc >= 0) {
        return KS_RULE_MATCH;
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
        return KS_RULE_NO_MATCH;
    }
    /* MATCHLIMIT, DEPTHLIMIT, HEAPLIMIT, JIT_STACKLIMIT, NOMEMORY: all
     * mean "gave up", which must never read as a match. */
    return KS_RULE_LIMIT;
}

enum ks_rule_match ks_rule_re_find(const struct ks_rule_re *re,
                                   const char *text,
                                   size_t len,
                                   size_t *start,
                                   size_t *end)
{
    pcre2_match_data *md = pcre2_match_data_create(3, NULL);
    PCRE2_SIZE *ov;
    int rc;

    if (!md) {
        return KS_RULE_LIMIT;
    }
    rc = pcre2_match(re->code, (PCRE2_SPTR)text, len, 0, 0, md, re->mctx);
    if (rc < 0) {
        pcre2_match_data_free(md);
        return rc == PCRE2_ERROR_NOMATCH ? KS_RULE_NO_MATCH : KS_RULE_LIMIT;
    }
    /* Group 1 is the whole pattern (the wrapper's), group 2 the pattern's
     * own first group when it has one and it took part. */
    ov = pcre2_get_ovector_pointer(md);
    if (rc >= 3 && ov[4] != PCRE2_UNSET) {
        *start = ov[4];
        *end = ov[5];
    } else {
        *start = ov[2];
        *end = ov[3];
    }
    pcre2_match_data_free(md);
    return KS_RULE_MATCH;
}
