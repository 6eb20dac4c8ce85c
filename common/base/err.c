/* err.c - names and retry classes of enum ks_err. */
#include "base/err.h"

#include "base/banned.h"

const char *ks_err_str(enum ks_err err)
{
    switch (err) {
    case KS_OK:
        return "ok";
    case KS_ERR_INVALID:
        return "invalid";
    case KS_ERR_NOMEM:
        return "nomem";
    case KS_ERR_TOO_LARGE:
        return "too_large";
    case KS_ERR_TIMEOUT:
        return "timeout";
    case KS_ERR_RETRY:
        return "retry";
    case KS_ERR_BUDGET:
        return "budget";
    case KS_ERR_UPSTREAM:
        return "upstream";
    case KS_ERR_FATAL:
        return "fatal";
    }
    return "unknown";
}

bool ks_err_is_retriable(enum ks_err err)
{
    return err == KS_ERR_TIMEOUT || err == KS_ERR_RETRY;
}
