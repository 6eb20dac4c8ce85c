/*
 * budget_lua.h - the Lua scripts of budget.c, included by budget.c only.
 *
 * One budget (a tier's or a tenant's, for one UTC day) is a group of keys:
 *   h   hash: spent, reserved (and reset_micro) in micro-dollars
 *   z   sorted set: open reservation ids scored by their expiry (ms)
 *   a   hash: id -> reserved amount of each open reservation
 *   sw  hash: id -> amount of reservations swept after expiring and not
 *       settled yet (what makes a late settle count, and only once)
 *   l   string: the runtime limit (no day, no TTL), in reserve and read only
 *
 * Invariant of every script: reserved == the sum of a's values, and an id
 * is in a and z together or in neither. Numbers are integers below 2^53
 * (exact as Lua doubles); they go back to Redis through fmt() because
 * redis.call formats a bare Lua number with %.17g, and HINCRBY refuses
 * "-0".
 */
#ifndef KASCADE_COMMON_REDIS_BUDGET_LUA_H
#define KASCADE_COMMON_REDIS_BUDGET_LUA_H

/*
 * Shared helpers, prepended to every script. sweep() releases the
 * reservations of one budget that expired by now, at most 1000 per call so
 * that a mass crash cannot make one script run long (the rest go on the
 * next calls). limit_of() is the runtime limit when set, else the
 * config's; a runtime key that is not an integer is an error (fail
 * closed), never "no limit".
 */
#define BUDGET_LUA_COMMON                                                      \
    "local function fmt(n) return string.format('%d', n) end\n"                \
    "local function incr(h, field, n)\n"                                       \
    "  if n ~= 0 then redis.call('HINCRBY', h, field, fmt(n)) end\n"           \
    "end\n"                                                                    \
    "local function touch(ttl, ...)\n"                                         \
    "  for _, k in ipairs({...}) do redis.call('EXPIRE', k, ttl) end\n"        \
    "end\n"                                                                    \
    "local function sweep(h, z, a, sw, now, ttl)\n"                            \
    "  local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now,\n"              \
    "                         'LIMIT', 0, 1000)\n"                             \
    "  for _, id in ipairs(ids) do\n"                                          \
    "    local amt = redis.call('HGET', a, id)\n"                              \
    "    if amt then\n"                                                        \
    "      incr(h, 'reserved', -tonumber(amt))\n"                              \
    "      redis.call('HDEL', a, id)\n"                                        \
    "      redis.call('HSET', sw, id, amt)\n"                                  \
    "    end\n"                                                                \
    "    redis.call('ZREM', z, id)\n"                                          \
    "  end\n"                                                                  \
    "  if #ids > 0 then touch(ttl, h, z, a, sw) end\n"                         \
    "end\n"                                                                    \
    "local function limit_of(l, config)\n"                                     \
    "  local v = redis.call('GET', l)\n"                                       \
    "  if not v then return tonumber(config), 0 end\n"                         \
    "  local n = tonumber(v)\n"                                                \
    "  if not n or n ~= math.floor(n) then\n"                                  \
    "    error('budget: ' .. l .. ' is not an integer')\n"                     \
    "  end\n"                                                                  \
    "  return n, 1\n"                                                          \
    "end\n"                                                                    \
    "local function used(h)\n"                                                 \
    "  local v = redis.call('HMGET', h, 'spent', 'reserved')\n"                \
    "  return tonumber(v[1]) or 0, tonumber(v[2]) or 0\n"                      \
    "end\n"

/*
 * reserve. KEYS: h z a sw l of the tier, then of the tenant (optional).
 * ARGV: id, cost, expiry ms, now ms, key TTL s, then the config limit of
 * each budget (negative: unlimited). Sweeps both budgets, then refuses
 * with {0, i} (i = 1 tier, 2 tenant) when spent + reserved + cost passes
 * either limit, changing nothing else; or reserves on both and returns
 * {1}.
 */
