#!/usr/bin/env bash
# A task that waits for a circuit holds no reservation. Tier frontier has
# one provider that fails every call (500, not billed), whose circuit
# opens after one failure for 2 s; reservations expire 1 s after the
# call's timeout (2 s).
# - One task opens the circuit and ends failed.
# - Past the cool-down, 8 tasks arrive at once. The circuit is half-open:
#   the tasks of that pass are reserved for the call, one takes the
#   probe and the others must wait for it. The probe fails, the circuit
#   opens again, and the waiting tasks end failed without a call (or
#   take the next probe).
#   Before the fix they waited with their reservations and ended with
#   them still open: reserved stayed above 0 until they expired, and then
#   the sweep charged each at its worst case for a call never made. Now a
#   task gives its reservation back when it has to wait: nothing stays
#   reserved and nothing is charged, since no call was billed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_sim front --fail 500:1
IT_X+=(-X "tiers.frontier.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.frontier.providers.0.max_retries=0"
       -X "tiers.frontier.providers.0.circuit_failures=1"
       -X "tiers.frontier.providers.0.circuit_cooldown_ms=2000"
       -X "tiers.frontier.providers.0.timeout_ms=2000"
       -X "budget.reservation_margin_ms=1000")
it_kascade topics create >"$IT_DIR/topics.out"
it_daemon worker-frontier kascade-worker --tier frontier
it_wait_assigned worker-frontier

field() { it_budget_field frontier "$1"; }

it_send_tier frontier first 1
it_check "the first task ends" it_wait_count results 1 60
sleep 3 # past the cool-down: the circuit is half-open at the next call
it_send_tier frontier wait 8 "" 0 # one batch: one turn of the worker
it_check "9 results arrive" it_wait_count results 9 60
sleep 1
it_check "no reservation is left open" test "$(field reserved)" -eq 0
sleep 4 # past every reservation's expiry: a leaked one is swept now
it_send_tier frontier late 1 # a reserve runs the sweep
it_check "10 results arrive" it_wait_count results 10 60
sleep 1
it_check "nothing is charged: every call was a 500, or not made" \
    test "$(field spent)" -eq 0
it_check "nothing was swept at its worst case" \
    test "$(field expired_micro)" -eq 0
it_read results >"$IT_DIR/results.jsonl"
it_check "every task has one failed Result" \
    python3 - "$IT_DIR/results.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
ids = collections.Counter(r["id"] for r in res)
st = collections.Counter(r["status"] for r in res)
print(dict(st))
sys.exit(0 if len(ids) == 10 and max(ids.values()) == 1 and
         st == {"failed": 10} else 1)
PY
calls=$(it_sim_requests "$SIM_URL")
it_log "the provider saw $calls calls for 10 tasks"
it_check "a half-open circuit let a probe through" test "$calls" -ge 2
it_check "the tasks that waited for a probe and then for the open circuit ended without a call" \
    test "$calls" -lt 10
