/*
 * budget_cmd.h - the keys and arguments of one budget script call, shared
 * by budget.c (single calls) and budget_many.c (pipelined ones). Internal
 * to common/redis: no other folder includes it. The commands borrow their
 * own buffers; build one with budget_*_prepare and use it before it goes
 * out of scope. Not thread-safe beyond what the store is.
 */
#ifndef KASCADE_COMMON_REDIS_BUDGET_CMD_H
#define KASCADE_COMMON_REDIS_BUDGET_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "redis/budget.h"
#include "redis/store.h"

/* The hash tag of every budget key (one Redis Cluster slot). */
#define BUDGET_TAG     KS_BUDGET_TAG
#define BUDGET_KEY_MAX 512
#define BUDGET_NUM_LEN 24

/* The keys of one budget (see budget_lua.h). */
struct budget_keys {
    char h[BUDGET_KEY_MAX], z[BUDGET_KEY_MAX], a[BUDGET_KEY_MAX],
        sw[BUDGET_KEY_MAX], l[BUDGET_KEY_MAX];
};

/* The reserve script's KEYS (L, W, then h z a sw l per budget) and ARGV. */
struct budget_reserve_cmd {
    struct budget_keys k[2];
    char live[BUDGET_KEY_MAX], owned[BUDGET_KEY_MAX];
    char cost[BUDGET_NUM_LEN], ttl_ms[BUDGET_NUM_LEN];
    char live_ms[BUDGET_NUM_LEN], ttl[BUDGET_NUM_LEN];
    char limits[2][BUDGET_NUM_LEN];
    char flags[4]; /* the sweep flags (budget_lua.h), when args has them */
    const char *keys[12], *args[9];
    int nkeys, nargs;
};

/* The settle script's KEYS (L, W, then h z a sw per budget) and ARGV. */
struct budget_settle_cmd {
    struct budget_keys k[2];
    char live[BUDGET_KEY_MAX], owned[BUDGET_KEY_MAX];
    char actual[BUDGET_NUM_LEN], ttl[BUDGET_NUM_LEN];
    const char *keys[10], *args[3];
    int nkeys, nargs;
};

extern struct ks_store_script budget_script_reserve;
extern struct ks_store_script budget_script_settle;
/* The batched scripts of budget_many.c (budget_lua.h). */
extern struct ks_store_script budget_script_reserve_many;
extern struct ks_store_script budget_script_settle_many;

/* Fills k for kind/name on day (NULL: only the limit key); the name goes
 * in encoded (ks_store_key_part). Returns 0, or -1 when a key does not
 * fit. */
int budget_keys_init(struct budget_keys *k,
                     const struct ks_store *rs,
                     const char *day,
                     const char *kind,
                     const char *name);

/* The liveness set and owner's reservation set (owner NULL or "": the
 * empty owner's, never written). Returns 0 or -1. */
int budget_fleet_keys(const struct ks_store *rs,
                      const char *owner,
                      char live[BUDGET_KEY_MAX],
                      char owned[BUDGET_KEY_MAX]);

/* The TTL in seconds, from now_ms, of day's keys; -1: not a date. */
int64_t budget_day_ttl_s(const char *day, int64_t now_ms);

void budget_put_num(char *buf, int64_t v);
bool budget_amount_ok(int64_t micro);

/* Fills res (new id, day of now_ms, names, owner) and c for q. Returns
 * KS_OK or KS_ERR_INVALID (logged; res zeroed). */
enum ks_err budget_reserve_prepare(struct ks_store *rs,
                                   const struct ks_budget_owner *owner,
                                   const struct ks_budget_request *q,
                                   int64_t now_ms,
                                   struct ks_budget_reservation *res,
                                   struct budget_reserve_cmd *c);

/* Maps the reserve script's reply: KS_OK, KS_ERR_BUDGET (*refused_by
 * set) or KS_ERR_UPSTREAM. */
enum ks_err budget_reserve_reply(const redisReply *r, const char **refused_by);

/* Builds c for settling res with actual_micro. Returns KS_OK or
 * KS_ERR_INVALID (logged). */
enum ks_err budget_settle_prepare(struct ks_store *rs,
                                  const struct ks_budget_reservation *res,
                                  int64_t actual_micro,
                                  int64_t now_ms,
                                  struct budget_settle_cmd *c);

#endif
