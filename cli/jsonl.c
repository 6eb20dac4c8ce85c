/*
 * jsonl.c - the JSONL reader and shared flag parsers of train and eval.
 */
#include "jsonl.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#include "base/banned.h"

/* A line longer than this is refused (the features use the first
 * KS_LR_MAX_TEXT bytes of the input anyway). */
#define MAX_LINE (4u << 20)


int jsonl_open(struct line_reader *lr, const char *path)
{
    memset(lr, 0, sizeof(*lr));
    lr->path = path;
    lr->fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!lr->fp) {
        fprintf(stderr, "kascade: cannot open %s\n", path);
        return -1;
    }
    return 0;
}

void jsonl_close(struct line_reader *lr)
{
    if (lr->fp && lr->fp != stdin) {
        fclose(lr->fp);
    }
    free(lr->line);
}

/* The next non-blank line as a JSON object in *root (caller deletes).
 * Returns 1, 0 at the end, -1 on a bad line (reported). */
int jsonl_next(struct line_reader *lr, cJSON **root)
{
    ssize_t len;

    while ((len = getline(&lr->line, &lr->cap, lr->fp)) >= 0) {
        lr->lineno++;
        if ((size_t)len > MAX_LINE) {
            fprintf(stderr, "kascade: %s:%zu: line over %u bytes\n", lr->path,
                    lr->lineno, MAX_LINE);
            return -1;
        }
        while (len > 0 &&
               (lr->line[len - 1] == '\n' || lr->line[len - 1] == '\r' ||
                lr->line[len - 1] == ' ')) {
            len--;
        }
        if (len == 0) {
            continue;
        }
        *root = cJSON_ParseWithLength(lr->line, (size_t)len);
        if (!cJSON_IsObject(*root)) {
            fprintf(stderr, "kascade: %s:%zu: not a JSON object\n", lr->path,
                    lr->lineno);
            cJSON_Delete(*root);
            *root = NULL;
            return -1;
        }
        return 1;
    }
    return 0;
}

void jsonl_bad(const struct line_reader *lr, const char *what)
{
    fprintf(stderr, "kascade: %s:%zu: %s\n", lr->path, lr->lineno, what);
}

/* --input of a line, or NULL (reported). */
const cJSON *jsonl_input(const struct line_reader *lr, const cJSON *root)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");

    if (!cJSON_IsString(in)) {
        jsonl_bad(lr, "\"input\" must be a string");
        return NULL;
    }
    return in;
}

int cli_parse_u64(
    const char *flag, const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || ks_parse_int64(s, min, max, out) != 0) {
        fprintf(stderr, "kascade: %s needs a whole number in [%lld, %lld]\n",
                flag, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

int cli_parse_dbl(const char *flag, const char *s, double *out)
{
    if (!s || ks_parse_double(s, out) != 0) {
        fprintf(stderr, "kascade: %s needs a number\n", flag);
        return -1;
    }
    return 0;
}

void cli_print_bins(const struct ks_lr_report *rep, const char *what)
{
    printf("calibration on the held-out part (%s):\n", what);
    printf("  %-9s %7s %10s %9s\n", "bin", "count", "mean_pred", "observed");
    for (int b = 0; b < KS_LR_CAL_BINS; b++) {
        printf("  %.1f-%.1f   %7zu", b / 10.0, (b + 1) / 10.0,
               rep->bins[b].count);
        if (rep->bins[b].count) {
            printf(" %10.3f %9.3f\n", rep->bins[b].mean_pred,
                   rep->bins[b].observed);
        } else {
            printf(" %10s %9s\n", "-", "-");
        }
    }
}
