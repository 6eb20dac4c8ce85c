/*
 * log.c - the line logger. Timestamps are wall-clock UTC (logs are the one
 * place wall time belongs); each line is built in a buffer and written with
 * one call so lines from threads never interleave.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/banned.h"

enum ks_log_level ks_log_threshold = KS_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int ks_log_set_level(const char *name)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            ks_log_threshold = (enum ks_log_level)i;
            return 0;
        }
    }
    return -1;
}

void ks_log_write(enum ks_log_level level,
                  const char *tag,
                  const char *fmt,
                  ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;
    int r;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n,
                 ".%03ldZ %-5s %s: ", ts.tv_nsec / 1000000, level_names[level],
                 tag);
    if (r > 0) {
        n += (size_t)r;
    }
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (r > 0) {
        n +=
            (size_t)r < sizeof(line) - n - 2 ? (size_t)r : sizeof(line) - n - 2;
    }
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}

const char *ks_strerror(int errnum, char *buf, unsigned long size)
{
    /* _DEFAULT_SOURCE gives the GNU strerror_r, which may return a static
     * string instead of filling buf. */
    const char *s = strerror_r(errnum, buf, size);

    if (s != buf) {
        snprintf(buf, size, "%s", s);
    }
    return buf;
}
