/*
 * budget_lua.h - the Lua scripts of budget.c, included by budget.c only.
 *
 * One budget (a tier's or a tenant's, for one UTC day) is a group of keys,
 * all derived from h (h .. ':res', ...):
 *   h   hash: spent, reserved, expired_micro (and reset_micro), in
 *       micro-dollars; expired_micro is what the sweeps charged at worst
 *       case and no settle has corrected since (part of spent, counted
 *       once per reservation)
 *   z   sorted set: open reservation ids scored by their expiry (ms, by
 *       Redis TIME)
 *   a   hash: id -> "<amount> <owner>" of each open reservation (owner:
 *       the encoded worker id, or empty)
 *   sw  hash: id -> amount of reservations charged by a sweep and not
 *       settled yet (what makes a late settle count once)
 *   g   hash (h .. ':gone'): id -> 1 of each id settled while neither
 *       open nor swept; a reserve of such an id is refused with an error
 *       (a worker settles at 0 a reservation whose reply it gave up
 *       waiting for; when Redis runs that reserve only afterwards, it
 *       would hold room no call uses and be charged at its worst case
 *       when it expired). Ids are unique, so no live reserve is refused.
 *   l   string: the runtime limit (no day, no TTL), in reserve and read only
 * And for the fleet (no day):
 *   L   sorted set: owner -> the end of its liveness (ms, Redis TIME),
 *       renewed by each worker about once a second
 *   W   set <L minus 'live'>w:<owner>: "<h>\n<id>" of each open
 *       reservation of the owner, per budget
 *
 * Every key shares the hash tag {budget} (budget.c builds them), so one
 * script call stays in one Redis Cluster slot, also for the keys a sweep
 * derives from a dead owner's W (not in KEYS, but in the same slot).
 *
 * Invariant of every script: reserved == the sum of a's amounts, and an id
 * is in a and z together or in neither. A reservation leaves a only by a
 * settle (spent += actual) or a charge (spent += its amount: expired, or
 * its owner's liveness lapsed). So spent never falls below what settled
 * calls cost plus the worst case of those that never settled. Numbers are
 * integers below 2^53 (exact as Lua doubles); they go back to Redis
 * through fmt() because redis.call formats a bare Lua number with %.17g,
 * and HINCRBY refuses "-0". Times come from TIME, never from a worker.
 */
#ifndef KASCADE_COMMON_REDIS_BUDGET_LUA_H
#define KASCADE_COMMON_REDIS_BUDGET_LUA_H

/*
 * Shared helpers, prepended to every script. charge() ends one open
 * reservation at its worst case; sweep() charges the reservations of one
 * budget that expired by now, at most 1000 per call, and sweep_dead() those
 * of owners whose liveness lapsed, at most 1000 per call, so that a mass
 * crash cannot make one script run long (the rest go on the next calls).
 * limit_of() is the runtime limit when set, else the config's; a runtime
 * key that is not an integer is an error (fail closed), never "no limit".
 * chunked() runs one multi-argument command (HMGET, HSET, ZADD, ...) over
 * a list in chunks of 1000 arguments (Lua's unpack has a stack limit)
 * and returns the replies' elements concatenated.
 */
