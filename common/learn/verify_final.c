/*
 * verify_final.c - the final answer of an answer text, for the verifier's
 * checks and for agreement (verify.h): the captures of the type's answer
 * pattern, the JSON "answer" field (or sole field) under an
 * output_schema, the text after an answer marker ("final answer is",
 * "the answer is", "answer:", \boxed{), else the last number; each
 * candidate in canonical form (a number as %.10g, else trimmed and
 * lower-cased). Pure functions, any thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strings.h>

#include <cjson/cJSON.h>

#include "base/util.h"
#include "learn/verify.h"
#include "learn/verify_internal.h"
#include "wire/schema.h"

#include "base/banned.h"

/* ---- final answers ---- */

/* A candidate in canonical form: a number as %.10g, else the trimmed,
 * lower-cased text without a trailing '.', '$' or '*' around it. */
static void canon(const char *s, size_t len, char *out)
{
    char buf[FINAL_LEN];
    size_t a = 0, b = len < FINAL_LEN - 1 ? len : FINAL_LEN - 1, k = 0;
    double v;
    int dec;
    char *end;

    while (a < b && (isspace((unsigned char)s[a]) || s[a] == '$' ||
                     s[a] == '*' || s[a] == ':')) {
        a++;
    }
    while (b > a && (isspace((unsigned char)s[b - 1]) || s[b - 1] == '.' ||
                     s[b - 1] == '*' || s[b - 1] == '}')) {
        b--;
    }
    for (size_t i = a; i < b; i++) {
        buf[k++] = (char)tolower((unsigned char)s[i]);
    }
    buf[k] = '\0';
    /* a bare number, possibly with commas: canonical */
    if (verify_parse_number(buf, &v, &dec)) {
        strtod(buf[0] == '-' ? buf + 1 : buf, &end);
        if (strspn(buf, "-0123456789.,") == k) {
            snprintf(out, FINAL_LEN, "%.10g", v);
            return;
        }
    }
    ks_strlcpy(out, buf, FINAL_LEN);
}

static void final_add(struct finals *f, const char *s, size_t len)
{
    if (f->kept < FINAL_MAX) {
        canon(s, len, f->c[f->kept]);
        if (f->c[f->kept][0]) {
            f->kept++;
            f->n++;
        }
    } else {
        f->n++;
    }
}

static void finals_pattern(const char *t,
                           size_t len,
                           const struct ks_rule_re *re,
                           struct finals *f)
{
    size_t off = 0, s, e;

    for (int k = 0; k < PATTERN_MAX && off <= len; k++) {
        if (ks_rule_re_find(re, t + off, len - off, &s, &e) != KS_RULE_MATCH) {
            break;
        }
        f->format = true;
        final_add(f, t + off + s, e - s);
        off += e > s ? e : s + 1;
    }
}

/* An answer marker's text: up to the end of the line or sentence. */
static size_t marker_span(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && *q != '\n' && *q != '}' &&
           !(*q == '.' && (q + 1 == end || isspace((unsigned char)q[1])))) {
        q++;
    }
    return (size_t)(q - p);
}

static const char *const markers[] = {
    "final answer is", "final answer:", "the answer is",
    "answer:",         "\\boxed{",      NULL};

/* Case-insensitive search in t[0..len) of the lower-case needle. */
static const char *find_ci(const char *t, size_t len, const char *needle)
{
    size_t nl = strlen(needle);

    for (size_t i = 0; i + nl <= len; i++) {
        if (strncasecmp(t + i, needle, nl) == 0) {
            return t + i;
        }
    }
    return NULL;
}

static void finals_markers(const char *t, size_t len, struct finals *f)
{
    for (int m = 0; markers[m]; m++) {
        const char *p = t, *end = t + len, *hit;

        while ((hit = find_ci(p, (size_t)(end - p), markers[m]))) {
            const char *a = hit + strlen(markers[m]);
            size_t n = marker_span(a, end);

            final_add(f, a, n);
            p = a;
        }
        if (f->n > 0) {
            return; /* the most specific marker that occurs */
        }
    }
}

/* The answer as JSON (an object, a ``` fence allowed), or NULL. */
static cJSON *answer_json(const char *t, size_t len)
{
    const char *s = t, *e = t + len, *nl;
    char *copy;
    cJSON *j;

    while (s < e && isspace((unsigned char)*s)) {
        s++;
    }
    while (e > s && isspace((unsigned char)e[-1])) {
        e--;
    }
    if (e - s >= 6 && strncmp(s, "```", 3) == 0 &&
        strncmp(e - 3, "```", 3) == 0 &&
        (nl = memchr(s, '\n', (size_t)(e - s)))) {
        s = nl + 1;
        e -= 3;
    }
    copy = ks_xstrndup(s, (size_t)(e - s));
    j = cJSON_Parse(copy);
    free(copy);
    return j;
}

