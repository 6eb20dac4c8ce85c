#!/usr/bin/env bash
# Budget-aware routing on the real broker and Redis (router only; the
# tier topics are read directly). A spent tier under `downgrade` sends the
# task one tier down; under `reject` the task is answered budget_exceeded;
# under `defer` it leaves the input for the deferred topic (its input
# offset commits: the router's tasks lag reads 0) without blocking other
# tasks, is not read back in a hot loop while the budget stays spent, and
# comes back when the tier has budget again: after `kascade budget set`
# raises the limit, and after the UTC day rolls over
# (budget.clock_offset_ms). Routed tasks' offsets are committed: a
# restarted router routes nothing again. (Before the deferred topic the
# tasks were held in memory with their offsets open, pinning the
# partition's commits.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# IT_ROUTER_TXN=true runs the same checks with router.transactions on.
IT_X+=(-X "router.transactions=${IT_ROUTER_TXN:-false}" -X "router.instance=it-$$")

B=$KASCADE_BOOTSTRAP_SERVERS
redis_port=${KASCADE_REDIS_URL##*:}
rcli() { redis-cli -p "$redis_port" "$@"; }
submit() { # submit ID TYPE
    printf '%s\t{"id": "%s", "type": "%s", "input": "text of %s"}\n' "$1" "$1" "$2" "$1" |
        kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
}
hdr() { # hdr TOPIC ID HEADER
    it_read "$1" | python3 -c '
import json, sys
m = [json.loads(l) for l in sys.stdin]
m = [r for r in m if r["key"] == sys.argv[1]]
print(m[-1]["headers"].get(sys.argv[2], "") if m else "missing")' "$2" "$3"
}
result() { # result ID FIELD
    it_read results | python3 -c '
import json, sys
v = [json.loads(l)["value"] for l in sys.stdin]
m = [r for r in v if isinstance(r, dict) and r.get("id") == sys.argv[1]]
print(m[-1].get(sys.argv[2]) if m else "missing")' "$1" "$2"
}
it_kascade topics create >"$IT_DIR/topics.out"
# Spend mid and frontier at runtime (limit 0: spent 0 >= 0).
it_kascade budget set mid 0 >>"$IT_DIR/budget.out"
it_kascade budget set frontier 0 >>"$IT_DIR/budget.out"

# --- downgrade (mid) and reject (frontier), the example config's policies
M1=$(it_free_port)
it_daemon router1 kascade-router -X "metrics.port=$M1"
R1=$LAST_PID
submit a1 answer
submit r1 review
it_check "a task for spent mid (downgrade) lands on local" it_wait_count tier.local 1 30
it_check "with reason budget_downgrade" test "$(hdr tier.local a1 kascade-reason)" = budget_downgrade
it_check "a task for spent frontier (reject) is answered" it_wait_count results 1 30
it_check "with budget_exceeded" test "$(result r1 status)" = budget_exceeded
it_check "naming the tier and policy" bash -c "[[ '$(result r1 error)' == *frontier*reject* ]]"
it_check "nothing reached mid or frontier" \
    test "$(it_count tier.mid)$(it_count tier.frontier)" = 00
it_check "kascade_tasks_routed_total counts the downgrade" \
    test "$(it_metric "$M1" 'kascade_tasks_routed_total.*budget_downgrade')" = 1
it_check "router 1 exits 0 on SIGTERM" it_stop "$R1"

# --- defer (mid): to the deferred topic while spent, others pass, back
# by budget set
M2=$(it_free_port)
DEFER=(-X "tiers.mid.on_budget_exhausted=defer")
it_daemon router2 kascade-router "${DEFER[@]}" -X "metrics.port=$M2"
R2=$LAST_PID
submit c1 classify_intent
for i in 1 2 3; do submit "d$i" answer; done
it_check "a local task passes while others are deferred" it_wait_count tier.local 2 30
it_check "the three wait in the deferred topic" it_wait_count deferred 3 30
tasks_lag_zero() {
    local deadline=$((SECONDS + 30))
    until it_kascade status --json >"$IT_DIR/status.json" 2>>"$IT_DIR/status.log" &&
        python3 -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["router"]["tasks_lag"] == 0 else 1)
' "$IT_DIR/status.json"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}
it_check "their input offsets commit (the router's tasks lag is 0)" tasks_lag_zero
sleep 3
it_check "the deferred tasks are not routed" test "$(it_count tier.mid)" -eq 0
it_check "nor refused" test "$(it_count results)" -eq 1
it_check "the deferred topic is not read back in a hot loop ($(it_count deferred) records)" \
    test "$(it_count deferred)" -le 12
no_held_gauge() { # the metrics are served, without kascade_router_held
    local m
    m=$(curl -sf "http://127.0.0.1:$M2/metrics") || return 1
    grep -q 'kascade_tasks_routed_total' <<<"$m" &&
        ! grep -q '^kascade_router_held' <<<"$m"
}
it_check "nothing held in memory: no kascade_router_held gauge" no_held_gauge
it_kascade budget set mid 100 >>"$IT_DIR/budget.out"
it_check "raising the limit brings all three back to mid" it_wait_count tier.mid 3 30
it_check "router 2 exits 0 on SIGTERM" it_stop "$R2"
it_daemon router3 kascade-router "${DEFER[@]}"
R3=$LAST_PID
submit c2 classify_intent
it_check "a restarted router routes a new task" it_wait_count tier.local 3 30
sleep 2
it_check "and none of the released ones again (their offsets were committed)" \
    test "$(it_count tier.mid)" -eq 3
it_check "router 3 exits 0 on SIGTERM" it_stop "$R3"

# --- defer across the UTC day rollover: a config limit spent yesterday
rcli DEL "${IT_PREFIX}{budget}:limit:tier:mid" >/dev/null
now_ms=$(python3 -c 'import time; print(int(time.time()*1000))')
offset=$(python3 -c 'import sys; now = int(sys.argv[1]); day = 86400000
print(day - now % day - 15000)' "$now_ms")
old_day=$(python3 -c 'import sys,time; print(time.strftime("%Y%m%d", time.gmtime((int(sys.argv[1])+int(sys.argv[2]))/1000)))' "$now_ms" "$offset")
rcli HSET "${IT_PREFIX}{budget}:$old_day:tier:mid" spent 1000 reserved 0 >/dev/null
it_daemon router4 kascade-router -X "tiers.mid.on_budget_exhausted=defer" \
    -X "tiers.mid.daily_budget_usd=0.001" -X "budget.clock_offset_ms=$offset"
R4=$LAST_PID
submit d4 answer
for _ in $(seq 20); do
    grep -q "d4: deferred" "$IT_DIR/router4.log" && break
    sleep 0.5
done
it_check "a task for mid, spent on $old_day, is deferred" grep -q "d4: deferred" "$IT_DIR/router4.log"
it_check "and not routed before midnight" test "$(it_count tier.mid)" -eq 3
it_check "after midnight (budget clock) it is released to mid" it_wait_count tier.mid 4 60
it_check "router 4 exits 0 on SIGTERM" it_stop "$R4"
