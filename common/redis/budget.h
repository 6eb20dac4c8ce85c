/*
 * budget.h - daily cost budgets in Redis (docs/design.md section 7).
 *
 * Keys (prefix from redis.prefix, days in UTC as YYYYMMDD); every one
 * carries the hash tag {budget}, so each script call stays in one Redis
 * Cluster slot (all budgets live on one shard):
 *   <p>{budget}:<day>:tier:<tier>, <p>{budget}:<day>:tenant:<tenant>
 *       hashes with `spent`, `reserved` and `expired_micro` (the part of
 *       spent charged at worst case for reservations that were never
 *       settled) in micro-dollars; they expire two days after their day;
 *   <that>:res - a sorted set of open reservation ids scored by their
 *       expiry (ms by Redis TIME), with "<amount> <owner>" of each in the
 *       hash <that>:amt;
 *   <that>:swept - ids of reservations charged by a sweep, so a late
 *       settle does not count them twice;
 *   <p>{budget}:limit:tier:<tier>, <p>{budget}:limit:tenant:<tenant> -
 *       runtime daily limits in micro-dollars that override the config
 *       (`kascade budget set`);
 *   <p>{budget}:live - a sorted set: worker (owner) id -> the end of its
 *       liveness (ms by Redis TIME); <p>{budget}:w:<owner> - the owner's
 *       open reservations ("<budget key>\n<id>").
 *
 * A reservation of the worst-case cost is taken before a call by one Lua
 * script, atomically against the tier's and the tenant's limits, and is
 * refused when spent + reserved + cost would pass either; after the call
 * another script settles the actual cost and releases the rest. A
 * reservation that is never settled is charged at its worst case (spent
 * += amount, expired_micro += amount) by the sweep in every script, once
 * it expires (Redis TIME) or once its owner's liveness lapses (a worker
 * killed mid-call: within KS_BUDGET_LIVE_MS). So spent never passes a
 * limit, and never falls below what the settled calls cost plus the
 * worst case of the ones that were not. Counters are never deleted.
 *
 * <tier> and <tenant> are the names encoded by ks_store_key_part (store.h),
 * so tenant `acme:res` is `...:tenant:acme%3Ares`, never tenant `acme`'s
 * reservation set.
 *
 * Every function also returns KS_ERR_INVALID for bad arguments (an empty
 * or overlong name, a negative cost, an unknown kind), and KS_ERR_UPSTREAM
 * when Redis answered with an error (WRONGTYPE, a script's error, a
 * garbage runtime limit): permanent for that call, never "Redis down", so
 * never a reason to fail open. KS_ERR_RETRY means unreachable only.
 * Not thread-safe: uses the caller's store connection.
 */
#ifndef KASCADE_COMMON_REDIS_BUDGET_H
#define KASCADE_COMMON_REDIS_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "redis/store.h"

#define KS_BUDGET_NO_LIMIT (-1)

/* The hash tag after the prefix of every budget key (see above). */
#define KS_BUDGET_TAG "{budget}"

/* How long a worker's liveness lasts after its last renewal (reserve,
 * ks_budget_live_read): its reservations are charged and released this
 * long after it stopped renewing. Renew about every second. */
#define KS_BUDGET_LIVE_MS 5000

/* A worker whose reservations are charged when its liveness lapses. The
 * caller owns it (embed it); one per process is enough. */
struct ks_budget_owner {
    char id[64]; /* unique, key-safe; filled by ks_budget_owner_init */
    int64_t live_ms;
};

/* What a reservation needs to be settled later; filled by reserve. */
struct ks_budget_reservation {
    char id[64]; /* unique: "<host>-<pid>-<random>-<counter>" */
    char day[9]; /* YYYYMMDD the reservation counts against */
    char tier[65];
    char tenant[129]; /* "" when the task has no tenant */
    char owner[64];   /* the owner's id; "" when none */
    int64_t amount_micro;
};

/* One reservation of ks_budget_reserve_many: names borrowed for the call;
 * tenant "" or NULL for none; limits KS_BUDGET_NO_LIMIT when unlimited. */
struct ks_budget_request {
    const char *tier;
    int64_t tier_limit_micro;
    const char *tenant;
    int64_t tenant_limit_micro;
    int64_t cost_micro;
    int64_t ttl_ms; /* the reservation expires TIME + ttl_ms */
};

/* The state of one budget for one day. */
struct ks_budget_state {
    int64_t limit_micro;   /* KS_BUDGET_NO_LIMIT when unlimited */
    bool limit_is_runtime; /* from <p>limit:* rather than the config */
    int64_t spent_micro;
    int64_t reserved_micro;
    int64_t expired_micro; /* of spent: charged at worst case by sweeps */
};

/* A new owner id (host, pid, random, counter) whose liveness lasts
 * live_ms after each renewal. */
void ks_budget_owner_init(struct ks_budget_owner *o, int64_t live_ms);

/* The UTC day of wall-clock time now_ms as YYYYMMDD into day[9]. */
void ks_budget_day(int64_t now_ms, char day[9]);

/* Reserves cost_micro against tier (config limit tier_limit_micro, or
 * KS_BUDGET_NO_LIMIT) and, when tenant is non-empty, against tenant
 * (tenant_limit_micro), for the day of now_ms (the caller's clock: the
 * budget day), expiring ttl_ms after Redis TIME, owned by owner (borrowed;
 * NULL: no owner, expiry only), whose liveness it renews. Runtime limits
 * in Redis override the given ones. Returns KS_OK with *res filled;
 * KS_ERR_BUDGET when either budget cannot take it (*refused_by set to
 * "tier" or "tenant"); KS_ERR_RETRY when Redis is unreachable, or did not
 * answer in time. In the second case the script may still run (a stall
 * longer than the client's timeout): *res then names the reservation
 * that may exist, and the caller settles it at 0 once Redis is back (it
 * changes nothing when the reservation was never made). When the request
 * was never sent (ks_store_sent), and on any other error, *res is
 * cleared. */
