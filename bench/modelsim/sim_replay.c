/*
 * sim_replay.c - loads a replay CSV and looks answers up by prompt.
 *
 * Invariants: the whole file is read into one buffer (at most
 * SIM_REPLAY_MAX_BYTES) and decoded in place; entries point into it and
 * are sorted by (trimmed prompt, row), duplicates after the first dropped,
 * so a lookup is one binary search and never allocates.
 */
#include "sim_replay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "sim_csv.h"

#include "base/banned.h"

struct entry {
    const char *prompt; /* trimmed: prompt_len bytes in buf */
    size_t prompt_len;
    const char *answer; /* in buf */
    double conf;        /* the recorded confidence, or -1: none */
    size_t row;
};

struct sim_replay {
    char *buf;
    char *column; /* the answer column's name */
    struct entry *entries;
    size_t n;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* Trims s (len bytes) in place of pointers: sets *start and *n. */
static void trim(const char *s, size_t len, const char **start, size_t *n)
{
    while (len > 0 && is_space(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_space(s[len - 1])) {
        len--;
    }
    *start = s;
    *n = len;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int c = key_cmp(a->prompt, a->prompt_len, b->prompt, b->prompt_len);

    if (c != 0) {
        return c;
    }
    return a->row < b->row ? -1 : a->row > b->row;
}

/* Reads the file into a NUL-terminated buffer under the size cap. */
static char *read_file(const char *path,
                       size_t *len,
                       char *errstr,
                       size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char ebuf[128];
    char *buf = NULL;
    long size;

    if (f == NULL) {
        snprintf(errstr, errstr_size, "--replay %s: %s", path,
                 ks_strerror(errno, ebuf, sizeof(ebuf)));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        snprintf(errstr, errstr_size, "--replay %s: cannot tell its size",
                 path);
        goto out_close;
    }
    if (size > SIM_REPLAY_MAX_BYTES) {
        snprintf(errstr, errstr_size,
                 "--replay %s: %ld bytes is over the %d-byte cap", path, size,
                 SIM_REPLAY_MAX_BYTES);
        goto out_close;
    }
    buf = ks_xmalloc((size_t)size + 1); /* capped above */
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        snprintf(errstr, errstr_size, "--replay %s: short read", path);
        free(buf);
        buf = NULL;
        goto out_close;
    }
    buf[size] = '\0';
    *len = (size_t)size;
out_close:
    fclose(f);
    return buf;
}

/* Finds the prompt and answer columns in the header record. */
static int header_columns(char **fields,
                          size_t n,
                          const char *column,
                          size_t *prompt_col,
                          size_t *answer_col,
                          size_t *conf_col,
                          char *errstr,
                          size_t errstr_size)
{
    size_t clen = strlen(column);
    bool have_exact = false, have_resp = false;

    *prompt_col = 0;
    *conf_col = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t flen = strlen(fields[i]);

        if (strcmp(fields[i], "prompt") == 0) {
            *prompt_col = i;
        }
        if (flen == clen + 11 && strncmp(fields[i], column, clen) == 0 &&
            strcmp(fields[i] + clen, "_confidence") == 0) {
            *conf_col = i;
        }
        if (!have_resp && flen == clen + 9 &&
            strncmp(fields[i], column, clen) == 0 &&
            strcmp(fields[i] + clen, "_response") == 0) {
            *answer_col = i;
            have_resp = true;
        }
        if (!have_resp && !have_exact && strcmp(fields[i], column) == 0) {
            *answer_col = i;
            have_exact = true;
        }
    }
    if (!have_resp && !have_exact) {
        snprintf(errstr, errstr_size,
                 "--replay-model '%s': the CSV has no column '%s_response' "
                 "or '%s'",
                 column, column, column);
        return -1;
    }
    if (*answer_col == *prompt_col) {
        snprintf(errstr, errstr_size,
                 "--replay-model '%s' is the prompt column", column);
        return -1;
    }
    return 0;
}

/* A recorded confidence: a number in [0,1], or empty for none. */
static int parse_conf(const char *s, double *conf)
{
    if (*s == '\0') {
        *conf = -1;
        return 0;
    }
    if (ks_parse_double(s, conf) != 0 || !(*conf >= 0) || *conf > 1) {
        return -1;
    }
    return 0;
}

