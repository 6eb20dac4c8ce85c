/*
 * sim_csv.c - RFC 4180 records decoded in place.
 *
 * Invariant: the write position never passes the read position (decoding
 * only drops bytes: the quotes and one of each ""), so a field's
 * terminating NUL always lands on a byte already read.
 */
#include "sim_csv.h"

#include <stdbool.h>
#include <stdio.h>

#include "base/banned.h"

void sim_csv_init(struct sim_csv *csv, char *buf, size_t len)
{
    csv->p = buf;
    csv->end = buf + len;
    csv->line = 1;
}

/* Decodes a quoted field that starts after its opening quote at csv->p,
 * writing at *w. Returns 0, or -1 with a reason. */
static int quoted(struct sim_csv *csv, char **w, char *errstr, size_t size)
{
    size_t start_line = csv->line;

    for (;;) {
        char c;

        if (csv->p == csv->end) {
            snprintf(errstr, size, "line %zu: quoted field never closed",
                     start_line);
            return -1;
        }
        c = *csv->p++;
        if (c == '"') {
            if (csv->p < csv->end && *csv->p == '"') {
                csv->p++; /* "" is one quote */
            } else {
                return 0;
            }
        } else if (c == '\n') {
            csv->line++;
        }
        *(*w)++ = c;
    }
}

/* At the end of a field: true (and consumed) when the record ends here. */
static bool at_record_end(struct sim_csv *csv)
{
    if (csv->p == csv->end) {
        return true;
    }
    if (*csv->p == '\n') {
        csv->p++;
        csv->line++;
        return true;
    }
    if (*csv->p == '\r' && csv->p + 1 < csv->end && csv->p[1] == '\n') {
        csv->p += 2;
        csv->line++;
        return true;
    }
    return false;
}

int sim_csv_next(struct sim_csv *csv,
                 char **fields,
                 size_t max_fields,
                 size_t *n_fields,
                 char *errstr,
                 size_t errstr_size)
{
    *n_fields = 0;
    /* Blank lines between records carry nothing. */
    while (csv->p < csv->end && (*csv->p == '\n' || *csv->p == '\r')) {
        csv->line += *csv->p == '\n';
        csv->p++;
    }
    if (csv->p == csv->end) {
        return 0;
    }
    for (;;) {
        char *w = csv->p;
        char *field = w;

        if (*n_fields == max_fields) {
            snprintf(errstr, errstr_size, "line %zu: more than %zu fields",
                     csv->line, max_fields);
            return -1;
        }
        if (csv->p < csv->end && *csv->p == '"') {
            csv->p++;
            if (quoted(csv, &w, errstr, errstr_size) != 0) {
                return -1;
            }
        } else {
            while (csv->p < csv->end && *csv->p != ',' && *csv->p != '\n' &&
                   !(*csv->p == '\r' && csv->p + 1 < csv->end &&
                     csv->p[1] == '\n')) {
                *w++ = *csv->p++;
            }
        }
        fields[(*n_fields)++] = field;
        if (at_record_end(csv)) {
            *w = '\0';
            return 1;
        }
        if (*csv->p != ',') {
            snprintf(errstr, errstr_size,
                     "line %zu: unexpected byte 0x%02x after a closing quote",
                     csv->line, (unsigned char)*csv->p);
            return -1;
        }
        csv->p++;
        *w = '\0';
    }
}
