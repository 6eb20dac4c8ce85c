/*
 * jsonl.h - reading the labelled JSONL files of `kascade train` and
 * `kascade eval`: one JSON object a line, blank lines skipped, a line over
 * the cap or not JSON refused with its line number; and the flag parsers
 * and calibration table the two commands share. Single-threaded.
 * Ownership: a struct line_reader is the caller's (jsonl_open,
 * jsonl_close); jsonl_next hands over a cJSON tree the caller deletes;
 * jsonl_input returns an item borrowed from that tree.
 */
#ifndef KASCADE_CLI_JSONL_H
#define KASCADE_CLI_JSONL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "learn/lr.h"

struct line_reader {
    const char *path;
    FILE *fp;
    char *line;
    size_t cap;
    size_t lineno;
};


/* Opens path ("-": stdin). Returns 0, or -1 (reported on stderr). */
int jsonl_open(struct line_reader *lr, const char *path);
void jsonl_close(struct line_reader *lr);

/* The next object in *root (caller deletes it). Returns 1, 0 at the end,
 * or -1 for a bad line (reported with its number). */
int jsonl_next(struct line_reader *lr, cJSON **root);

/* Reports what is wrong with the current line. */
void jsonl_bad(const struct line_reader *lr, const char *what);

/* The line's "input" string, or NULL (reported). Borrowed from root. */
const cJSON *jsonl_input(const struct line_reader *lr, const cJSON *root);

/* Flag values; -1 with the reason on stderr. */
int cli_parse_u64(
    const char *flag, const char *s, int64_t min, int64_t max, int64_t *out);
int cli_parse_dbl(const char *flag, const char *s, double *out);

/* Prints a report's 10-bin calibration table. */
void cli_print_bins(const struct ks_lr_report *rep, const char *what);

#endif
