/*
 * util.h - small helpers every module uses: clocks, bounded strings,
 * checked allocation for bookkeeping (aborts with a log line on OOM; never
 * use these for anything sized by the outside world).
 * Ownership: what ks_x*alloc and ks_x*strdup return, the caller owns
 * (free()); a struct ks_buf owns its data until ks_buf_fini, or until
 * ks_buf_take hands it to the caller.
 */
#ifndef KASCADE_COMMON_BASE_UTIL_H
#define KASCADE_COMMON_BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds, for deadlines and backoff. */
int64_t ks_mono_ms(void);

/* Wall-clock milliseconds since the epoch, for logs and budget days. */
int64_t ks_wall_ms(void);

/* Bookkeeping allocation: abort with a log line when memory is gone. */
void *ks_xmalloc(size_t size);
void *ks_xcalloc(size_t n, size_t size);
void *ks_xrealloc(void *p, size_t size);
char *ks_xstrdup(const char *s);
/* Copies len bytes and a terminating NUL. Caller owns the result. */
char *ks_xstrndup(const char *s, size_t len);

/* Copies src into dst (size bytes, always NUL-terminated).
 * Returns strlen(src); a value >= size means truncation. */
size_t ks_strlcpy(char *dst, const char *src, size_t size);

/* Parses a whole decimal string into *out. Returns 0, or -1 when s is not
 * a number in [min, max]. */
int ks_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses a whole decimal floating-point string into *out; 0 or -1. */
int ks_parse_double(const char *s, double *out);

/* A growable byte buffer, always NUL-terminated. Embed it and
 * ks_buf_init() it; the caller owns buf->data until ks_buf_fini(). */
struct ks_buf {
    char *data;
    size_t len, cap;
};

void ks_buf_init(struct ks_buf *buf);
void ks_buf_fini(struct ks_buf *buf);
void ks_buf_append(struct ks_buf *buf, const void *data, size_t len);
void ks_buf_printf(struct ks_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the data over: returns it (caller frees) and empties buf. */
char *ks_buf_take(struct ks_buf *buf);

#endif
