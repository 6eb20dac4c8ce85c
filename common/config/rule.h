/*
 * rule.h - a routing rule's pattern (routing.rules[].pattern): PCRE2,
 * compiled once at config load (with JIT when the platform has it) and
 * matched with a bounded cost, so no pattern and no input can hold the
 * router's thread (docs/design.md section 5).
 *
 * Syntax is PCRE2's, case-insensitive, UTF-8 (invalid UTF-8 in a text is
 * tolerated), with `.` matching newlines and `$` only at the end (as the
 * POSIX patterns of earlier versions did). The cost is bounded by a match
 * limit over the whole text, not per start position: the pattern P is
 * matched as the anchored \A(?s:.*?)(?:P), so PCRE2's limit counts every
 * start position together. A match that reaches the limit (or the depth,
 * heap or JIT stack limit) is reported as KS_RULE_LIMIT, never as a match.
 *
 * A compiled pattern is immutable: ks_rule_re_match may be called from
 * any thread at once.
 */
#ifndef KASCADE_COMMON_CONFIG_RULE_H
#define KASCADE_COMMON_CONFIG_RULE_H

#include <stddef.h>
#include <stdint.h>

struct ks_rule_re;

enum ks_rule_match {
    KS_RULE_NO_MATCH = 0,
    KS_RULE_MATCH,
    KS_RULE_LIMIT, /* gave up at a limit: counts as no match */
};

/* The match limit when routing.rules_match_limit is not set. */
#define KS_RULE_MATCH_LIMIT_DEFAULT 1000000

/* Compiles pattern with match_limit (PCRE2 match-loop steps over a whole
 * text). Returns a new pattern the caller owns, or NULL with PCRE2's
 * reason and the offset in errstr. */
struct ks_rule_re *ks_rule_re_new(const char *pattern,
                                  uint32_t match_limit,
                                  char *errstr,
                                  size_t errstr_size);

/* Accepts NULL. */
void ks_rule_re_destroy(struct ks_rule_re *re);

/* Does re occur in the len bytes of text (borrowed; need not be
 * NUL-terminated)? */
enum ks_rule_match ks_rule_re_match(const struct ks_rule_re *re,
                                    const char *text,
                                    size_t len);

/* Like ks_rule_re_match; on a match, the first occurrence's span in
 * [*start, *end): the pattern's first capture group when it has one that
 * took part, else the whole occurrence. */
enum ks_rule_match ks_rule_re_find(const struct ks_rule_re *re,
                                   const char *text,
                                   size_t len,
                                   size_t *start,
                                   size_t *end);

#endif
