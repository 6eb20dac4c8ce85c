/*
 * verify_internal.h - what the verifier's files share (verify.c: the
 * checks; verify_num.c: numbers and arithmetic in text; verify_model.c:
 * features, scoring, training; outcome.c: labelled outcome lines). Not
 * for callers outside common/learn/. Pure functions, any thread.
 */
#ifndef KASCADE_COMMON_LEARN_VERIFY_INTERNAL_H
#define KASCADE_COMMON_LEARN_VERIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/rule.h"

/* Numbers looked at in one text; the rest are ignored. */
#define VERIFY_MAX_NUMBERS 1024

/* A number written in a text: "1,200", "-3.5", "$18", "2.50". */
struct vnum {
    double v;
    int decimals; /* digits written after the point */
};

/* The numbers of text[0..len) in order, at most max. Returns the count. */
size_t verify_numbers(const char *text,
                      size_t len,
                      struct vnum *out,
                      size_t max);

/* Arithmetic statements "a op b [op c ...] = r" of text (op: + - * / x
 * and the Unicode times, divide and minus signs; * and / before + and -).
 * *n_stmt counts them, *n_wrong those whose left side does not give r
 * (within the rounding r is written with); *last is the r of the last
 * statement (unset when there is none). */
void verify_arith(const char *text,
                  size_t len,
                  size_t *n_stmt,
                  size_t *n_wrong,
                  double *last);

/* The results r of text's arithmetic statements, at most max. Returns the
 * count. */
size_t verify_arith_results(const char *text,
                            size_t len,
                            struct vnum *out,
                            size_t max);

/* Numbers written as English words in text ("three", "twenty", "dozen",
 * "half", "twice"), one word each, at most max; appended after the n
 * already in out. Returns the new count. */
size_t verify_number_words(
    const char *text, size_t len, struct vnum *out, size_t n, size_t max);

/* Is v (within 1e-9 relative) among nums? */
bool verify_num_in(double v, const struct vnum *nums, size_t n);

/* Parses the first number of s (after "$", blanks); false when none. */
bool verify_parse_number(const char *s, double *v, int *decimals);

/* verify_final.c: the final answers of a text. */
#define FINAL_MAX   8  /* candidates kept */
#define FINAL_LEN   64 /* bytes of one candidate */
#define PATTERN_MAX 64 /* occurrences of a pattern looked at */

struct finals {
    char c[FINAL_MAX][FINAL_LEN];
    size_t n;    /* candidates found (may exceed FINAL_MAX) */
    size_t kept; /* in c */
    bool format; /* the pattern matched / the schema passed */
};


/* The final answers of t[0..len) (see verify_final.c), with the type's
 * pattern re and the task's schema text (either may be NULL). */
void verify_finals(const char *t,
                   size_t len,
                   const struct ks_rule_re *re,
                   const char *schema,
                   struct finals *f);

#endif
