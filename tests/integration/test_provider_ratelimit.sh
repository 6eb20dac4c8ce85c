#!/usr/bin/env bash
# A fleet-wide request limit: two mid workers share one provider with
# rpm 60, and 75 tasks arrive at once. The pool admits 60 calls, holds
# the other 15 (kascade_ratelimit_holds_total) until the first calls
# leave the one-minute window, then answers them. Counted at the
# simulator: 40 s after its first request (well inside one window) it has
# seen exactly 60; in the end exactly 75, one ok Result per task.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid
MID=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$MID/v1"
       -X "tiers.mid.providers.0.rpm=60")
M1=$(it_free_port)
M2=$(it_free_port)
it_daemon router kascade-router
it_daemon worker-mid-1 kascade-worker --tier mid -X "metrics.port=$M1"
it_daemon worker-mid-2 kascade-worker --tier mid -X "metrics.port=$M2"
sleep 3 # both workers in the group before the tasks come

for i in $(seq 75); do
    printf 'q-%d\t{"id":"q-%d","type":"answer","input":"question %d"}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'

# The first request: poll until the simulator has seen one.
for _ in $(seq 600); do
    [ "$(it_sim_requests "$MID")" -gt 0 ] && break
    sleep 0.1
done
first=$SECONDS
it_check "the simulator saw requests" test "$(it_sim_requests "$MID")" -gt 0
sleep 40
in_window=$(it_sim_requests "$MID")
it_log "requests $((SECONDS - first)) s after the first: $in_window"
it_check "within one minute of the first request: exactly rpm (60) calls" \
    test "$in_window" -eq 60
holds=$(($(it_metric "$M1" '^kascade_ratelimit_holds_total[{]tier="mid"') +
         $(it_metric "$M2" '^kascade_ratelimit_holds_total[{]tier="mid"')))
it_check "the held calls were counted ($holds holds)" test "$holds" -ge 15

it_check "75 results arrive" it_wait_count results 75 120
sleep 1
it_check "75 calls in all" test "$(it_sim_requests "$MID")" -eq 75
it_read results >"$IT_DIR/results.jsonl"
check() {
    python3 - "$IT_DIR/results.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
ids = collections.Counter(r["id"] for r in res)
st = collections.Counter(r["status"] for r in res)
print(len(ids), dict(st))
sys.exit(0 if len(ids) == 75 and max(ids.values()) == 1 and
         dict(st) == {"ok": 75} else 1)
PY
}
it_check "one ok Result per task" check
