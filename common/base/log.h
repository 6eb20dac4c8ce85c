/*
 * log.h - one line per event on stderr:
 *   2026-11-23T17:50:01.123Z INFO  router: routed t-42 to local
 * The macros check the level before evaluating their arguments. Thread-safe
 * (one fprintf per line). Never pass secrets; bodies only at DEBUG.
 * Ownership: arguments are borrowed for the call; nothing is returned.
 */
#ifndef KASCADE_COMMON_BASE_LOG_H
#define KASCADE_COMMON_BASE_LOG_H

enum ks_log_level {
    KS_LOG_ERROR = 0,
    KS_LOG_WARN,
    KS_LOG_INFO,
    KS_LOG_DEBUG,
};

extern enum ks_log_level ks_log_threshold;

/* Every %s value is cut to KS_LOG_VALUE_MAX bytes and every line to
 * KS_LOG_LINE_MAX (newline included); control bytes are written as \n,
 * \r, \t or \xNN. Done in ks_log_write, so no call site can forget a
 * value taken from a message. */
#define KS_LOG_VALUE_MAX 256
#define KS_LOG_LINE_MAX  2048

/* Sets the threshold from a name ("error", "warn", "info", "debug").
 * Returns 0, or -1 when the name is unknown (threshold unchanged). */
int ks_log_set_level(const char *name);

/* Writes one line. Use the macros below instead. */
void ks_log_write(enum ks_log_level level,
                  const char *tag,
                  const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));

/* Formats errnum into buf with strerror_r; returns buf. */
const char *ks_strerror(int errnum, char *buf, unsigned long size);

#define KS_LOG(level, tag, ...)                                                \
    do {                                                                       \
        if ((level) <= ks_log_threshold) {                                     \
            ks_log_write((level), (tag), __VA_ARGS__);                         \
        }                                                                      \
    } while (0)

#define ks_log_error(tag, ...) KS_LOG(KS_LOG_ERROR, tag, __VA_ARGS__)
#define ks_log_warn(tag, ...)  KS_LOG(KS_LOG_WARN, tag, __VA_ARGS__)
#define ks_log_info(tag, ...)  KS_LOG(KS_LOG_INFO, tag, __VA_ARGS__)
#define ks_log_debug(tag, ...) KS_LOG(KS_LOG_DEBUG, tag, __VA_ARGS__)

#endif