static void finals_schema(const char *t,
                          size_t len,
                          const char *schema_text,
                          struct finals *f)
{
    cJSON *j = answer_json(t, len), *schema = cJSON_Parse(schema_text);
    const cJSON *v;
    char why[128], *s;

    if (j && schema && ks_schema_check(schema, j, why, sizeof(why)) == 0) {
        f->format = true;
    }
    v = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "answer")
                          : NULL;
    if (!v && cJSON_IsObject(j) && j->child && !j->child->next) {
        v = j->child; /* an object of one field: that field */
    }
    if (v || j) {
        s = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v ? v : j);
        if (s) {
            final_add(f, s, strlen(s));
        } else {
            final_add(f, v->valuestring, strlen(v->valuestring));
        }
        cJSON_free(s);
    }
    cJSON_Delete(schema);
    cJSON_Delete(j);
}

/* The stated candidates: pattern or schema, else markers. */
static void finals_stated(const char *t,
                          size_t len,
                          const struct ks_rule_re *re,
                          const char *schema,
                          struct finals *f)
{
    memset(f, 0, sizeof(*f));
    if (re) {
        finals_pattern(t, len, re, f);
    } else if (schema) {
        finals_schema(t, len, schema, f);
    }
    if (f->n == 0) {
        finals_markers(t, len, f);
    }
}

void verify_finals(const char *t,
                   size_t len,
                   const struct ks_rule_re *re,
                   const char *schema,
                   struct finals *f)
{
    finals_stated(t, len, re, schema, f);
    if (f->n == 0) {
        struct vnum *nums = ks_xmalloc(VERIFY_MAX_NUMBERS * sizeof(*nums));
        size_t n = verify_numbers(t, len, nums, VERIFY_MAX_NUMBERS);

        if (n > 0) {
            snprintf(f->c[0], FINAL_LEN, "%.10g", nums[n - 1].v);
            f->kept = f->n = 1;
        }
        free(nums);
    }
}

/* The last kept candidate of f into out ("" when none). */
static void last_kept(const struct finals *f, char *out, size_t out_size)
{
    if (out_size > 0) {
        ks_strlcpy(out, f->kept ? f->c[f->kept - 1] : "", out_size);
    }
}

size_t ks_verify_final_answer(const char *text,
                              const struct ks_rule_re *answer_pattern,
                              char *out,
                              size_t out_size)
{
    struct finals f;
    size_t len = strlen(text);

    verify_finals(text, len > KS_LR_MAX_TEXT ? KS_LR_MAX_TEXT : len,
                  answer_pattern, NULL, &f);
    last_kept(&f, out, out_size);
    return f.n;
}

bool ks_verify_stated_answer(const char *text,
                             const struct ks_rule_re *answer_pattern,
                             const char *output_schema,
                             char *out,
                             size_t out_size)
{
    struct finals f;
    size_t len = strlen(text);

    finals_stated(text, len > KS_LR_MAX_TEXT ? KS_LR_MAX_TEXT : len,
                  answer_pattern, output_schema, &f);
    last_kept(&f, out, out_size);
    return f.kept > 0;
}

/* The key an answer agrees on: its last extracted final answer, else its
 * canonical whole text. */
static void agree_key(const char *a,
                      const struct ks_rule_re *re,
                      const char *schema,
                      char *key)
{
    size_t len = strlen(a);
    struct finals f;

    len = len > KS_LR_MAX_TEXT ? KS_LR_MAX_TEXT : len;
    verify_finals(a, len, re, schema, &f);
    if (f.kept > 0) {
        memcpy(key, f.c[f.kept - 1], FINAL_LEN);
    } else {
        canon(a, len, key);
    }
}

double ks_verify_agreement(const char *const *answers,
                           size_t k,
                           const struct ks_rule_re *answer_pattern,
                           const char *output_schema,
                           size_t *majority)
{
    char(*key)[FINAL_LEN];
    size_t best = 0, best_n = 0;

    *majority = 0;
    if (k == 0) {
        return 0;
    }
    key = ks_xmalloc(k * sizeof(*key));
    for (size_t i = 0; i < k; i++) {
        agree_key(answers[i] ? answers[i] : "", answer_pattern, output_schema,
                  key[i]);
    }
    for (size_t i = 0; i < k; i++) {
        size_t n = 0;

        for (size_t j = 0; j < k; j++) {
            n += strcmp(key[i], key[j]) == 0;
        }
        if (n >= best_n) {
            best_n = n;
            best = i;
        }
    }
    free(key);
    *majority = best;
    return (double)best_n / (double)k;
}