static const char budget_lua_reserve[] = BUDGET_LUA_COMMON
    "local id, cost, expiry = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local now, ttl = ARGV[4], ARGV[5]\n"
    "local n = #KEYS / 5\n"
    "for i = 0, n - 1 do\n"
    "  local k = 5 * i\n"
    "  sweep(KEYS[k+1], KEYS[k+2], KEYS[k+3], KEYS[k+4], now, ttl)\n"
    "end\n"
    "for i = 0, n - 1 do\n"
    "  local k = 5 * i\n"
    "  local limit = limit_of(KEYS[k+5], ARGV[6+i])\n"
    "  if redis.call('HEXISTS', KEYS[k+3], id) == 1 then\n"
    "    error('budget: duplicate reservation id ' .. id)\n"
    "  end\n"
    "  if limit >= 0 then\n"
    "    local spent, reserved = used(KEYS[k+1])\n"
    "    if spent + reserved + cost > limit then return {0, i + 1} end\n"
    "  end\n"
    "end\n"
    "for i = 0, n - 1 do\n"
    "  local k = 5 * i\n"
    "  incr(KEYS[k+1], 'reserved', cost)\n"
    "  redis.call('ZADD', KEYS[k+2], expiry, id)\n"
    "  redis.call('HSET', KEYS[k+3], id, fmt(cost))\n"
    "  touch(ttl, KEYS[k+1], KEYS[k+2], KEYS[k+3])\n"
    "end\n"
    "return {1}\n";

/*
 * settle. KEYS: h z a sw of the tier, then of the tenant (optional).
 * ARGV: id, actual cost, key TTL s. Per budget: an open reservation is
 * released and actual added to spent; a swept one only adds actual (the
 * money was spent) and leaves sw; an id in neither was settled already
 * and changes nothing. Returns how many budgets counted the spend.
 */
static const char budget_lua_settle[] = BUDGET_LUA_COMMON
    "local id, actual, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local counted = 0\n"
    "for i = 0, #KEYS / 4 - 1 do\n"
    "  local h, z, a, sw = KEYS[4*i+1], KEYS[4*i+2], KEYS[4*i+3], "
    "KEYS[4*i+4]\n"
    "  local amt = redis.call('HGET', a, id)\n"
    "  local open = amt ~= false\n"
    "  if open then\n"
    "    incr(h, 'reserved', -tonumber(amt))\n"
    "    redis.call('HDEL', a, id)\n"
    "    redis.call('ZREM', z, id)\n"
    "  end\n"
    "  if open or redis.call('HDEL', sw, id) == 1 then\n"
    "    incr(h, 'spent', actual)\n"
    "    touch(ttl, h, z, a, sw)\n"
    "    counted = counted + 1\n"
    "  end\n"
    "end\n"
    "return counted\n";

/*
 * read. KEYS: h z a sw l of one budget. ARGV: config limit, now ms, key
 * TTL s. Sweeps, then returns {limit, limit is runtime (0/1), spent,
 * reserved}.
 */
static const char budget_lua_read[] = BUDGET_LUA_COMMON
    "sweep(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3])\n"
    "local limit, runtime = limit_of(KEYS[5], ARGV[1])\n"
    "local spent, reserved = used(KEYS[1])\n"
    "return {limit, runtime, spent, reserved}\n";

/*
 * adjust. KEYS: h of one budget. ARGV: "add" or "reset", micro-dollars,
 * key TTL s. add: spent += micro. reset: reset_micro += spent, spent = 0
 * (nothing is created when the hash does not exist). Returns the amount
 * moved or added.
 */
static const char budget_lua_adjust[] =
    BUDGET_LUA_COMMON "local h, op, ttl = KEYS[1], ARGV[1], ARGV[3]\n"
                      "local n = tonumber(ARGV[2])\n"
                      "if op == 'reset' then\n"
                      "  n = used(h)\n"
                      "  incr(h, 'reset_micro', n)\n"
                      "  incr(h, 'spent', -n)\n"
                      "else\n"
                      "  incr(h, 'spent', n)\n"
                      "end\n"
                      "if n ~= 0 then touch(ttl, h) end\n"
                      "return n\n";

#endif
