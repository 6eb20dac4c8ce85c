/*
 * verify.c - the verifier's checks of an answer (verify.h): format, final
 * answer, arithmetic, truncation, repetition, refusal, hedging, length,
 * numbers, logprobs. Every check is generic: what a task's format is comes
 * from its output_schema or its type's answer_pattern, never from code.
 * Texts are looked at up to KS_LR_MAX_TEXT bytes, like the n-grams.
 */
#include "learn/verify.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "learn/lr_internal.h"
#include "learn/verify_internal.h"

#include "base/banned.h"

static const char *const check_names[] = {
    "format_ok",      "format_fail",     "format_none",   "final_found",
    "final_unique",   "final_multi",     "final_numeric", "final_nonint",
    "final_is_last",  "final_in_prompt", "arith_none",    "arith_all_ok",
    "arith_wrong",    "arith_count",     "truncated",     "repeat",
    "repeat_loop",    "refusal",         "hedge",         "len_share",
    "len_near_limit", "len_log",         "empty",         "new_numbers",
    "num_count",      "lp_mean",         "lp_min",        "lp_low_share",
    "self_report",    "prompt_unused",   "unexplained",   "len_ratio",
    "final_far",      "agreement",
};

/* One name per check, in enum order. */
_Static_assert(sizeof(check_names) / sizeof(check_names[0]) == KS_VC_COUNT,
               "a check without a name");

const char *ks_verify_check_name(enum ks_verify_check c)
{
    return (unsigned)c < KS_VC_COUNT ? check_names[c] : "?";
}

/* ---- words: refusal, hedging, repetition ---- */

static const char *const refusals[] = {
    "i cannot",          "i can't",
    "i can not",         "i'm sorry",
    "i am sorry",        "as an ai",
    "i'm unable",        "i am unable",
    "i won't",           "i will not",
    "cannot help",       "not able to answer",
    "unable to provide", "cannot provide",
    "cannot answer",     NULL};

static const char *const hedges[] = {"approximately",
                                     "maybe",
                                     "perhaps",
                                     "might",
                                     "possibly",
                                     "probably",
                                     "likely",
                                     "assume",
                                     "assuming",
                                     "however",
                                     "not sure",
                                     "unclear",
                                     "i think",
                                     "i believe",
                                     "estimate",
                                     "roughly",
                                     "it seems",
                                     "ambiguous",
                                     "cannot be determined",
                                     "not possible",
                                     "actually",
                                     "wait",
                                     NULL};

/* Occurrences of the phrases of list at word starts in the first len
 * bytes of t. */
