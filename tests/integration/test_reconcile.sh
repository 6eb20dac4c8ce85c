#!/usr/bin/env bash
# 1,000 messages from kcat (an outside client) through the real broker:
# JSON and protobuf tasks plus malformed ones of every kind. Every good task
# has exactly one Result on the tier its type maps to; every bad one is in
# the DLQ with its error code; nothing missing, nothing extra. Then the
# daemons are stopped with SIGTERM and started again: their offsets were
# committed, so nothing is processed twice.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${IT_RECONCILE_N:-1000}
IT_X+=(-X "limits.max_message_bytes=65536" -X "tiers.local.max_inflight=${IT_LOCAL_INFLIGHT:-4}")

python3 "$KS_ROOT/tests/integration/kafkatool.py" gen "$IT_DIR" "$N"
it_kascade topics create >"$IT_DIR/topics.out"

for tier in local mid frontier; do
    it_sim "$tier" --latency-ms 5 --jitter-ms 10 --model "sim-$tier"
    IT_X+=(-X "tiers.$tier.providers.0.base_url=$SIM_URL/v1")
done

start_fleet() {
    it_daemon router kascade-router
    ROUTER=$LAST_PID
    WORKERS=()
    for tier in local mid frontier; do
        it_daemon "worker-$tier" kascade-worker --tier "$tier"
        WORKERS+=($LAST_PID)
    done
}
start_fleet

B=$KASCADE_BOOTSTRAP_SERVERS
kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t' -l "$IT_DIR/json.txt"
kcat -b "$B" -P -t "${IT_PREFIX}tasks" -D '\xff' \
    -H content-type=application/x-protobuf -l "$IT_DIR/pb.bin"
kcat -b "$B" -P -t "${IT_PREFIX}tasks" -l "$IT_DIR/bad.txt"

good=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["results"]))' "$IT_DIR/expect.json")
bad=$((N - good))
it_check "all $good results arrive" it_wait_count results "$good" 180
it_check "all $bad DLQ entries arrive" it_wait_count dlq "$bad" 60
sleep 3 # anything extra would show up now

it_read results >"$IT_DIR/results.jsonl"
it_read dlq >"$IT_DIR/dlq.jsonl"
it_check "results and DLQ reconcile exactly with what was sent" \
    python3 "$KS_ROOT/tests/integration/check_reconcile.py" \
    "$IT_DIR/expect.json" "$IT_DIR/results.jsonl" "$IT_DIR/dlq.jsonl" \
    "${IT_PREFIX}tasks"

it_check "router drains and exits 0 on SIGTERM" it_stop "$ROUTER"
for pid in "${WORKERS[@]}"; do
    it_check "worker $pid drains and exits 0 on SIGTERM" it_stop "$pid"
done

# Offsets were committed: a restarted fleet answers ten new tasks and
# nothing old (an uncommitted offset would bring old tasks back).
start_fleet
for i in $(seq 10); do
    printf 'n-%d\t{"id":"n-%d","type":"answer","input":"after restart"}\n' "$i" "$i"
done | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "the restarted fleet answers new tasks" \
    it_wait_count results $((good + 10)) 120
sleep 3
it_check "and reprocesses none of the old ones" \
    test "$(it_count results)" -eq $((good + 10))
it_check "no DLQ entry added after restart" test "$(it_count dlq)" -eq "$bad"
