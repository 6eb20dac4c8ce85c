#!/usr/bin/env bash
# Redis restarts in the middle of a run (a persistent Redis: SHUTDOWN
# writes its append-only file, the new server loads it), and a second
# worker joins the pool while it is down (a rebalance in the middle of the
# outage). The two share a $0.50 tier budget (policy reject). Calls that finish while Redis is
# down keep their settles and pay them when it is back. At the end: spent
# never passed the limit, spent equals the sum of cost_usd over the
# Results to the micro-dollar, and every task has exactly one Result.
# Then, with budget.fail_open, calls go on while Redis is down and their
# spend is written to Redis when it returns.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mkdir -p "$IT_DIR/redis"
# its data in a directory of its own, kept across restarts (AOF)
start_redis() {
    it_own_redis --dir "$IT_DIR/redis" --appendonly yes --appendfsync always
}
start_redis
PORT=$REDIS_PORT
# A short executor prompt keeps the worst case this test counts on.
IT_X+=(-X "tiers.mid.prompt=Answer." -X "tiers.local.prompt=Answer."
       -X "redis.url=redis://127.0.0.1:$PORT" -X "redis.timeout_ms=200"
       -X "tiers.mid.daily_budget_usd=0.5" -X "tiers.mid.on_budget_exhausted=reject"
       -X "tiers.mid.providers.0.price_in_per_mtok=100"
       -X "tiers.mid.providers.0.price_out_per_mtok=400")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 150 --jitter-ms 100
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
it_daemon router kascade-router
it_daemon worker-mid-1 kascade-worker --tier mid

N=200
for i in $(seq "$N"); do
    printf 'z-%d\t{"id":"z-%d","type":"answer","input":"task number %d","hints":{"max_output_tokens":32}}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'

it_check "the run is under way" it_wait_count results 10 60
redis-cli -p "$PORT" shutdown >/dev/null 2>&1 || true
it_log "redis stopped (AOF kept) with $(it_count results) results out"
# A second worker joins while Redis is down: the rebalance must not wait
# on, or redeliver, the first worker's held tasks.
it_daemon worker-mid-2 kascade-worker --tier mid
sleep 3
it_check "redis restarts from its append-only file" start_redis
it_check "every task has a result" it_wait_count results "$N" 180
sleep 3
key="${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:mid"
spent=$(redis-cli -p "$PORT" HGET "$key" spent)
reserved=$(redis-cli -p "$PORT" HGET "$key" reserved)
it_read results >"$IT_DIR/results.jsonl"
it_log "spent $spent, reserved $reserved"
it_check "spent within the limit" test "$spent" -le 500000
it_check "no reservation left open" test "${reserved:-0}" -eq 0
check() {
    python3 - "$IT_DIR/results.jsonl" "$1" "$2" <<'PY'
import collections, decimal, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
ids = collections.Counter(r["id"] for r in res)
micro = int(sum(decimal.Decimal(str(r["cost_usd"])) for r in res) * 1000000)
st = collections.Counter(r["status"] for r in res)
print("statuses %s, sum of cost_usd %d, spent %s" % (dict(st), micro, sys.argv[2]))
sys.exit(0 if len(ids) == int(sys.argv[3]) and max(ids.values()) == 1
         and micro == int(sys.argv[2]) else 1)
PY
}
it_check "spent equals the sum of cost_usd; one result per task" \
    check "$spent" "$N"

# Fail open: a worker that prefers availability calls on without Redis.
redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
rm -rf "$IT_DIR/redis"/*
it_daemon worker-local kascade-worker --tier local -X budget.fail_open=true \
    -X "tiers.local.providers.0.base_url=$SIM/v1" \
    -X "tiers.local.providers.0.price_in_per_mtok=100" \
    -X "tiers.local.providers.0.price_out_per_mtok=400"
for i in $(seq 10); do
    printf 'o-%d\t{"id":"o-%d","type":"classify_intent","input":"open %d"}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "fail-open: answered while Redis is down" \
    it_wait_count results $((N + 10)) 60
start_redis
local_key="${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:local"
wait_spent() {
    for _ in $(seq 100); do
        [ -n "$(redis-cli -p "$PORT" HGET "$local_key" spent)" ] && return 0
        sleep 0.1
    done
    return 1
}
it_check "fail-open: the spend is written to Redis when it is back" wait_spent
sleep 2
it_read results | python3 -c '
import decimal, json, sys
print(int(sum(decimal.Decimal(str(json.loads(l)["value"]["cost_usd"]))
              for l in sys.stdin if json.loads(l)["value"]["id"].startswith("o-")) * 1000000))' \
    >"$IT_DIR/open_cost"
it_check "fail-open: replayed spend equals the calls' cost" \
    test "$(redis-cli -p "$PORT" HGET "$local_key" spent)" -eq "$(cat "$IT_DIR/open_cost")"