static size_t count_phrases(const char *t, size_t len, const char *const *list)
{
    size_t n = 0;

    for (int k = 0; list[k]; k++) {
        size_t pl = strlen(list[k]);

        for (size_t i = 0; i + pl <= len; i++) {
            if ((i == 0 || !isalnum((unsigned char)t[i - 1])) &&
                strncasecmp(t + i, list[k], pl) == 0 &&
                (i + pl == len || !isalnum((unsigned char)t[i + pl]))) {
                n++;
            }
        }
    }
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

#define SHINGLE 8

/* Share of the 8-word shingles of t that occurred before. */
static double repeat_share(const char *t, size_t len)
{
    uint64_t *word = ks_xmalloc((len / 2 + 2) * sizeof(*word)), *sh;
    size_t nw = 0, ns, dup = 0;
    double r;

    for (size_t i = 0; i < len;) {
        uint64_t h = LR_FNV_OFFSET;

        while (i < len && !isalnum((unsigned char)t[i])) {
            i++;
        }
        if (i == len) {
            break;
        }
        while (i < len && isalnum((unsigned char)t[i])) {
            char c = (char)tolower((unsigned char)t[i++]);

            h = lr_fnv1a(h, &c, 1);
        }
        word[nw++] = h;
    }
    if (nw < 2 * SHINGLE) {
        free(word);
        return 0;
    }
    ns = nw - SHINGLE + 1;
    sh = ks_xmalloc(ns * sizeof(*sh));
    for (size_t i = 0; i < ns; i++) {
        sh[i] = lr_fnv1a(LR_FNV_OFFSET, word + i, SHINGLE * sizeof(*word));
    }
    qsort(sh, ns, sizeof(*sh), cmp_u64);
    for (size_t i = 1; i < ns; i++) {
        dup += sh[i] == sh[i - 1];
    }
    r = (double)dup / (double)ns;
    free(sh);
    free(word);
    return r;
}

/* ---- the checks ---- */

static bool truncated(const char *fr)
{
    return fr && (strcmp(fr, "length") == 0 || strcmp(fr, "max_tokens") == 0 ||
                  strcmp(fr, "max_output_tokens") == 0);
}

static void check_format(const struct ks_verify_input *in,
                         const struct finals *f,
                         double *v)
{
    bool checked = in->answer_pattern || in->output_schema;

    v[KS_VC_FORMAT_OK] = checked && f->format;
    v[KS_VC_FORMAT_FAIL] = checked && !f->format;
    v[KS_VC_FORMAT_NONE] = !checked;
}

static void check_final(const struct finals *f,
                        const struct vnum *pnums,
                        size_t np,
                        bool has_last,
                        double last,
                        double *v)
{
    double x;
    int dec;
    bool multi = false;

    for (size_t i = 1; i < f->kept; i++) {
        multi |= strcmp(f->c[i], f->c[0]) != 0;
    }
    v[KS_VC_FINAL_FOUND] = f->n > 0;
    v[KS_VC_FINAL_UNIQUE] = f->n > 0 && !multi;
    v[KS_VC_FINAL_MULTI] = multi;
    if (f->kept > 0 && verify_parse_number(f->c[f->kept - 1], &x, &dec) &&
        strspn(f->c[f->kept - 1], "-0123456789.e+") ==
            strlen(f->c[f->kept - 1])) {
        v[KS_VC_FINAL_NUMERIC] = 1;
        v[KS_VC_FINAL_NONINT] = x != floor(x);
        v[KS_VC_FINAL_IS_LAST] =
            has_last && fabs(last - x) <= 1e-6 * fmax(1, fabs(x));
        v[KS_VC_FINAL_IN_PROMPT] = verify_num_in(x, pnums, np);
    }
}

/* Numbers of the answer against the prompt's (pnums: digits and words)
 * and the answer's computed results. */
static void check_numbers(
    const char *a, size_t alen, const struct vnum *pnums, size_t np, double *v)
{
    struct vnum *an = ks_xmalloc(2 * VERIFY_MAX_NUMBERS * sizeof(*an));
    struct vnum *res = an + VERIFY_MAX_NUMBERS;
    size_t na = verify_numbers(a, alen, an, VERIFY_MAX_NUMBERS), fresh = 0;
    size_t nr = verify_arith_results(a, alen, res, VERIFY_MAX_NUMBERS);
    size_t unused = 0, odd = 0, big = 0;

    na = verify_number_words(a, alen, an, na, VERIFY_MAX_NUMBERS);
    for (size_t i = 0; i < na; i++) {
        bool in_prompt = verify_num_in(an[i].v, pnums, np);

        fresh += !in_prompt;
        if (fabs(an[i].v) > 10) {
            big++;
            odd += !in_prompt && !verify_num_in(an[i].v, res, nr);
        }
    }
    for (size_t i = 0; i < np; i++) {
        unused += !verify_num_in(pnums[i].v, an, na);
    }
    v[KS_VC_NEW_NUMBERS] = na ? (double)fresh / (double)na : 0;
    v[KS_VC_NUM_COUNT] = (double)na / (double)(na + 10);
    v[KS_VC_PROMPT_UNUSED] = np ? (double)unused / (double)np : 0;
    v[KS_VC_UNEXPLAINED] = big ? (double)odd / (double)big : 0;
    free(an);
}

/* How far the final answer's magnitude is from the prompt's numbers. */
static double final_far(const struct finals *f,
                        const struct vnum *pnums,
                        size_t np)
{
    double x, top = 0;
    int dec;

    if (f->kept == 0 || np == 0 ||
        !verify_parse_number(f->c[f->kept - 1], &x, &dec) || x == 0) {
        return 0;
    }
    for (size_t i = 0; i < np; i++) {
        top = fmax(top, fabs(pnums[i].v));
    }
    if (top == 0) {
        return 0;
    }
    return fmin(1, fabs(log10(fabs(x) / top)) / 4);
}

static void check_length(const struct ks_verify_input *in,
                         size_t alen,
                         double *v)
{
    double toks =
        in->output_tokens >= 0 ? (double)in->output_tokens : (double)alen / 4;

    if (in->max_output_tokens > 0) {
        double share = toks / (double)in->max_output_tokens;

        v[KS_VC_LEN_SHARE] = share > 1 ? 1 : share;
        v[KS_VC_LEN_NEAR_LIMIT] = share >= 0.95;
    }
    v[KS_VC_LEN_LOG] = fmin(1, log1p((double)alen) / 10);
    v[KS_VC_EMPTY] = alen == 0;
}

static void check_logprobs(const struct ks_logprob_stats *lp, double *v)
{
    if (!lp->present) {
        return;
    }
    v[KS_VC_LP_MEAN] = exp(fmin(0, lp->mean));
    if (!isnan(lp->min)) {
        v[KS_VC_LP_MIN] = exp(fmin(0, lp->min));
    }
    if (!isnan(lp->share_low)) {
        v[KS_VC_LP_LOW_SHARE] = fmin(1, fmax(0, lp->share_low));
    }
}

void ks_verify_checks(const struct ks_verify_input *in, double v[KS_VC_COUNT])
{
    const char *a = in->answer ? in->answer : "";
    const char *p = in->prompt ? in->prompt : "";
    size_t alen = strlen(a), plen = strlen(p), n_stmt, n_wrong, np;
    struct vnum *pnums = ks_xmalloc(VERIFY_MAX_NUMBERS * sizeof(*pnums));
    struct finals f;
    double last = 0, rep, hedge, ratio;

    alen = alen > KS_LR_MAX_TEXT ? KS_LR_MAX_TEXT : alen;
    plen = plen > KS_LR_MAX_TEXT ? KS_LR_MAX_TEXT : plen;
    memset(v, 0, KS_VC_COUNT * sizeof(*v));
    np = verify_numbers(p, plen, pnums, VERIFY_MAX_NUMBERS);
    np = verify_number_words(p, plen, pnums, np, VERIFY_MAX_NUMBERS);
    verify_finals(a, alen, in->answer_pattern, in->output_schema, &f);
    verify_arith(a, alen, &n_stmt, &n_wrong, &last);

    check_format(in, &f, v);
    check_final(&f, pnums, np, n_stmt > 0, last, v);
    v[KS_VC_ARITH_NONE] = n_stmt == 0;
    v[KS_VC_ARITH_ALL_OK] = n_stmt > 0 && n_wrong == 0;
    v[KS_VC_ARITH_WRONG] = n_stmt ? (double)n_wrong / (double)n_stmt : 0;
    v[KS_VC_ARITH_COUNT] = (double)n_stmt / (double)(n_stmt + 4);
    v[KS_VC_TRUNCATED] = truncated(in->finish_reason);
    rep = repeat_share(a, alen);
    v[KS_VC_REPEAT] = rep;
    v[KS_VC_REPEAT_LOOP] = rep > 0.3;
    /* a refusal says so early, or is all there is */
    v[KS_VC_REFUSAL] = count_phrases(a, alen < 400 ? alen : 200, refusals) > 0;
    hedge = (double)count_phrases(a, alen, hedges);
    v[KS_VC_HEDGE] = hedge / (hedge + 2);
    check_length(in, alen, v);
    check_numbers(a, alen, pnums, np, v);
    v[KS_VC_FINAL_FAR] = final_far(&f, pnums, np);
    ratio = (double)alen / (double)(plen + 1);
    v[KS_VC_LEN_RATIO] = ratio / (ratio + 1);
    check_logprobs(&in->logprobs, v);
    /* A signal the answer lacks adds no feature (no "none" indicator):
     * a model trained where a signal was missing is not thrown off where
     * it is present, and the other way round. */
    if (in->has_agreement) {
        v[KS_VC_AGREEMENT] = fmin(1, fmax(0, in->agreement));
    }
    if (in->has_self_report) {
        v[KS_VC_SELF_REPORT] = fmin(1, fmax(0, in->self_report));
    }
    free(pnums);
}
