/* util.c - clocks, bounded strings and bookkeeping allocation. */
#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

#include "base/banned.h"

int64_t ks_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ks_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *oom(size_t size)
{
    ks_log_error("util", "out of memory allocating %zu bytes", size);
    abort();
}

void *ks_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    return p ? p : oom(size);
}

void *ks_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    return p ? p : oom(n * size);
}

void *ks_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    return q ? q : oom(size);
}

char *ks_xstrdup(const char *s)
{
    return ks_xstrndup(s, strlen(s));
}

char *ks_xstrndup(const char *s, size_t len)
{
    char *p = ks_xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

size_t ks_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);

    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;

        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

int ks_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int ks_parse_double(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

void ks_buf_init(struct ks_buf *buf)
{
    buf->cap = 256;
    buf->len = 0;
    buf->data = ks_xmalloc(buf->cap);
    buf->data[0] = '\0';
}

void ks_buf_fini(struct ks_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

static void buf_reserve(struct ks_buf *buf, size_t more)
{
    if (buf->len + more + 1 > buf->cap) {
        while (buf->len + more + 1 > buf->cap) {
            buf->cap *= 2;
        }
        buf->data = ks_xrealloc(buf->data, buf->cap);
    }
}

void ks_buf_append(struct ks_buf *buf, const void *data, size_t len)
{
    buf_reserve(buf, len);
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void ks_buf_printf(struct ks_buf *buf, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= buf->cap - buf->len) {
        buf_reserve(buf, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
        va_end(ap);
    }
    buf->len += (size_t)n;
}

char *ks_buf_take(struct ks_buf *buf)
{
    char *data = buf->data;

    buf->data = NULL;
    buf->len = buf->cap = 0;
    return data;
}
