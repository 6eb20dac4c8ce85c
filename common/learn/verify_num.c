/*
 * verify_num.c - numbers and arithmetic statements in a text, for the
 * verifier's checks (verify.h). A text is scanned once into tokens
 * (numbers, operators, "=", anything else as a break); a statement is a
 * run "num op num [op num ...] = num" with nothing else between. Commas
 * between digit groups and currency signs before a number are skipped.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <strings.h>

#include "learn/verify_internal.h"

#include "base/banned.h"

enum tok_kind {
    T_NUM,
    T_OP,
    T_EQ,
    T_BREAK,
};

struct tok {
    enum tok_kind kind;
    char op; /* + - * / */
    struct vnum num;
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads a number at text[*i] (a digit). Commas are kept only between
 * groups of three digits; a point only when a digit follows. */
static struct vnum read_number(const char *t, size_t len, size_t *i)
{
    struct vnum n = {0, 0};
    double frac = 0.1;
    size_t j = *i;

    while (j < len) {
        if (is_digit(t[j])) {
            n.v = n.v * 10 + (t[j] - '0');
            j++;
        } else if (t[j] == ',' && j + 3 < len && is_digit(t[j + 1]) &&
                   is_digit(t[j + 2]) && is_digit(t[j + 3]) &&
                   (j + 4 >= len || !is_digit(t[j + 4]))) {
            j++;
        } else {
            break;
        }
    }
    if (j + 1 < len && t[j] == '.' && is_digit(t[j + 1])) {
        j++;
        while (j < len && is_digit(t[j])) {
            n.v += frac * (t[j] - '0');
            frac /= 10;
            n.decimals++;
            j++;
        }
    }
    *i = j;
    return n;
}

/* The operator at t[i] ("x" only as a word of its own), with its byte
 * length in *adv; 0 when none. */
static char op_at(const char *t, size_t len, size_t i, size_t *adv)
{
    const unsigned char *u = (const unsigned char *)t + i;
    size_t left = len - i;

    *adv = 1;
    switch (t[i]) {
    case '+':
    case '-':
    case '*':
    case '/':
        return t[i];
    case 'x':
    case 'X':
        if ((i == 0 || t[i - 1] == ' ') && left > 1 && t[i + 1] == ' ') {
            return '*';
        }
        return 0;
    default:
        break;
    }
    *adv = 2;
    if (left >= 2 && u[0] == 0xc3 && u[1] == 0x97) {
        return '*'; /* U+00D7 multiplication sign */
    }
    if (left >= 2 && u[0] == 0xc3 && u[1] == 0xb7) {
        return '/'; /* U+00F7 division sign */
    }
    *adv = 3;
    if (left >= 3 && u[0] == 0xe2 && u[1] == 0x88 && u[2] == 0x92) {
        return '-'; /* U+2212 minus sign */
    }
    if (left >= 3 && u[0] == 0xe2 && u[1] == 0x8b && u[2] == 0x85) {
        return '*'; /* U+22C5 dot operator */
    }
    return 0;
}

/* The next token from t[*i]; blanks, '$' and '€'/'£' signs are skipped. */
static bool next_tok(const char *t, size_t len, size_t *i, struct tok *tk)
{
    size_t adv;
    char op;

    while (*i < len) {
        unsigned char c = (unsigned char)t[*i];

        if (c == ' ' || c == '\t' || c == '$') {
            (*i)++;
        } else if (c == 0xc2 && *i + 1 < len &&
                   (unsigned char)t[*i + 1] == 0xa3) {
            *i += 2; /* pound sign */
        } else if (c == 0xe2 && *i + 2 < len &&
                   (unsigned char)t[*i + 1] == 0x82 &&
                   (unsigned char)t[*i + 2] == 0xac) {
            *i += 3; /* euro sign */
        } else {
            break;
        }
    }
    if (*i >= len) {
        return false;
    }
    if (is_digit(t[*i])) {
        tk->kind = T_NUM;
        tk->num = read_number(t, len, i);
        return true;
    }
    if (t[*i] == '=') {
        tk->kind = T_EQ;
        (*i)++;
        return true;
    }
    op = op_at(t, len, *i, &adv);
    if (op) {
        tk->kind = T_OP;
        tk->op = op;
        *i += adv;
        return true;
    }
    tk->kind = T_BREAK;
    (*i)++;
    return true;
}

/* A unary minus: "-" not after a number, directly before a digit. */
static bool fold_sign(struct tok *prev, const char *t, size_t len, size_t i)
{
    return prev->kind != T_NUM && i < len && is_digit(t[i]);
}

size_t verify_numbers(const char *text,
                      size_t len,
                      struct vnum *out,
                      size_t max)
{
    struct tok tk, prev = {.kind = T_BREAK};
    size_t i = 0, n = 0;
    bool neg = false;

    while (n < max && next_tok(text, len, &i, &tk)) {
        if (tk.kind == T_OP && tk.op == '-' && fold_sign(&prev, text, len, i)) {
            neg = true;
            prev = tk;
            continue;
        }
        if (tk.kind == T_NUM) {
            out[n] = tk.num;
            out[n].v = neg ? -out[n].v : out[n].v;
            n++;
        }
        neg = false;
        prev = tk;
    }
    return n;
}

bool verify_num_in(double v, const struct vnum *nums, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fabs(nums[i].v - v) <= 1e-9 * fmax(1, fabs(v))) {
            return true;
        }
    }
    return false;
}

bool verify_parse_number(const char *s, double *v, int *decimals)
{
    struct vnum n;
    size_t len = strlen(s);

    if (verify_numbers(s, len, &n, 1) != 1) {
        return false;
    }
    *v = n.v;
    *decimals = n.decimals;
    return true;
}

