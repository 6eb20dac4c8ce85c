#!/usr/bin/env bash
# A call is reserved and admitted for the provider it goes to. Tier
# frontier has two providers: front-a, cheap, whose first call fails
# (500) and opens its circuit (one failure, a 2 s cool-down); front-b, a
# thousand times dearer. Output tokens are free.
# - One task opens front-a's circuit (its 500 is not billed) and is
#   answered by front-b: its cost C is the day's spend.
# - The tier's limit is set to 1.5 C: room for many front-a calls, none
#   at front-b's worst case.
# - Past the cool-down, 16 tasks arrive at once (one batch in one
#   partition). The circuit is half-open: the tasks of that pass are
#   reserved (and admitted) for front-a, one of them takes the probe, and
#   the circuit sends the others on to front-b. Before the fix they called front-b on front-a's
#   reservations (a thousandth of its price) and spent went past the
#   limit. Now each gives its reservation back and is reserved again at
#   front-b's prices, which the budget refuses (budget_exceeded); spent
#   stays within the limit and equals what the ok Results cost.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_sim front-a --fault-schedule 0-1:500
A=$SIM_URL
it_sim front-b
B=$SIM_URL
python3 - "$KS_CONFIG" "$IT_DIR/kascade.json" "$A" "$B" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
tier = [t for t in cfg["tiers"] if t["name"] == "frontier"][0]
base = tier["providers"][0]
a = dict(base, base_url=sys.argv[3] + "/v1", model="front-a", max_retries=0,
         circuit_failures=1, circuit_cooldown_ms=2000,
         price_in_per_mtok=0.01, price_out_per_mtok=0)
b = dict(base, base_url=sys.argv[4] + "/v1", model="front-b",
         price_in_per_mtok=10, price_out_per_mtok=0)
tier["providers"] = [a, b]
json.dump(cfg, open(sys.argv[2], "w"), indent=1)
PY
KS_CONFIG=$IT_DIR/kascade.json
it_kascade topics create >"$IT_DIR/topics.out"
it_daemon worker-frontier kascade-worker --tier frontier
it_wait_assigned worker-frontier

field() { it_budget_field frontier "$1"; }
hints='{"max_output_tokens":64}'

it_send_tier frontier first 1 "$hints"
it_check "the first task ends" it_wait_count results 1 60
sleep 1 # its settle goes out with the next loop turn
cost=$(field spent)
it_log "one front-b call costs $cost micro-USD"
it_check "front-a saw the one call that opened its circuit" \
    test "$(it_sim_requests "$A")" -eq 1
it_check "front-b answered it, for a cost" test "$cost" -gt 0
limit=$((3 * cost / 2))
it_check "the tier's limit is set to 1.5 calls" \
    it_kascade budget set frontier "$(python3 -c "print($limit / 1e6)")"

sleep 3 # past the cool-down: the circuit is half-open at the next call
it_send_tier frontier sw 16 "$hints" 0 # one batch: one turn of the worker
it_check "17 results arrive" it_wait_count results 17 90
sleep 1
spent=$(field spent)
it_log "spent $spent micro-USD against a limit of $limit"
it_check "the half-open circuit let a probe through to front-a" \
    test "$(it_sim_requests "$A")" -ge 2
it_check "tasks reserved for front-a and sent on to front-b were reserved again" \
    grep -q 'reserved for front-a, going to front-b: reserving again' \
        "$IT_DIR/worker-frontier.log"
it_check "spent stays within the limit" test "$spent" -le "$limit"
it_check "no reservation is left" test "$(field reserved)" = 0
it_read results >"$IT_DIR/results.jsonl"
it_check "every task has one Result: ok, or budget_exceeded from front-b; spent is what the ok ones cost" \
    python3 - "$IT_DIR/results.jsonl" "$spent" <<'PY'
import collections, decimal, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
ids = collections.Counter(r["id"] for r in res)
by = collections.Counter((r["status"], r.get("model")) for r in res)
cheap = {("ok", "front-a"), ("ok", "front-b"), ("budget_exceeded", "front-b")}
cost = sum(decimal.Decimal(str(r.get("cost_usd", 0))) for r in res
           if r["status"] == "ok")
print(dict(by), "cost", cost)
ok = len(ids) == 17 and max(ids.values()) == 1 and \
    set(by) <= cheap and by[("budget_exceeded", "front-b")] > 0 and \
    int(cost * 1000000) == int(sys.argv[2])
sys.exit(0 if ok else 1)
PY