#define BUDGET_LUA_COMMON                                                       \
    "local function fmt(n) return string.format('%d', n) end\n"                 \
    "local function incr(h, field, n)\n"                                        \
    "  if n ~= 0 then redis.call('HINCRBY', h, field, fmt(n)) end\n"            \
    "end\n"                                                                     \
    "local function touch(ttl, ...)\n"                                          \
    "  for _, k in ipairs({...}) do redis.call('EXPIRE', k, ttl) end\n"         \
    "end\n"                                                                     \
    "local function clock()\n"                                                  \
    "  local t = redis.call('TIME')\n"                                          \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"      \
    "end\n"                                                                     \
    "local function parse(v)\n"                                                 \
    "  local amt, who = string.match(v, '^(%d+) ?(.*)$')\n"                     \
    "  return tonumber(amt) or 0, who or ''\n"                                  \
    "end\n"                                                                     \
    "local function wkeys(L) return string.sub(L, 1, -5) .. 'w:' end\n"         \
    "local function charge(h, id, wp)\n"                                        \
    "  local v = redis.call('HGET', h .. ':amt', id)\n"                         \
    "  redis.call('ZREM', h .. ':res', id)\n"                                   \
    "  if not v then return end\n"                                              \
    "  local amt, who = parse(v)\n"                                             \
    "  incr(h, 'reserved', -amt)\n"                                             \
    "  incr(h, 'spent', amt)\n"                                                 \
    "  incr(h, 'expired_micro', amt)\n"                                         \
    "  redis.call('HDEL', h .. ':amt', id)\n"                                   \
    "  redis.call('HSET', h .. ':swept', id, fmt(amt))\n"                       \
    "  local t = redis.call('PTTL', h)\n"                                       \
    "  if t > 0 then redis.call('PEXPIRE', h .. ':swept', t) end\n"             \
    "  if who ~= '' then redis.call('SREM', wp .. who, h .. '\\n' .. id) end\n" \
    "end\n"                                                                     \
    "local function sweep(h, now, wp)\n"                                        \
    "  local ids = redis.call('ZRANGEBYSCORE', h .. ':res', '-inf', now,\n"     \
    "                         'LIMIT', 0, 1000)\n"                              \
    "  for _, id in ipairs(ids) do charge(h, id, wp) end\n"                     \
    "end\n"                                                                     \
    "local function sweep_dead(L, now)\n"                                       \
    "  local wp, left = wkeys(L), 1000\n"                                       \
    "  local dead = redis.call('ZRANGEBYSCORE', L, '-inf', now,\n"              \
    "                          'LIMIT', 0, 16)\n"                               \
    "  for _, who in ipairs(dead) do\n"                                         \
    "    if left <= 0 then break end\n"                                         \
    "    local m = redis.call('SPOP', wp .. who, left)\n"                       \
    "    for _, e in ipairs(m) do\n"                                            \
    "      local h, id = string.match(e, '^(.*)\\n([^\\n]*)$')\n"               \
    "      if h then charge(h, id, wp) end\n"                                   \
    "    end\n"                                                                 \
    "    left = left - #m\n"                                                    \
    "    if redis.call('SCARD', wp .. who) == 0 then\n"                         \
    "      redis.call('ZREM', L, who)\n"                                        \
    "    end\n"                                                                 \
    "  end\n"                                                                   \
    "end\n"                                                                     \
    "local function limit_of(l, config)\n"                                      \
    "  local v = redis.call('GET', l)\n"                                        \
    "  if not v then return tonumber(config), 0 end\n"                          \
    "  local n = tonumber(v)\n"                                                 \
    "  if not n or n ~= math.floor(n) then\n"                                   \
    "    error('budget: ' .. l .. ' is not an integer')\n"                      \
    "  end\n"                                                                   \
    "  return n, 1\n"                                                           \
    "end\n"                                                                     \
    "local function used(h)\n"                                                  \
    "  local v = redis.call('HMGET', h, 'spent', 'reserved')\n"                 \
    "  return tonumber(v[1]) or 0, tonumber(v[2]) or 0\n"                       \
    "end\n"                                                                     \
    "local function chunked(cmd, key, list)\n"                                  \
    "  local out = {}\n"                                                        \
    "  for i = 1, #list, 1000 do\n"                                             \
    "    local r = redis.call(cmd, key,\n"                                      \
    "                         unpack(list, i, math.min(i + 999, #list)))\n"     \
    "    if type(r) == 'table' then\n"                                          \
    "      for _, v in ipairs(r) do out[#out + 1] = v end\n"                    \
    "    end\n"                                                                 \
    "  end\n"                                                                   \
    "  return out\n"                                                            \
    "end\n"                                                                     \
    "local function live(L, who, ms, now)\n"                                    \
    "  if who ~= '' then redis.call('ZADD', L, now + ms, who) end\n"            \
    "end\n"                                                                     \
    "local function bury(h, ids, ttl)\n"                                        \
    "  if #ids == 0 then return end\n"                                          \
    "  local g, kv = h .. ':gone', {}\n"                                        \
    "  local fresh = redis.call('EXISTS', g) == 0\n"                            \
    "  for _, id in ipairs(ids) do kv[#kv + 1] = id; kv[#kv + 1] = '1' end\n"   \
    "  chunked('HSET', g, kv)\n"                                                \
    "  if fresh then touch(ttl, g) end\n"                                       \
    "end\n"                                                                     \
    "local function gone(h, ids)\n"                                             \
    "  for _, v in ipairs(chunked('HMGET', h .. ':gone', ids)) do\n"            \
    "    if v then\n"                                                           \
    "      error('budget: a reservation id was settled before its reserve ran " \
    "(a late reserve) in ' .. h)\n"                                             \
    "    end\n"                                                                 \
    "  end\n"                                                                   \
    "end\n"

