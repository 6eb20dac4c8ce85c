#!/usr/bin/env bash
# The whole escalation loop with real workers and model simulators: local
# answers with confidence 0.2 and mid with 0.3 (both under their tier's
# escalate_below), so a task climbs local -> mid -> frontier through the
# router and ends in one ok Result from frontier whose path holds all
# three attempts. With routing.max_hops=1 the router stops after mid and
# publishes the best answer so far (mid's) as low_confidence.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
# lib.sh turns escalation off by default; this test wants it.
IT_X+=(-X "tiers.local.escalate_below=0.5" -X "tiers.mid.escalate_below=0.6")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --confidence 0.2 --model sim-local
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_sim mid --confidence 0.3 --model sim-mid
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
it_sim frontier --confidence 0.95 --model sim-frontier
IT_X+=(-X "tiers.frontier.providers.0.base_url=$SIM_URL/v1")
for tier in local mid frontier; do
    it_daemon "worker-$tier" kascade-worker --tier "$tier"
done
result() { # result ID EXPR: a Python expression of the result r
    it_read results | python3 -c '
import json, sys
v = [json.loads(l)["value"] for l in sys.stdin]
m = [r for r in v if isinstance(r, dict) and r.get("id") == sys.argv[1]]
r = m[-1] if m else None
print(eval(sys.argv[2]) if r else "missing")' "$1" "$2"
}

it_daemon router kascade-router
ROUTER=$LAST_PID
printf 'c1\t{"id": "c1", "type": "classify_intent", "input": "where is my parcel"}\n' |
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "the task ends in one result" it_wait_count results 1 90
it_check "ok from frontier" test "$(result c1 'r["status"] + " " + r["tier"]')" = "ok frontier"
it_check "with the three attempts in its path" \
    test "$(result c1 '",".join(a["tier"] for a in r["path"])')" = "local,mid,frontier"
it_check "the router sent it up twice" test "$(it_count escalations)" -eq 2
it_check "router exits 0 on SIGTERM" it_stop "$ROUTER"

it_daemon router2 kascade-router -X "routing.max_hops=1"
ROUTER=$LAST_PID
printf 'c2\t{"id": "c2", "type": "classify_intent", "input": "track my order"}\n' |
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "with max_hops 1 the task ends in a result" it_wait_count results 2 90
it_check "low_confidence with mid's answer" \
    test "$(result c2 'r["status"] + " " + r["tier"]')" = "low_confidence mid"
it_check "and both attempts in its path" \
    test "$(result c2 '",".join(a["tier"] for a in r["path"])')" = "local,mid"
sleep 2
it_check "frontier was never asked" test "$(it_count tier.frontier)" -eq 1
it_check "router 2 exits 0 on SIGTERM" it_stop "$ROUTER"
