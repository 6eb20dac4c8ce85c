#!/usr/bin/env bash
# A reservation whose answer never came must not be charged. Redis stalls
# (`DEBUG SLEEP 1`) longer than the worker's redis.timeout_ms (300 ms):
# the worker gives up on the turn's reserve script and holds those jobs,
# but Redis runs the script when it wakes, making reservations the worker
# does not use. Before the fix they stayed open until they expired
# (provider timeout + budget.reservation_margin_ms, 3 s here) and the
# sweep then charged each at its worst case: spent above what the calls
# cost, expired_micro above 0, for calls never made. The worker now keeps
# the ids of a reserve that got no answer and settles them at 0 once Redis
# answers again (an id Redis never saw changes nothing), so spent equals
# the sum of the Results' cost_usd and nothing expired.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=3000
it_own_redis --enable-debug-command local || it_die "redis-server did not start"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
it_check "own redis-server up, DEBUG allowed" test "$(rcli debug sleep 0)" = OK

IT_X+=(-X "redis.url=redis://127.0.0.1:$REDIS_PORT"
       -X "redis.timeout_ms=300"
       -X "budget.reservation_margin_ms=1000"
       -X "tiers.mid.max_inflight=64"
       -X "tiers.mid.daily_budget_usd=50"
       -X "tiers.mid.on_budget_exhausted=reject"
       -X "tiers.mid.providers.0.price_in_per_mtok=100"
       -X "tiers.mid.providers.0.price_out_per_mtok=400"
       -X "tiers.mid.providers.0.timeout_ms=2000")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 300
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
it_daemon worker-mid kascade-worker --tier mid
WORKER=$LAST_PID
it_wait_assigned worker-mid || true

it_send_tier mid rt "$N" '{"max_output_tokens":32}'
it_wait_calls "$SIM" 64 || true
slept=$(it_stall_redis 5 1 0.5)
calls_then=$(it_sim_requests "$SIM")
it_check "Redis slept 5 times during the run ($calls_then of $N calls made by then)" \
    test "$slept" -eq 5
it_check "the stalls fell inside the run" test "$calls_then" -lt "$N"
it_check "every task answered ($N)" it_wait_count results "$N" 120
it_check "the worker is still running" kill -0 "$WORKER"
# Past every reservation's expiry (2 s + 1 s); a budget read sweeps.
sleep 5
it_kascade budget show --json >"$IT_DIR/show.json"
key="${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:mid"
field() { local v; v=$(rcli HGET "$key" "$1"); echo "${v:-0}"; }
it_read results >"$IT_DIR/results.jsonl"
cost=$(it_cost_micro "$IT_DIR/results.jsonl")
it_log "figures: sum of cost_usd $cost, spent $(field spent), reserved $(field reserved), expired_micro $(field expired_micro), $(it_sim_requests "$SIM") calls"
it_check "no reservation was charged at worst case (expired_micro 0)" \
    test "$(field expired_micro)" -eq 0
it_check "spent equals what the calls cost" test "$(field spent)" -eq "$cost"
it_check "no reservation left open" test "$(field reserved)" -eq 0