/*
 * reserve. KEYS: L, W (the owner's set; any key of the tag when there is
 * no owner), then h z a sw l of the tier, then of the tenant (optional).
 * ARGV: id, cost, ttl ms, owner ('' none), liveness ms, key TTL s, the
 * config limit of each budget (negative: unlimited), then optionally the
 * sweep flags: one character for the fleet (renew the owner's liveness
 * and sweep dead owners) and one per budget (sweep its expired
 * reservations), '0' to skip; absent, everything is done (budget.c's
 * single reserve; many reservations go through reserve_many below, which
 * sweeps once per call). The keys' TTL
 * (an absolute day end) is set when the budget had nothing reserved
 * before this reservation: only then can h, z or a be new (reserved ==
 * the sum of a's amounts, and z holds a's ids); otherwise they exist
 * with the TTL their creation got. Renews the
 * owner's liveness, sweeps, then refuses with {0, i} (i = 1 tier, 2
 * tenant) when spent + reserved + cost passes either limit, changing no
 * counter; or reserves on both, expiring at TIME + ttl, and returns {1}.
 */
static const char budget_lua_reserve[] = BUDGET_LUA_COMMON
    "local L, W = KEYS[1], KEYS[2]\n"
    "local id, cost, ttl_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local who, live_ms, ttl = ARGV[4], tonumber(ARGV[5]), ARGV[6]\n"
    "local now = clock()\n"
    "local n = (#KEYS - 2) / 5\n"
    "local flags = ARGV[7 + n] or ''\n"
    "local function on(j) return string.sub(flags, j, j) ~= '0' end\n"
    "if on(1) then\n"
    "  live(L, who, live_ms, now)\n"
    "  sweep_dead(L, now)\n"
    "end\n"
    "for i = 0, n - 1 do\n"
    "  if on(i + 2) then sweep(KEYS[5 * i + 3], now, wkeys(L)) end\n"
    "end\n"
    "for i = 0, n - 1 do\n"
    "  local k = 5 * i + 2\n"
    "  local limit = limit_of(KEYS[k+5], ARGV[7+i])\n"
    "  if redis.call('HEXISTS', KEYS[k+3], id) == 1 then\n"
    "    error('budget: duplicate reservation id ' .. id)\n"
    "  end\n"
    "  gone(KEYS[k+1], {id})\n"
    "  if limit >= 0 then\n"
    "    local spent, reserved = used(KEYS[k+1])\n"
    "    if spent + reserved + cost > limit then return {0, i + 1} end\n"
    "  end\n"
    "end\n"
    "for i = 0, n - 1 do\n"
    "  local k = 5 * i + 2\n"
    "  local r = 0\n"
    "  if cost ~= 0 then\n"
    "    r = redis.call('HINCRBY', KEYS[k+1], 'reserved', fmt(cost))\n"
    "  end\n"
    "  redis.call('ZADD', KEYS[k+2], now + ttl_ms, id)\n"
    "  redis.call('HSET', KEYS[k+3], id, fmt(cost) .. ' ' .. who)\n"
    "  if r == cost then touch(ttl, KEYS[k+1], KEYS[k+2], KEYS[k+3]) end\n"
    "  if who ~= '' then redis.call('SADD', W, KEYS[k+1] .. '\\n' .. id) end\n"
    "end\n"
    "if who ~= '' then\n"
    "  redis.call('PEXPIRE', W, ttl_ms + 2 * live_ms + 60000)\n"
    "end\n"
    "return {1}\n";

