#!/usr/bin/env bash
# Charged >= billed for calls that fail: a call whose request reached the
# provider and that then timed out (the simulator reads it and hangs) may
# have been billed, so it is charged at its reserved worst case, not 0;
# a call the provider answered with an error status (500) was not billed
# and is charged 0. Both end as `failed` Results (frontier, the top tier,
# no retries), and no reservation is left open.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IT_X+=(-X "tiers.frontier.prompt=Answer."
       -X "tiers.frontier.providers.0.timeout_ms=2000"
       -X "tiers.frontier.providers.0.max_retries=0"
       -X "tiers.frontier.providers.0.circuit_failures=1000")
it_kascade topics create >"$IT_DIR/topics.out"
# request 0 hangs past the timeout (after reading the request), the rest 500
it_sim frontier --fault-schedule 0-1:hang,1-:500 --hang-ms 6000
SIM=$SIM_URL
IT_X+=(-X "tiers.frontier.providers.0.base_url=$SIM/v1")
it_daemon router kascade-router
it_daemon worker-frontier kascade-worker --tier frontier

redis_port=${KASCADE_REDIS_URL##*:}
key="${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:frontier"
field() { redis-cli -p "$redis_port" HGET "$key" "$1"; }
submit() { # submit ID
    printf '%s\t{"id":"%s","type":"review","input":"text of %s","hints":{"min_tier":"frontier","max_output_tokens":64}}\n' \
        "$1" "$1" "$1" | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'
}
max_reserved() { # the largest reserved seen over $1 seconds, or until a result
    local deadline=$((SECONDS + $1)) m=0 v
    while [ $SECONDS -lt $deadline ]; do
        v=$(field reserved)
        [ -n "$v" ] && [ "$v" -gt "$m" ] && m=$v
        [ "$(it_count results)" -ge 1 ] && break
        sleep 0.05
    done
    echo "$m"
}

submit hang-1
worst=$(max_reserved 30)
it_log "the call reserved $worst micro-USD"
it_check "the call reserved its worst case" test "$worst" -gt 0
it_check "the timed-out task ends" it_wait_count results 1 30
sleep 2 # the settle goes out with the next loop turn
it_check "the timeout after the request was sent is charged at worst case" \
    test "$(field spent)" = "$worst"
it_check "and its reservation is released" test "$(field reserved)" = 0

submit err-1
it_check "the 500 task ends" it_wait_count results 2 30
sleep 2
it_check "a 500 the provider answered is charged nothing" \
    test "$(field spent)" = "$worst"
it_check "no reservation is left" test "$(field reserved)" = 0
it_read results >"$IT_DIR/results.jsonl"
it_check "both are failed Results" python3 - "$IT_DIR/results.jsonl" <<'PY'
import json, sys
v = {json.loads(l)["value"]["id"]: json.loads(l)["value"]["status"] for l in open(sys.argv[1])}
sys.exit(0 if v == {"hang-1": "failed", "err-1": "failed"} else print(v) or 1)
PY
it_check "the simulator saw both calls" test "$(it_sim_requests "$SIM")" -eq 2
