/*
 * ratelimit.h - per-provider request-per-minute and token-per-minute
 * limits shared by every worker of the fleet through Redis.
 *
 * Keys (prefix from redis.prefix), one group per tier and provider index,
 * sharing the hash tag {<tier>:<provider>} (one Redis Cluster slot per
 * script call):
 *   <p>rate:{<tier>:<provider>}      sorted set: one member per admitted
 *                                    call, scored by its admission time (ms)
 *   <p>rate:{<tier>:<provider>}:tok  hash: member -> the call's tokens
 *   <p>rate:{<tier>:<provider>}:sum  string: the tokens of the window
 * All three expire two minutes after the last admission. <tier> is the
 * name encoded by ks_store_key_part (store.h), braces included.
 *
 * A sliding one-minute window (a log of admissions, not fixed minute
 * buckets): a call is admitted when, over the 60 s before it, fewer than
 * rpm calls and at most tpm - tokens tokens were admitted; so no 60 s
 * interval ever sees more than rpm calls or tpm tokens, with no burst at a
 * minute boundary. Memory is one member per call of the last minute (a
 * turn of k calls admitted together is k members).
 * Not thread-safe: uses the caller's store connection.
 * Ownership: nothing is allocated for the caller; tier is borrowed for
 * the call.
 */
#ifndef KASCADE_COMMON_REDIS_RATELIMIT_H
#define KASCADE_COMMON_REDIS_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "redis/store.h"

#define KS_RATELIMIT_WINDOW_MS  60000
#define KS_RATELIMIT_MEMBER_MAX 64 /* an admission's member id */

/* Admits one call of `tokens` against rpm and tpm (0: that limit is off)
 * of provider index `provider` of tier, atomically for the whole fleet.
 * now_ms is the wall clock in ms; 0 uses the Redis server's clock (what
 * workers do: one clock for the fleet, whatever their skew). A call of
 * more than tpm tokens is admitted only into an empty window.
 * Returns KS_OK with *admitted, and when refused *wait_ms > 0: how long
 * until it could be admitted; when admitted, member (NULL: not wanted) is
 * the admission's id for ks_ratelimit_release; KS_ERR_RETRY when Redis is
 * unreachable; KS_ERR_UPSTREAM when it answered with an error (the script
 * failed, WRONGTYPE): never "Redis down"; KS_ERR_INVALID for bad arguments. */
enum ks_err ks_ratelimit_admit(struct ks_store *rs,
                               const char *tier,
                               int provider,
                               int64_t rpm,
                               int64_t tpm,
                               int64_t tokens,
                               int64_t now_ms,
                               bool *admitted,
                               int64_t *wait_ms,
                               char member[KS_RATELIMIT_MEMBER_MAX]);

#define KS_RATELIMIT_CALLS_MAX 16 /* requests admitted together, at most */

/* One admission of ks_ratelimit_admit_many (tier borrowed for the call),
 * timed by the Redis server's clock: calls requests (0 or 1: one; up to
 * KS_RATELIMIT_CALLS_MAX, agreement's calls in flight together) of tokens
 * in all, each counted against rpm; ks_ratelimit_release releases them
 * together. */
struct ks_ratelimit_request {
    const char *tier;
    int provider;
    int64_t rpm, tpm, tokens;
    int calls;
};

/* Its answer: err as ks_ratelimit_admit returns it; when KS_OK, admitted
 * (with member) or not (with wait_ms > 0). */
struct ks_ratelimit_answer {
    enum ks_err err;
    bool admitted;
    int64_t wait_ms;
    char member[KS_RATELIMIT_MEMBER_MAX];
};

/* ks_ratelimit_admit for n requests in one round trip (pipelined; each is
 * the same atomic script call). Returns KS_OK when every one was answered,
 * else the error of one that was not. */
enum ks_err ks_ratelimit_admit_many(struct ks_store *rs,
                                    size_t n,
                                    const struct ks_ratelimit_request *req,
                                    struct ks_ratelimit_answer *ans);

/* Gives back the admission member (from ks_ratelimit_admit) of a call
 * that did not start: it no longer counts against rpm or tpm. Returns
 * KS_OK (also when it was given back already or left the window),
 * KS_ERR_RETRY when Redis is unreachable, KS_ERR_UPSTREAM on an error
 * reply, KS_ERR_INVALID for bad arguments. */
enum ks_err ks_ratelimit_release(struct ks_store *rs,
                                 const char *tier,
                                 int provider,
                                 const char *member);

#endif
