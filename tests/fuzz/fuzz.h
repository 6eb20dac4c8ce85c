/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz share: the entry
 * point's prototype, codec limits small enough that every cap is reached
 * within a fuzzer's max_len, and a per-process file for the readers that
 * take a path (the config and the model file).
 */
#ifndef KASCADE_TESTS_FUZZ_FUZZ_H
#define KASCADE_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "base/log.h"
#include "wire/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Defaults scaled down so that each cap is within reach of an input of a
 * few KiB (run.sh gives the codec targets -max_len 16384). */
static inline void fuzz_limits(struct ks_codec_limits *lim)
{
    ks_codec_limits_default(lim);
    lim->max_message_bytes = 12288;
    lim->max_id_bytes = 64;
    lim->max_text_bytes = 2048;
    lim->max_messages = 8;
    lim->max_metadata = 8;
    lim->max_path = 4;
}

/* Errors only: a refused input is the normal case, not news. */
static inline void fuzz_quiet(void)
{
    ks_log_set_level("error");
}

static char fuzz_path[256];

static inline void fuzz_file_remove(void)
{
    unlink(fuzz_path);
}

/* Writes data to this process's scratch file and returns its path (static,
 * made once; removed at a normal exit, left behind by a crash). Aborts when
 * it cannot: the fuzzer would otherwise test nothing. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    char *path = fuzz_path;
    FILE *fp;

    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        int fd;

        snprintf(path, sizeof(fuzz_path), "%s/ks-fuzz.XXXXXX",
                 dir && *dir ? dir : "/tmp");
        fd = mkstemp(path);
        if (fd < 0) {
            abort();
        }
        close(fd);
        atexit(fuzz_file_remove);
    }
    fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0) {
        abort();
    }
    return path;
}

/* The format the daemons pick for a record without a content-type header:
 * JSON when the first non-blank byte is '{', protobuf otherwise. */
static inline enum ks_format fuzz_detect(const uint8_t *data, size_t size)
{
    struct ks_codec_error cerr;
    enum ks_format fmt;

    if (ks_codec_detect(NULL, data, size, &fmt, &cerr) != KS_OK) {
        return KS_FORMAT_PROTOBUF;
    }
    return fmt;
}

/* The entry point of a codec target for envelope obj (task, result,
 * escalation) in format fmt (an expression of data and size): decode; what
 * decodes must encode, and the encoding must decode again. */
#define FUZZ_CODEC_TARGET(obj, fmt_expr)                                       \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)               \
    {                                                                          \
        struct ks_codec_limits lim;                                            \
        struct ks_codec_error cerr;                                            \
        struct ks_##obj *first = NULL;                                         \
        struct ks_##obj *again = NULL;                                         \
        enum ks_format fmt = (fmt_expr);                                       \
        char *buf = NULL;                                                      \
        size_t len = 0;                                                        \
                                                                               \
        fuzz_limits(&lim);                                                     \
        if (ks_##obj##_decode(fmt, data, size, &lim, &first, &cerr) !=         \
            KS_OK) {                                                           \
            return 0;                                                          \
        }                                                                      \
        if (ks_##obj##_encode(fmt, first, &buf, &len) != KS_OK) {              \
            abort();                                                           \
        }                                                                      \
        lim.max_message_bytes = len + 1;                                       \
        if (ks_##obj##_decode(fmt, buf, len, &lim, &again, &cerr) != KS_OK) {  \
            fprintf(stderr, "re-decode refused: %s %s\n", cerr.code,           \
                    cerr.detail);                                              \
            abort();                                                           \
        }                                                                      \
        ks_##obj##_destroy(again);                                             \
        free(buf);                                                             \
        ks_##obj##_destroy(first);                                             \
        return 0;                                                              \
    }

#endif
