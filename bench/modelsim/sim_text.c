/*
 * sim_text.c - deterministic answers, tokens and log-probabilities.
 *
 * Invariants: every output is a pure function of the input bytes (FNV-1a
 * picks among fixed labels and sentence templates), answers are bounded in
 * size whatever the input, and no function splits a UTF-8 sequence, so the
 * JSON we emit stays valid UTF-8 when the input was.
 */
#include "sim_text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

#define SIM_FNV_PRIME 0x100000001b3ULL

/* How much of the input a sentence quotes. */
#define QUOTE_WORDS 8
#define QUOTE_BYTES 80

#define TOKEN_BYTES 4

static const char *const labels[] = {
    "positive", "negative", "neutral", "question", "complaint",
};

static const char *const templates[] = {
    "The text is mainly about %s.",
    "In short, the author describes %s.",
    "Summary: %s, with a few supporting details.",
    "The passage covers %s and ends with a brief conclusion.",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

uint64_t sim_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= SIM_FNV_PRIME;
    }
    return h;
}

static bool is_cont_byte(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t sim_text_utf8_prefix(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;

    /* Back off while the byte after the cut continues a sequence. */
    while (n > 0 && n < len && is_cont_byte((unsigned char)s[n])) {
        n--;
    }
    return n;
}

size_t sim_text_token_len(const char *s, size_t len)
{
    size_t n = len < TOKEN_BYTES ? len : TOKEN_BYTES;

    /* Extend rather than cut so each token holds whole characters (at
     * most 3 more bytes, however broken the input's UTF-8). */
    while (n < len && n < TOKEN_BYTES + 3 &&
           is_cont_byte((unsigned char)s[n])) {
        n++;
    }
    return n;
}

double sim_text_logprob(const char *tok, size_t n, size_t index)
{
    uint64_t h = sim_fnv1a(SIM_FNV_OFFSET, tok, n);
    double u;

    h = sim_fnv1a(h, &index, sizeof(index));
    u = (double)(h % 10000) / 9999.0;
    /* Four decimals keep the JSON short and the value exact to compare. */
    return round((-0.01 - 0.59 * u) * 10000.0) / 10000.0;
}

long long sim_text_tokens(size_t bytes)
{
    long long t = (long long)((bytes + TOKEN_BYTES - 1) / TOKEN_BYTES);

    return t < 1 ? 1 : t;
}

static bool is_space(unsigned char c)
{
    return c <= ' ' || c == 0x7f;
}

/* Copies up to QUOTE_WORDS words of text into out, single-spaced. */
static void quote_words(const char *text,
                        size_t len,
                        char *out,
                        size_t out_size)
{
    size_t i = 0, o = 0;
    int words = 0;

    while (i < len && words < QUOTE_WORDS) {
        size_t start, wlen, room = out_size - 1 - o;

        while (i < len && is_space((unsigned char)text[i])) {
            i++;
        }
        start = i;
        while (i < len && !is_space((unsigned char)text[i])) {
            i++;
        }
        wlen = i - start;
        if (wlen == 0) {
            break;
        }
        if (room <= (size_t)(words > 0)) {
            break;
        }
        room -= (size_t)(words > 0);
        wlen = sim_text_utf8_prefix(text + start, wlen, room);
        if (wlen == 0) {
            break;
        }
        if (words++ > 0) {
            out[o++] = ' ';
        }
        memcpy(out + o, text + start, wlen);
        o += wlen;
    }
    out[o] = '\0';
    /* "The report ..." reads better mid-sentence as "the report ...". */
    if (o > 1 && out[0] >= 'A' && out[0] <= 'Z' && out[1] >= 'a' &&
        out[1] <= 'z') {
        out[0] = (char)(out[0] - 'A' + 'a');
    }
}

char *sim_text_answer(const char *text, size_t len, bool label)
{
    uint64_t h = sim_fnv1a(SIM_FNV_OFFSET, text, len);
    char quote[QUOTE_BYTES + 1];
    char buf[sizeof(quote) + 64];

    if (label) {
        return ks_xstrdup(labels[h % COUNT(labels)]);
    }
    quote_words(text, len, quote, sizeof(quote));
    if (quote[0] == '\0') {
        ks_strlcpy(quote, "nothing in particular", sizeof(quote));
    }
    /* The template is one of ours; the quote is data. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, sizeof(buf), templates[(h >> 32) % COUNT(templates)], quote);
#pragma GCC diagnostic pop
    return ks_xstrdup(buf);
}