/*
 * settle. KEYS: L, W (the reservation's owner's set), then h z a sw of the
 * tier, then of the tenant (optional). ARGV: id, actual cost, key TTL s.
 * Per budget: an open reservation is released and actual added to spent;
 * one a sweep charged at its worst case has that charge replaced by
 * actual, once (the worker that made the call knows its outcome better
 * than the sweep: a Redis outage longer than the liveness lifetime makes
 * every live worker look dead, and keeping the worst case would charge
 * every call in flight at it); an id in neither (settled already, or a
 * reserve Redis has not run, or never will) changes no counter and is
 * buried in g, so that reserve, should it run later, is refused. Returns how
 * many budgets took the settle. The keys' TTLs were set by the reserve (an
 * absolute day end, the same for every touch): z and a hold the id, so they
 * exist with theirs; only h can be new here (a reservation of cost 0 creates no
 * h), so only a key without a TTL is touched.
 */
static const char budget_lua_settle[] = BUDGET_LUA_COMMON
    "local W = KEYS[2]\n"
    "local id, actual, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local counted = 0\n"
    "for i = 0, (#KEYS - 2) / 4 - 1 do\n"
    "  local h, z, a, sw = KEYS[4*i+3], KEYS[4*i+4], KEYS[4*i+5], "
    "KEYS[4*i+6]\n"
    "  local v = redis.call('HGET', a, id)\n"
    "  if v then\n"
    "    local amt = parse(v)\n"
    "    incr(h, 'reserved', -amt)\n"
    "    incr(h, 'spent', actual)\n"
    "    redis.call('HDEL', a, id)\n"
    "    redis.call('ZREM', z, id)\n"
    "    redis.call('SREM', W, h .. '\\n' .. id)\n"
    "    if redis.call('PTTL', h) == -1 then touch(ttl, h) end\n"
    "    counted = counted + 1\n"
    "  else\n"
    "    local s = redis.call('HGET', sw, id)\n"
    "    if s then\n"
    "      incr(h, 'spent', actual - tonumber(s))\n"
    "      incr(h, 'expired_micro', -tonumber(s))\n"
    "      if redis.call('PTTL', h) == -1 then touch(ttl, h) end\n"
    "      redis.call('HDEL', sw, id)\n"
    "      counted = counted + 1\n"
    "    else\n"
    "      bury(h, {id}, ttl)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return counted\n";

/*
 * read. KEYS: L, h z a sw l of one budget. ARGV: config limit, key TTL s,
 * owner ('' none: nothing renewed), liveness ms. Renews the owner's
 * liveness, sweeps, then returns {limit, limit is runtime (0/1), spent,
 * reserved, expired_micro}.
 */
static const char budget_lua_read[] = BUDGET_LUA_COMMON
    "local L, h = KEYS[1], KEYS[2]\n"
    "local now = clock()\n"
    "live(L, ARGV[3], tonumber(ARGV[4]), now)\n"
    "sweep_dead(L, now)\n"
    "sweep(h, now, wkeys(L))\n"
    "local limit, runtime = limit_of(KEYS[6], ARGV[1])\n"
    "local spent, reserved = used(h)\n"
    "local ex = tonumber(redis.call('HGET', h, 'expired_micro')) or 0\n"
    "return {limit, runtime, spent, reserved, ex}\n";

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

/*
 * reserve_many: the reservations of a loop turn in one call (budget_many.c).
 * KEYS: L, W (the owner's set; any key of the tag when there is no owner),
 * then h z a sw l of each budget the batch names, once each. ARGV: owner
 * ('' none), liveness ms, key TTL s, then 7 per reservation in job order:
 * id, cost, ttl ms, tier budget (1-based index into KEYS' budgets), tier
 * config limit, tenant budget (0: none), tenant config limit (negative:
 * unlimited). Renews the owner's liveness, sweeps dead owners and each
 * budget's expired reservations once, reads each budget's runtime limit
 * and spent + reserved once, then decides each reservation in order
 * exactly as reserve would one after another: refused (-1 tier, -2
 * tenant) when spent + reserved + cost passes a limit, else granted (1)
 * and counted in the running totals the next ones are checked against.
 * So the ones that fit are granted in job order and the rest refused, and
 * spent + reserved never passes a limit. The writes then go once per
 * budget: one HINCRBY of reserved, one ZADD and one HSET with every
 * granted id (in chunks of 500 pairs), the TTLs when the budget had
 * nothing reserved before (reserve's rule), and one SADD to W. Every
 * error() (a garbage runtime limit, a duplicate id) comes before any
 * write but the sweeps, as in reserve. Returns one integer per
 * reservation.
 */