static int load_rows(struct sim_replay *rp,
                     struct sim_csv *csv,
                     size_t prompt_col,
                     size_t answer_col,
                     size_t conf_col,
                     char *errstr,
                     size_t errstr_size)
{
    char *fields[SIM_REPLAY_MAX_FIELDS];
    size_t n, cap = 0, row = 0;
    int rc;

    while ((rc = sim_csv_next(csv, fields, SIM_REPLAY_MAX_FIELDS, &n, errstr,
                              errstr_size)) == 1) {
        struct entry *e;

        row++;
        if (n <= prompt_col || n <= answer_col ||
            (conf_col != SIZE_MAX && n <= conf_col)) {
            snprintf(errstr, errstr_size,
                     "row %zu (line %zu) has %zu fields, fewer than the "
                     "header",
                     row, csv->line, n);
            return -1;
        }
        if (rp->n == SIM_REPLAY_MAX_ROWS) {
            snprintf(errstr, errstr_size, "more than %d rows",
                     SIM_REPLAY_MAX_ROWS);
            return -1;
        }
        if (rp->n == cap) {
            cap = cap ? cap * 2 : 1024;
            rp->entries = ks_xrealloc(rp->entries, cap * sizeof(*e));
        }
        e = &rp->entries[rp->n++];
        trim(fields[prompt_col], strlen(fields[prompt_col]), &e->prompt,
             &e->prompt_len);
        e->answer = fields[answer_col];
        e->conf = -1;
        if (conf_col != SIZE_MAX &&
            parse_conf(fields[conf_col], &e->conf) != 0) {
            snprintf(errstr, errstr_size,
                     "row %zu (line %zu): the confidence must be a number "
                     "in [0,1] or empty",
                     row, csv->line);
            return -1;
        }
        e->row = row;
    }
    return rc;
}

/* Sorts and drops every repeat of a prompt after its first row. */
static void index_entries(struct sim_replay *rp)
{
    size_t out = 0;

    if (rp->n == 0) {
        return;
    }
    qsort(rp->entries, rp->n, sizeof(rp->entries[0]), entry_cmp);
    for (size_t i = 0; i < rp->n; i++) {
        if (out > 0 &&
            key_cmp(rp->entries[out - 1].prompt,
                    rp->entries[out - 1].prompt_len, rp->entries[i].prompt,
                    rp->entries[i].prompt_len) == 0) {
            continue;
        }
        rp->entries[out++] = rp->entries[i];
    }
    rp->n = out;
}

struct sim_replay *sim_replay_load(const char *path,
                                   const char *column,
                                   char *errstr,
                                   size_t errstr_size)
{
    struct sim_replay *rp = ks_xcalloc(1, sizeof(*rp));
    char *fields[SIM_REPLAY_MAX_FIELDS];
    char err[256];
    struct sim_csv csv;
    size_t len = 0, n, prompt_col, answer_col = 0, conf_col;
    int rc;

    rp->buf = read_file(path, &len, errstr, errstr_size);
    if (rp->buf == NULL) {
        goto out_free;
    }
    sim_csv_init(&csv, rp->buf, len);
    rc =
        sim_csv_next(&csv, fields, SIM_REPLAY_MAX_FIELDS, &n, err, sizeof(err));
    if (rc != 1) {
        snprintf(errstr, errstr_size, "--replay %s: %s", path,
                 rc == 0 ? "empty file" : err);
        goto out_free;
    }
    if (header_columns(fields, n, column, &prompt_col, &answer_col, &conf_col,
                       errstr, errstr_size) != 0) {
        goto out_free;
    }
    rp->column = ks_xstrdup(fields[answer_col]);
    if (load_rows(rp, &csv, prompt_col, answer_col, conf_col, err,
                  sizeof(err)) != 0) {
        snprintf(errstr, errstr_size, "--replay %s: %s", path, err);
        goto out_free;
    }
    index_entries(rp);
    return rp;
out_free:
    sim_replay_destroy(rp);
    return NULL;
}

static const struct entry *find(const struct sim_replay *rp,
                                const char *prompt,
                                size_t len)
{
    const char *key;
    size_t klen, lo = 0, hi = rp->n;

    trim(prompt, len, &key, &klen);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct entry *e = &rp->entries[mid];
        int c = key_cmp(key, klen, e->prompt, e->prompt_len);

        if (c == 0) {
            return e;
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

const char *sim_replay_find(const struct sim_replay *rp,
                            const char *prompt,
                            size_t len)
{
    const struct entry *e = find(rp, prompt, len);

    return e ? e->answer : NULL;
}

double sim_replay_confidence(const struct sim_replay *rp,
                             const char *prompt,
                             size_t len)
{
    const struct entry *e = find(rp, prompt, len);

    return e ? e->conf : -1;
}

size_t sim_replay_size(const struct sim_replay *rp)
{
    return rp->n;
}

const char *sim_replay_column(const struct sim_replay *rp)
{
    return rp->column;
}

void sim_replay_destroy(struct sim_replay *rp)
{
    if (rp == NULL) {
        return;
    }
    free(rp->entries);
    free(rp->column);
    free(rp->buf);
    free(rp);
}
