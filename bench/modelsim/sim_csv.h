/*
 * sim_csv.h - a strict RFC 4180 CSV reader over a buffer in memory:
 * quoted fields with "" escapes and line breaks inside them, LF or CRLF
 * record ends. Fields are decoded in place. One reader per thread.
 */
#ifndef KASCADE_MODELSIM_SIM_CSV_H
#define KASCADE_MODELSIM_SIM_CSV_H

#include <stddef.h>

struct sim_csv {
    char *p;     /* next byte to read */
    char *end;   /* *end must be a writable NUL (buffer of len + 1) */
    size_t line; /* line of p, from 1, for error messages */
};

/* Starts reading buf, len bytes followed by a NUL at buf[len]. The buffer
 * is borrowed and rewritten: the fields returned point into it and stay
 * valid as long as it does. */
void sim_csv_init(struct sim_csv *csv, char *buf, size_t len);

/* Reads the next record into fields[0..*n_fields), each a NUL-terminated
 * string inside the buffer. Blank lines are skipped. Returns 1 with a
 * record, 0 at the end of the buffer, -1 with a reason in errstr (an
 * unterminated quote, a stray byte after a closing quote, more than
 * max_fields fields). */
int sim_csv_next(struct sim_csv *csv,
                 char **fields,
                 size_t max_fields,
                 size_t *n_fields,
                 char *errstr,
                 size_t errstr_size);

#endif
