/*
 * sim_text.h - the simulator's deterministic "model": which answer a
 * conversation gets, how it is cut into tokens, and their log-probabilities.
 * Pure functions of their input; thread-safe.
 */
#ifndef KASCADE_MODELSIM_SIM_TEXT_H
#define KASCADE_MODELSIM_SIM_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Inputs this short (bytes) get a label rather than a sentence. */
#define SIM_TEXT_LABEL_MAX 200

#define SIM_FNV_OFFSET 0xcbf29ce484222325ULL

/* FNV-1a over n bytes, continuing from h (start from SIM_FNV_OFFSET). */
uint64_t sim_fnv1a(uint64_t h, const void *p, size_t n);

/* Returns the answer to text (len bytes): one of a few labels when label is
 * true, else a summary-like sentence quoting text's first words. The same
 * input always gives the same answer. Caller owns the result (free()). */
char *sim_text_answer(const char *text, size_t len, bool label);

/* Returns the longest prefix length <= max of s (len bytes) that does not
 * end inside a UTF-8 sequence. */
size_t sim_text_utf8_prefix(const char *s, size_t len, size_t max);

/* Returns the length of the token at the start of s (len bytes): about 4
 * bytes, never splitting a UTF-8 sequence; 0 when len is 0. */
size_t sim_text_token_len(const char *s, size_t len);

/* Returns a log-probability in [-0.6, -0.01] for the index-th token. */
double sim_text_logprob(const char *tok, size_t n, size_t index);

/* Returns the token estimate of bytes: ceil(bytes / 4), at least 1. */
long long sim_text_tokens(size_t bytes);

#endif
