#!/usr/bin/env bash
# Fail-open spend pending at exit is written, not dropped. With
# budget.fail_open a worker calls the model while Redis is down and keeps
# each call's spend to write when Redis is back; it has no reservation
# behind it, so no sweep would ever charge it. Here Redis is stopped, 5
# tasks are answered fail-open, the worker gets SIGTERM while Redis is
# still down, and Redis comes back 3 s later: the worker waits for it (up
# to drain_timeout_ms) and writes the spend before it exits, so the tier's
# spent equals the Results' cost. Before, the worker logged "could not be
# written" and exited at once: spent 0 for 5 paid calls.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=5
it_check "own redis-server up" it_own_redis

IT_X+=(-X "redis.url=redis://127.0.0.1:$REDIS_PORT"
       -X "budget.fail_open=true"
       -X "drain_timeout_ms=20000"
       -X "tiers.mid.daily_budget_usd=50"
       -X "tiers.mid.providers.0.price_in_per_mtok=100"
       -X "tiers.mid.providers.0.price_out_per_mtok=400")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 50
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
it_daemon worker-mid kascade-worker --tier mid
WORKER=$LAST_PID
it_wait_assigned worker-mid || true
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
it_check "redis is down" bash -c "! redis-cli -p $REDIS_PORT ping >/dev/null 2>&1"

it_send_tier mid fo "$N" '{"max_output_tokens":32}'
it_check "the $N tasks are answered with redis down (fail open)" \
    it_wait_count results "$N" 60
it_check "the simulator billed $N calls" test "$(it_sim_requests "$SIM_URL")" -eq "$N"

kill -TERM "$WORKER"
sleep 3
it_check "redis is back" it_own_redis
rc=0
wait "$WORKER" || rc=$?
it_check "the worker exits cleanly (rc $rc)" test "$rc" -eq 0

key="${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:mid"
spent=$(redis-cli -p "$REDIS_PORT" HGET "$key" spent)
it_read results >"$IT_DIR/results.jsonl"
cost=$(it_cost_micro "$IT_DIR/results.jsonl")
it_log "figures: sum of cost_usd $cost, spent ${spent:-absent}"
it_check "the fail-open spend reached the budget at exit" \
    test "${spent:-0}" -eq "$cost"
it_check "and it was not zero" test "$cost" -gt 0
