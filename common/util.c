/* util.c - clocks, bounded strings and bookkeeping allocation. */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#include "banned.h"

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