/* Evaluates nums[0] ops[0] nums[1] ... with * and / first. */
static double eval_chain(const double *nums, const char *ops, size_t n_ops)
{
    double sum = 0, term = nums[0];
    char add = '+';

    for (size_t k = 0; k < n_ops; k++) {
        if (ops[k] == '*') {
            term *= nums[k + 1];
        } else if (ops[k] == '/') {
            term = nums[k + 1] != 0 ? term / nums[k + 1] : NAN;
        } else {
            sum += add == '+' ? term : -term;
            add = ops[k];
            term = nums[k + 1];
        }
    }
    return sum + (add == '+' ? term : -term);
}

/* Does left give r written with decimals digits? A result written
 * rounded (10 / 3 = 3.33) counts as right. */
static bool recomputes(double left, struct vnum r)
{
    double tol = r.decimals > 0 ? 0.51 * pow(10, -r.decimals)
                                : 1e-6 * fmax(1, fabs(r.v));

    return isfinite(left) && fabs(left - r.v) <= tol;
}

#define CHAIN_MAX 16

struct arith_out {
    size_t n_stmt, n_wrong;
    double last;
    struct vnum *res; /* may be NULL */
    size_t n_res, max_res;
};

static void arith_scan(const char *text, size_t len, struct arith_out *ao)
{
    struct tok tk, prev = {.kind = T_BREAK};
    double nums[CHAIN_MAX + 1];
    char ops[CHAIN_MAX];
    size_t nn = 0, no = 0, i = 0;
    bool neg = false, want_result = false;

    while (next_tok(text, len, &i, &tk)) {
        if (tk.kind == T_OP && tk.op == '-' && prev.kind != T_NUM &&
            fold_sign(&prev, text, len, i) && (want_result || nn == no)) {
            neg = true;
            prev = tk;
            continue;
        }
        if (want_result) {
            if (tk.kind == T_NUM) {
                struct vnum r = tk.num;

                r.v = neg ? -r.v : r.v;
                ao->n_stmt++;
                ao->n_wrong += !recomputes(eval_chain(nums, ops, no), r);
                ao->last = r.v;
                if (ao->res && ao->n_res < ao->max_res) {
                    ao->res[ao->n_res++] = r;
                }
            }
            want_result = false;
            nn = no = 0;
            /* the result may start the next chain: "= 13 - 4 = 9" */
            if (tk.kind == T_NUM) {
                nums[nn++] = neg ? -tk.num.v : tk.num.v;
            }
        } else if (tk.kind == T_NUM && nn == no && nn <= CHAIN_MAX) {
            nums[nn++] = neg ? -tk.num.v : tk.num.v;
        } else if (tk.kind == T_OP && nn == no + 1 && no < CHAIN_MAX) {
            ops[no++] = tk.op;
        } else if (tk.kind == T_EQ && no > 0 && nn == no + 1) {
            want_result = true;
        } else if (tk.kind == T_NUM) {
            nn = no = 0;
            nums[nn++] = neg ? -tk.num.v : tk.num.v;
        } else {
            nn = no = 0;
        }
        neg = false;
        prev = tk;
    }
}

void verify_arith(
    const char *text, size_t len, size_t *n_stmt, size_t *n_wrong, double *last)
{
    struct arith_out ao = {0};

    arith_scan(text, len, &ao);
    *n_stmt = ao.n_stmt;
    *n_wrong = ao.n_wrong;
    if (ao.n_stmt) {
        *last = ao.last;
    }
}

size_t verify_arith_results(const char *text,
                            size_t len,
                            struct vnum *out,
                            size_t max)
{
    struct arith_out ao = {.res = out, .max_res = max};

    arith_scan(text, len, &ao);
    return ao.n_res;
}

static const struct {
    const char *word;
    double v;
} number_words[] = {
    {"zero", 0},      {"one", 1},         {"two", 2},       {"three", 3},
    {"four", 4},      {"five", 5},        {"six", 6},       {"seven", 7},
    {"eight", 8},     {"nine", 9},        {"ten", 10},      {"eleven", 11},
    {"twelve", 12},   {"thirteen", 13},   {"fourteen", 14}, {"fifteen", 15},
    {"sixteen", 16},  {"seventeen", 17},  {"eighteen", 18}, {"nineteen", 19},
    {"twenty", 20},   {"thirty", 30},     {"forty", 40},    {"fifty", 50},
    {"sixty", 60},    {"seventy", 70},    {"eighty", 80},   {"ninety", 90},
    {"hundred", 100}, {"thousand", 1000}, {"dozen", 12},    {"half", 0.5},
    {"twice", 2},     {"double", 2},      {"triple", 3},    {"quarter", 0.25},
    {"third", 3},     {"fourth", 4},      {"fifth", 5},
};

size_t verify_number_words(
    const char *text, size_t len, struct vnum *out, size_t n, size_t max)
{
    size_t i = 0;

    while (i < len && n < max) {
        size_t j;

        while (i < len &&
               !((text[i] | 0x20) >= 'a' && (text[i] | 0x20) <= 'z')) {
            i++;
        }
        j = i;
        while (j < len && (text[j] | 0x20) >= 'a' && (text[j] | 0x20) <= 'z') {
            j++;
        }
        for (size_t k = 0;
             j > i && k < sizeof(number_words) / sizeof(number_words[0]); k++) {
            if (strlen(number_words[k].word) == j - i &&
                strncasecmp(text + i, number_words[k].word, j - i) == 0) {
                out[n].v = number_words[k].v;
                out[n++].decimals = 0;
                break;
            }
        }
        i = j;
    }
    return n;
}
