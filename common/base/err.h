/*
 * err.h - the project-wide error enum. Kafka, Redis, HTTP and JSON errors
 * are mapped into it once, at the boundary where they are seen.
 * Ownership: nothing here allocates; names are static strings.
 */
#ifndef KASCADE_COMMON_BASE_ERR_H
#define KASCADE_COMMON_BASE_ERR_H

#include <stdbool.h>

enum ks_err {
    KS_OK = 0,
    KS_ERR_INVALID,   /* bad input or config: not retriable */
    KS_ERR_NOMEM,     /* allocation failed */
    KS_ERR_TOO_LARGE, /* input over a configured cap */
    KS_ERR_TIMEOUT,   /* a deadline passed: retriable */
    KS_ERR_RETRY,     /* transient trouble (429, 5xx, reset): retriable */
    KS_ERR_BUDGET,    /* a cost budget refused the call */
    KS_ERR_UPSTREAM,  /* a peer answered with a permanent error */
    KS_ERR_FATAL,     /* the process cannot go on */
};

/* Returns a short static name for err ("invalid", "timeout", ...). */
const char *ks_err_str(enum ks_err err);

/* Returns true when the operation may succeed if simply tried again. */
bool ks_err_is_retriable(enum ks_err err);

#endif