static const char budget_lua_reserve_many[] = BUDGET_LUA_COMMON
    "local L, W = KEYS[1], KEYS[2]\n"
    "local who, live_ms, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local now, wp = clock(), wkeys(L)\n"
    "live(L, who, live_ms, now)\n"
    "sweep_dead(L, now)\n"
    "local B = {}\n"
    "for b = 1, (#KEYS - 2) / 5 do\n"
    "  local k = 5 * b - 3\n"
    "  sweep(KEYS[k+1], now, wp)\n"
    "  local lim, rt = limit_of(KEYS[k+5], '-1')\n"
    "  local spent, reserved = used(KEYS[k+1])\n"
    "  B[b] = {h = KEYS[k+1], z = KEYS[k+2], a = KEYS[k+3], r0 = reserved,\n"
    "          lim = rt == 1 and lim or nil, used = spent + reserved,\n"
    "          add = 0, ids = {}, zs = {}, as = {}}\n"
    "end\n"
    "local R = {}\n"
    "for i = 1, (#ARGV - 3) / 7 do\n"
    "  local o = 3 + 7 * (i - 1)\n"
    "  local q = {id = ARGV[o+1], cost = tonumber(ARGV[o+2]),\n"
    "             ms = tonumber(ARGV[o+3]),\n"
    "             b = {tonumber(ARGV[o+4]), tonumber(ARGV[o+6])},\n"
    "             l = {tonumber(ARGV[o+5]), tonumber(ARGV[o+7])}}\n"
    "  R[i] = q\n"
    "  for j = 1, 2 do\n"
    "    local s = B[q.b[j]]\n"
    "    if s then s.ids[#s.ids + 1] = q.id end\n"
    "  end\n"
    "end\n"
    "for _, s in ipairs(B) do\n"
    "  for _, v in ipairs(chunked('HMGET', s.a, s.ids)) do\n"
    "    if v then error('budget: duplicate reservation id in ' .. s.a) end\n"
    "  end\n"
    "  gone(s.h, s.ids)\n"
    "end\n"
    "local out, wm, wms = {}, {}, 0\n"
    "for i, q in ipairs(R) do\n"
    "  local v = 1\n"
    "  for j = 1, 2 do\n"
    "    local s = B[q.b[j]]\n"
    "    if s and v == 1 then\n"
    "      local limit = s.lim or q.l[j]\n"
    "      if limit >= 0 and s.used + q.cost > limit then v = -j end\n"
    "    end\n"
    "  end\n"
    "  if v == 1 then\n"
    "    for j = 1, 2 do\n"
    "      local s = B[q.b[j]]\n"
    "      if s then\n"
    "        s.used, s.add = s.used + q.cost, s.add + q.cost\n"
    "        s.zs[#s.zs + 1] = fmt(now + q.ms)\n"
    "        s.zs[#s.zs + 1] = q.id\n"
    "        s.as[#s.as + 1] = q.id\n"
    "        s.as[#s.as + 1] = fmt(q.cost) .. ' ' .. who\n"
    "        if who ~= '' then wm[#wm + 1] = s.h .. '\\n' .. q.id end\n"
    "      end\n"
    "    end\n"
    "    if q.ms > wms then wms = q.ms end\n"
    "  end\n"
    "  out[i] = v\n"
    "end\n"
    "for _, s in ipairs(B) do\n"
    "  if #s.zs > 0 then\n"
    "    incr(s.h, 'reserved', s.add)\n"
    "    chunked('ZADD', s.z, s.zs)\n"
    "    chunked('HSET', s.a, s.as)\n"
    "    if s.r0 == 0 then touch(ttl, s.h, s.z, s.a) end\n"
    "  end\n"
    "end\n"
    "if #wm > 0 then\n"
    "  chunked('SADD', W, wm)\n"
    "  redis.call('PEXPIRE', W, wms + 2 * live_ms + 60000)\n"
    "end\n"
    "return out\n";

