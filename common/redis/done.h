/*
 * done.h - the done records (docs/design.md section 7): the outcome of a
 * finished call, stored so a redelivered task is answered again without a
 * second model call. Values returned are new copies the caller frees.
 * Thread rule: that of the store.
 */
#ifndef KASCADE_COMMON_REDIS_DONE_H
#define KASCADE_COMMON_REDIS_DONE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "redis/store.h"

/* Looks up kascade:done:<id>:<hop>. On KS_OK *valuep is a new copy the
 * caller frees (NULL when there is no record) of *lenp bytes. Returns
 * KS_ERR_RETRY when Redis is unreachable. */
enum ks_err ks_store_done_get(struct ks_store *rs,
                              const char *id,
                              uint32_t hop,
                              char **valuep,
                              size_t *lenp);

/* Stores the outcome of a finished call with the configured TTL. Returns
 * KS_OK or KS_ERR_RETRY. */
enum ks_err ks_store_done_put(struct ks_store *rs,
                              const char *id,
                              uint32_t hop,
                              const void *value,
                              size_t len);

/* ks_store_done_get for n records in one round trip: values[i] (caller
 * frees; NULL when there is none) of lens[i] bytes. Returns KS_OK, or
 * KS_ERR_RETRY (every value NULL). */
enum ks_err ks_store_done_get_many(struct ks_store *rs,
                                   size_t n,
                                   const char *const *ids,
                                   const uint32_t *hops,
                                   char **values,
                                   size_t *lens);

/* ks_store_done_put for n records in one round trip; errs[i] says how
 * each went (KS_OK or KS_ERR_RETRY). Returns KS_ERR_RETRY when Redis was
 * unreachable for the whole batch. */
enum ks_err ks_store_done_put_many(struct ks_store *rs,
                                   size_t n,
                                   const char *const *ids,
                                   const uint32_t *hops,
                                   const char *const *values,
                                   const size_t *lens,
                                   enum ks_err *errs);

#endif
