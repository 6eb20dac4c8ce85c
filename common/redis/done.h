/*
 * done.h - the done records (docs/design.md section 7): the outcome of a
 * finished call, stored so a redelivered task is answered again without a
 * second model call.
 *
 * One record per task, not per id: the key is
 * <prefix>done:<tenant>:<id>:<hop> with tenant and id encoded
 * (ks_store_key_part; no tenant is KS_STORE_NO_TENANT), and the value
 * starts with the task's digest (wire/digest.h, 64 hex digits) before the
 * stored outcome. A record whose digest is not the task's belongs to
 * another task that reused the id: it is never returned as the task's
 * own (*conflict instead).
 *
 * Values returned are new copies the caller frees, without the digest.
 * Thread rule: that of the store.
 */
#ifndef KASCADE_COMMON_REDIS_DONE_H
#define KASCADE_COMMON_REDIS_DONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "redis/store.h"
#include "wire/codec.h"


/* Looks up task's record for hop. On KS_OK *valuep is a new copy the
 * caller frees (NULL when there is none, or when the record is another
 * task's: *conflict is then true) of *lenp bytes. Returns KS_ERR_RETRY
 * when Redis is unreachable, KS_ERR_UPSTREAM on an error reply,
 * KS_ERR_INVALID when the key does not fit. */
enum ks_err ks_store_done_get(struct ks_store *rs,
                              const struct ks_task *task,
                              uint32_t hop,
                              char **valuep,
                              size_t *lenp,
                              bool *conflict);

/* Stores the outcome of task's finished call for hop, after its digest,
 * with the configured TTL. Returns KS_OK, KS_ERR_RETRY, KS_ERR_UPSTREAM or
 * KS_ERR_INVALID as above. */
enum ks_err ks_store_done_put(struct ks_store *rs,
                              const struct ks_task *task,
                              uint32_t hop,
                              const void *value,
                              size_t len);

/* The look-up of task's record for hop as one command of a batch
 * (store.h), for callers that send it with other commands: appends the
 * GET to b and sets *idx. Returns KS_OK, or KS_ERR_INVALID when the key
 * does not fit (nothing appended). */
enum ks_err ks_store_done_get_add(const struct ks_store *rs,
                                  struct ks_store_batch *b,
                                  const struct ks_task *task,
                                  uint32_t hop,
                                  size_t *idx);

/* Its answer once b has run: as ks_store_done_get (KS_ERR_RETRY when the
 * batch did not run). On KS_ERR_UPSTREAM ks_store_last_error may name
 * another command's error of the same batch. */
enum ks_err ks_store_done_get_reply(const struct ks_store *rs,
                                    const struct ks_store_batch *b,
                                    size_t idx,
                                    const struct ks_task *task,
                                    char **valuep,
                                    size_t *lenp,
                                    bool *conflict);

/* The store of task's record for hop as one command of a batch, like
 * ks_store_done_get_add: appends the SET (value copied) and sets *idx.
 * Returns KS_OK, KS_ERR_INVALID when the key does not fit or
 * KS_ERR_NOMEM (nothing appended). */
enum ks_err ks_store_done_put_add(const struct ks_store *rs,
                                  struct ks_store_batch *b,
                                  const struct ks_task *task,
                                  uint32_t hop,
                                  const void *value,
                                  size_t len,
                                  size_t *idx);

/* Its answer once b has run: KS_OK, KS_ERR_RETRY when the batch did not
 * run, KS_ERR_UPSTREAM on an error reply (logged). */
enum ks_err ks_store_done_put_reply(const struct ks_store_batch *b,
                                    size_t idx,
                                    const struct ks_task *task);

/* ks_store_done_get for n records in one round trip: values[i] (caller
 * frees; NULL when there is none or it is another task's, conflicts[i]
 * then true) of lens[i] bytes. Returns KS_OK, or KS_ERR_RETRY,
 * KS_ERR_UPSTREAM (any one error reply) or KS_ERR_INVALID (a key that
 * does not fit) with every value NULL: look the records up one by one. */
enum ks_err ks_store_done_get_many(struct ks_store *rs,
                                   size_t n,
                                   const struct ks_task *const *tasks,
                                   const uint32_t *hops,
                                   char **values,
                                   size_t *lens,
                                   bool *conflicts);

/* ks_store_done_put for n records in one round trip; errs[i] says how
 * each went (KS_OK, KS_ERR_RETRY, KS_ERR_UPSTREAM or KS_ERR_INVALID).
 * Returns KS_ERR_RETRY when Redis was unreachable for the whole batch. */
enum ks_err ks_store_done_put_many(struct ks_store *rs,
                                   size_t n,
                                   const struct ks_task *const *tasks,
                                   const uint32_t *hops,
                                   const char *const *values,
                                   const size_t *lens,
                                   enum ks_err *errs);

#endif