enum ks_err ks_budget_reserve(struct ks_store *rs,
                              const struct ks_budget_owner *owner,
                              const char *tier,
                              int64_t tier_limit_micro,
                              const char *tenant,
                              int64_t tenant_limit_micro,
                              int64_t cost_micro,
                              int64_t now_ms,
                              int64_t ttl_ms,
                              struct ks_budget_reservation *res,
                              const char **refused_by);

/* ks_budget_reserve for n requests in one round trip, all owned by owner
 * (may be NULL): res[i], refused_by[i] and errs[i] as a single reserve
 * gives them. Returns KS_OK when every request got an answer (granted or
 * refused: errs[i] is KS_OK or KS_ERR_BUDGET), else the error of one that
 * did not. */
enum ks_err ks_budget_reserve_many(struct ks_store *rs,
                                   const struct ks_budget_owner *owner,
                                   size_t n,
                                   const struct ks_budget_request *req,
                                   int64_t now_ms,
                                   struct ks_budget_reservation *res,
                                   const char **refused_by,
                                   enum ks_err *errs);

/* Settles res with the actual cost (0 when no request was sent and
 * nothing is owed): spent += actual, reserved -= the reserved amount.
 * When a sweep already charged the reservation at its worst case (it
 * expired, or its owner's liveness lapsed), the actual cost replaces that
 * charge, once: the worker that made the call knows what it cost.
 * Idempotent per reservation id.
 * Returns KS_OK or KS_ERR_RETRY. */
enum ks_err ks_budget_settle(struct ks_store *rs,
                             const struct ks_budget_reservation *res,
                             int64_t actual_micro,
                             int64_t now_ms);

/* ks_budget_settle for n reservations in one round trip: errs[i] says how
 * each went. Returns KS_OK when all were settled, else the error of one
 * that was not (each failed one may be retried alone). */
enum ks_err ks_budget_settle_many(struct ks_store *rs,
                                  size_t n,
                                  const struct ks_budget_reservation *res,
                                  const int64_t *actual_micro,
                                  int64_t now_ms,
                                  enum ks_err *errs);

/* ks_budget_settle_many in two halves (store.h's deferred pipeline), so
 * that Redis settles while the caller goes on: send writes the settle
 * commands out and returns at once, errs[i] KS_OK for each one sent (else
 * its error: nothing was sent for it); recv, with the same arguments and
 * errs, reads their replies and sets errs[i] as ks_budget_settle_many
 * would (an error reply is settled again the single way). A settlement is
 * idempotent, so one whose reply was lost may be sent again. Nothing else
 * may send a deferred pipeline on rs in between. Both return as
 * ks_budget_settle_many. */
enum ks_err ks_budget_settle_many_send(struct ks_store *rs,
                                       size_t n,
                                       const struct ks_budget_reservation *res,
                                       const int64_t *actual_micro,
                                       int64_t now_ms,
                                       enum ks_err *errs);
enum ks_err ks_budget_settle_many_recv(struct ks_store *rs,
                                       size_t n,
                                       const struct ks_budget_reservation *res,
                                       const int64_t *actual_micro,
                                       int64_t now_ms,
                                       enum ks_err *errs);

/* Adds spend that happened without a reservation (fail-open replay).
 * Returns KS_OK or KS_ERR_RETRY. */
enum ks_err ks_budget_add_spent(struct ks_store *rs,
                                const char *day,
                                const char *kind,
                                const char *name,
                                int64_t micro);

/* Reads the state of budget kind ("tier" or "tenant") name for day,
 * charging expired reservations and those of lapsed owners first;
 * config_limit_micro applies unless a runtime limit is set; now_ms (the
 * caller's clock) only times the day keys' TTL: expiry is by Redis TIME.
 * Returns KS_OK or KS_ERR_RETRY. */
enum ks_err ks_budget_read(struct ks_store *rs,
                           const char *kind,
                           const char *name,
                           const char *day,
                           int64_t config_limit_micro,
                           int64_t now_ms,
                           struct ks_budget_state *st);

/* ks_budget_read that first renews owner's liveness (borrowed): the
 * worker's once-a-second round trip. */
enum ks_err ks_budget_live_read(struct ks_store *rs,
                                const struct ks_budget_owner *owner,
                                const char *kind,
                                const char *name,
                                const char *day,
                                int64_t config_limit_micro,
                                struct ks_budget_state *st);

/* Sets (micro >= 0) or clears (KS_BUDGET_NO_LIMIT) the runtime limit of
 * kind/name. Returns KS_OK or KS_ERR_RETRY. */
enum ks_err ks_budget_set_limit(struct ks_store *rs,
                                const char *kind,
                                const char *name,
                                int64_t micro);

/* `kascade budget reset`: moves today's spent of kind/name into the field
 * `reset_micro` (kept, for the record) and sets spent to 0; reservations
 * are left alone. Returns KS_OK or KS_ERR_RETRY. */
enum ks_err ks_budget_reset(struct ks_store *rs,
                            const char *kind,
                            const char *name,
                            const char *day);

#endif