/*
 * settle_many: the settlements of a loop turn in one call. KEYS: L, the
 * owners' sets W (nw of them, once each), then h z a sw of each budget
 * named, once each. ARGV: nw, the key TTL s of each budget, then 5 per
 * settlement: id, actual cost, owner set (1-based index into the Ws, 0:
 * no owner), tier budget and tenant budget (1-based, 0: none). Does per
 * budget what settle does per id (an open reservation released and actual
 * added to spent; a swept one's worst-case charge replaced by actual,
 * once; an id in neither changes no counter and is buried in g; an id
 * named twice counts once)
 * with one HMGET of the open amounts, one HMGET of the swept ones for the
 * ids not open, one HINCRBY per counter, one HDEL and one ZREM of the
 * released ids, one HDEL of the corrected swept ones, one PTTL; and one
 * SREM per owner set. Returns how many (id, budget) pairs took a settle.
 */
static const char budget_lua_settle_many[] = BUDGET_LUA_COMMON
    "local nw = tonumber(ARGV[1])\n"
    "local B = {}\n"
    "for b = 1, (#KEYS - 1 - nw) / 4 do\n"
    "  local k = 1 + nw + 4 * (b - 1)\n"
    "  B[b] = {h = KEYS[k+1], z = KEYS[k+2], a = KEYS[k+3], sw = KEYS[k+4],\n"
    "          ttl = ARGV[1 + b], ids = {}, act = {}, ws = {}, seen = {}}\n"
    "end\n"
    "local o0 = 1 + #B\n"
    "for i = 0, (#ARGV - o0) / 5 - 1 do\n"
    "  local o = o0 + 5 * i\n"
    "  local id = ARGV[o+1]\n"
    "  for j = 4, 5 do\n"
    "    local s = B[tonumber(ARGV[o+j])]\n"
    "    if s and not s.seen[id] then\n"
    "      s.seen[id] = true\n"
    "      s.ids[#s.ids + 1] = id\n"
    "      s.act[#s.act + 1] = tonumber(ARGV[o+2])\n"
    "      s.ws[#s.ws + 1] = tonumber(ARGV[o+3])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local counted, wm = 0, {}\n"
    "for _, s in ipairs(B) do\n"
    "  local dres, dspent, dexp = 0, 0, 0\n"
    "  local open, miss, mi, swept = {}, {}, {}, {}\n"
    "  local v = chunked('HMGET', s.a, s.ids)\n"
    "  for i, id in ipairs(s.ids) do\n"
    "    if v[i] then\n"
    "      dres, dspent = dres - parse(v[i]), dspent + s.act[i]\n"
    "      open[#open + 1] = id\n"
    "      local w = s.ws[i]\n"
    "      if w > 0 then\n"
    "        wm[w] = wm[w] or {}\n"
    "        wm[w][#wm[w] + 1] = s.h .. '\\n' .. id\n"
    "      end\n"
    "    else\n"
    "      miss[#miss + 1], mi[#mi + 1] = id, i\n"
    "    end\n"
    "  end\n"
    "  if #miss > 0 then\n"
    "    local sv, none = chunked('HMGET', s.sw, miss), {}\n"
    "    for k, id in ipairs(miss) do\n"
    "      if sv[k] then\n"
    "        local amt = tonumber(sv[k])\n"
    "        dspent, dexp = dspent + s.act[mi[k]] - amt, dexp - amt\n"
    "        swept[#swept + 1] = id\n"
    "      else\n"
    "        none[#none + 1] = id\n"
    "      end\n"
    "    end\n"
    "    bury(s.h, none, s.ttl)\n"
    "  end\n"
    "  if #open + #swept > 0 then\n"
    "    incr(s.h, 'reserved', dres)\n"
    "    incr(s.h, 'spent', dspent)\n"
    "    incr(s.h, 'expired_micro', dexp)\n"
    "    if #open > 0 then\n"
    "      chunked('HDEL', s.a, open)\n"
    "      chunked('ZREM', s.z, open)\n"
    "    end\n"
    "    if #swept > 0 then chunked('HDEL', s.sw, swept) end\n"
    "    if redis.call('PTTL', s.h) == -1 then touch(s.ttl, s.h) end\n"
    "    counted = counted + #open + #swept\n"
    "  end\n"
    "end\n"
    "for w, m in pairs(wm) do chunked('SREM', KEYS[1 + w], m) end\n"
    "return counted\n";

#endif
