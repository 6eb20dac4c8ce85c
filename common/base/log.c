/*
 * log.c - the line logger. Timestamps are wall-clock UTC (logs are the one
 * place wall time belongs); each line is built in a buffer and written with
 * one call so lines from threads never interleave.
 *
 * Values in log lines often come from messages (task ids, topics,
 * reply_to, decoder details, provider error bodies): every %s is capped
 * at KS_LOG_VALUE_MAX bytes and every control byte escaped here, in the
 * one formatter, so no call site can forget and no value can forge a
 * line or drive the terminal.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdbool.h>
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

/* fmt with a precision of KS_LOG_VALUE_MAX added to every %s that has
 * none, in buf; fmt itself if buf is too small. */
static const char *cap_values(const char *fmt, char *buf, size_t size)
{
    static const char flags[] = "-+ #0123456789*'hlLqjzt";
    size_t n = 0;
    int extra = snprintf(NULL, 0, ".%d", KS_LOG_VALUE_MAX);

    for (const char *p = fmt; *p; p++) {
        bool precision = false;

        if (n + 2 >= size) {
            return fmt;
        }
        buf[n++] = *p;
        if (*p != '%') {
            continue;
        }
        for (p++; *p && (strchr(flags, *p) || *p == '.'); p++) {
            precision |= *p == '.';
            if (n + 2 >= size) {
                return fmt;
            }
            buf[n++] = *p;
        }
        if (!*p) {
            break;
        }
        if (*p == 's' && !precision) {
            if (n + (size_t)extra + 2 >= size) {
                return fmt;
            }
            n += (size_t)snprintf(buf + n, size - n, ".%d", KS_LOG_VALUE_MAX);
        }
        buf[n++] = *p;
    }
    buf[n] = '\0';
    return buf;
}

/* Appends src to line (length *n, room for KS_LOG_LINE_MAX - 1 bytes)
 * with control bytes escaped; stops, marking the cut, when full. */
static void put_escaped(char *line, size_t *n, const char *src)
{
    static const char cut[] = "...";
    const size_t room = KS_LOG_LINE_MAX - 1 - (sizeof(cut) - 1);

    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char esc[5];
        size_t len = 1;

        esc[0] = (char)*p;
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            len = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", *p);
            len = 4;
        }
        if (*n + len > room) {
            memcpy(line + *n, cut, sizeof(cut) - 1);
            *n += sizeof(cut) - 1;
            return;
        }
        memcpy(line + *n, esc, len);
        *n += len;
    }
}

void ks_log_write(enum ks_log_level level,
                  const char *tag,
                  const char *fmt,
                  ...)
{
    char line[KS_LOG_LINE_MAX];
    char capped[512], msg[KS_LOG_LINE_MAX * 2];
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
    /* The format is the program's; the values may be a message's. */
    fmt = cap_values(fmt, capped, sizeof(capped));
    va_start(ap, fmt);
    r = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r < 0) {
        msg[0] = '\0';
    }
    put_escaped(line, &n, msg);
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
