/*
 * test_log.c - the line logger: one line per call whatever the values
 * hold. Control characters in a value (a task id, a topic name, a
 * decoder's detail) are escaped, a value is capped at KS_LOG_VALUE_MAX
 * bytes and a line at KS_LOG_LINE_MAX, so a hostile message can neither
 * forge log lines nor flood the log. stderr is redirected to a temporary
 * file and read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"

#include "base/banned.h"

static char out[65536];

/* Runs the logger with stderr on a temporary file; returns what it wrote
 * (in out, NUL-terminated). */
#define CAPTURE(...)                                                           \
    do {                                                                       \
        FILE *tmp_ = tmpfile();                                                \
        int saved_ = dup(STDERR_FILENO);                                       \
        size_t n_;                                                             \
                                                                               \
        assert_non_null(tmp_);                                                 \
        fflush(stderr);                                                        \
        dup2(fileno(tmp_), STDERR_FILENO);                                     \
        __VA_ARGS__;                                                           \
        fflush(stderr);                                                        \
        dup2(saved_, STDERR_FILENO);                                           \
        close(saved_);                                                         \
        rewind(tmp_);                                                          \
        n_ = fread(out, 1, sizeof(out) - 1, tmp_);                             \
        out[n_] = '\0';                                                        \
        fclose(tmp_);                                                          \
    } while (0)

static size_t count_char(const char *s, char c)
{
    size_t n = 0;

    for (; *s; s++) {
        n += *s == c;
    }
    return n;
}

static void assert_no_control_but_the_newline(const char *s)
{
    size_t len = strlen(s);

    assert_true(len > 0);
    assert_int_equal(s[len - 1], '\n');
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f) {
            fail_msg("control byte 0x%02x at %zu in \"%s\"", c, i, s);
        }
    }
}

static void log_escapes_newlines_so_a_value_cannot_forge_a_line(void **state)
{
    (void)state;
    CAPTURE(ks_log_warn("router", "task %s to DLQ",
                        "x\n2026-01-01T00:00:00.000Z ERROR router: forged"));
    assert_int_equal(count_char(out, '\n'), 1);
    assert_no_control_but_the_newline(out);
    assert_non_null(strstr(out, "task x\\n2026-01-01T00:00:00.000Z ERROR"));
}

static void log_escapes_terminal_control_sequences(void **state)
{
    (void)state;
    CAPTURE(ks_log_info("worker", "id %s, topic %s, detail %s", "a\x1b[2Jb",
                        "t\r\tz", "d\x7f\x01"));
    assert_no_control_but_the_newline(out);
    assert_non_null(strstr(out, "id a\\x1b[2Jb, topic t\\r\\tz, "
                                "detail d\\x7f\\x01\n"));
}

static void log_caps_each_value_taken_from_a_message(void **state)
{
    static char id[10000];
    const char *p;

    (void)state;
    memset(id, 'i', sizeof(id) - 1);
    CAPTURE(ks_log_warn("router", "task %s of tenant %s", id, "acme"));
    assert_int_equal(count_char(out, '\n'), 1);
    p = strstr(out, "task ");
    assert_non_null(p);
    assert_true(strspn(p + 5, "i") <= KS_LOG_VALUE_MAX);
    /* the value after the long one is still there */
    assert_non_null(strstr(out, " of tenant acme\n"));
}

static void log_keeps_precision_and_width_the_caller_gave(void **state)
{
    (void)state;
    CAPTURE(ks_log_info("t", "[%.3s] [%-4s] [%5d] 100%%", "abcdef", "ab", 7));
    assert_non_null(strstr(out, "t: [abc] [ab  ] [    7] 100%\n"));
}

static void log_caps_the_whole_line(void **state)
{
    static char v[KS_LOG_VALUE_MAX + 1];

    (void)state;
    memset(v, '\x01', sizeof(v) - 1); /* escaped: four bytes each */
    CAPTURE(ks_log_error("t", "%s %s %s %s %s %s %s %s %s %s", v, v, v, v, v, v,
                         v, v, v, v));
    assert_int_equal(count_char(out, '\n'), 1);
    assert_true(strlen(out) <= KS_LOG_LINE_MAX);
    assert_no_control_but_the_newline(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_escapes_newlines_so_a_value_cannot_forge_a_line),
        cmocka_unit_test(log_escapes_terminal_control_sequences),
        cmocka_unit_test(log_caps_each_value_taken_from_a_message),
        cmocka_unit_test(log_keeps_precision_and_width_the_caller_gave),
        cmocka_unit_test(log_caps_the_whole_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
