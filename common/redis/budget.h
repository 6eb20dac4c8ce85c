/*
 * budget.h - daily cost budgets in Redis (docs/design.md section 7).
 *
 * Keys (prefix from redis.prefix, days in UTC as YYYYMMDD):
 *   <p>budget:<day>:tier:<tier>, <p>budget:<day>:tenant:<tenant>
 *       hashes with `spent` and `reserved` in micro-dollars; they expire
 *       two days after their day;
 *   <p>budget:<day>:tier:<tier>:res (and :tenant:) - a sorted set of open
 *       reservation ids scored by their expiry (ms), with the amount of
 *       each in the hash <p>budget:<day>:tier:<tier>:amt;
 *   <p>budget:<day>:tier:<tier>:swept - ids of reservations swept after
 *       expiry, so a late settle still counts its spend, once;
 *   <p>limit:tier:<tier>, <p>limit:tenant:<tenant> - runtime daily limits
 *       in micro-dollars that override the config (`kascade budget set`).
 *
 * A reservation of the worst-case cost is taken before a call by one Lua
 * script, atomically against the tier's and the tenant's limits, and is
 * refused when spent + reserved + cost would pass either; after the call
 * another script settles the actual cost and releases the rest. Expired
 * reservations (a worker killed mid-call) are swept by the scripts
 * themselves. Counters are never deleted to "fix" them.
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

/* What a reservation needs to be settled later; filled by reserve. */
struct ks_budget_reservation {
    char id[48]; /* unique: "<host>-<pid>-<counter>" */
    char day[9]; /* YYYYMMDD the reservation counts against */
    char tier[65];
    char tenant[129]; /* "" when the task has no tenant */
    int64_t amount_micro;
};

/* The state of one budget for one day. */
struct ks_budget_state {
    int64_t limit_micro;   /* KS_BUDGET_NO_LIMIT when unlimited */
    bool limit_is_runtime; /* from <p>limit:* rather than the config */
    int64_t spent_micro;
    int64_t reserved_micro;
};

/* The UTC day of wall-clock time now_ms as YYYYMMDD into day[9]. */
void ks_budget_day(int64_t now_ms, char day[9]);

/* Reserves cost_micro against tier (config limit tier_limit_micro, or
 * KS_BUDGET_NO_LIMIT) and, when tenant is non-empty, against tenant
 * (tenant_limit_micro), for the day of now_ms, expiring at now_ms +
 * ttl_ms. Runtime limits in Redis override the given ones. Returns KS_OK
 * with *res filled; KS_ERR_BUDGET when either budget cannot take it
 * (*refused_by set to "tier" or "tenant"); KS_ERR_RETRY when Redis is
 * unreachable. */
enum ks_err ks_budget_reserve(struct ks_store *rs,
                              const char *tier,
                              int64_t tier_limit_micro,
                              const char *tenant,
                              int64_t tenant_limit_micro,
                              int64_t cost_micro,
                              int64_t now_ms,
                              int64_t ttl_ms,
                              struct ks_budget_reservation *res,
                              const char **refused_by);

/* Settles res with the actual cost (0 when the call failed and nothing is
 * owed): spent += actual, reserved -= the reserved amount (unless the
 * reservation had already expired and been swept). Idempotent per
 * reservation id. Returns KS_OK or KS_ERR_RETRY. */
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

/* Adds spend that happened without a reservation (fail-open replay).
 * Returns KS_OK or KS_ERR_RETRY. */
enum ks_err ks_budget_add_spent(struct ks_store *rs,
                                const char *day,
                                const char *kind,
                                const char *name,
                                int64_t micro);

/* Reads the state of budget kind ("tier" or "tenant") name for day,
 * sweeping expired reservations first; config_limit_micro applies unless a
 * runtime limit is set. Returns KS_OK or KS_ERR_RETRY. */
enum ks_err ks_budget_read(struct ks_store *rs,
                           const char *kind,
                           const char *name,
                           const char *day,
                           int64_t config_limit_micro,
                           int64_t now_ms,
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
