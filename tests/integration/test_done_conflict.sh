#!/usr/bin/env bash
# Done records per task, not per id: a task that reuses another task's id
# within redis.done_ttl_s is never answered from the other task's record.
# The same tenant reusing an id for a different task gets DLQ `conflict`;
# another tenant (or no tenant) with the same id gets its own answer, from
# its own model call; the identical task again (a redelivery) is answered
# from its record without a call.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --latency-ms 2
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_daemon router kascade-router
it_daemon worker-local kascade-worker --tier local
WORKER=$LAST_PID

send() { # send TENANT INPUT: task "dup-1" (TENANT "" for none) to the tasks topic
    local tenant=""
    [ -n "$1" ] && tenant="\"tenant\": \"$1\", "
    printf 'dup-1\t{"id": "dup-1", "type": "classify_intent", %s"input": "%s", "hints": {"max_tier": "local"}}\n' \
        "$tenant" "$2" | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
}
results() { # results: "tenant status" of each Result, in order
    it_read results | python3 -c '
import json, sys
for l in sys.stdin:
    v = json.loads(l)["value"]
    print("%s %s" % (v.get("tenant") or "-", v.get("status")))'
}
for _ in $(seq 30); do # the topics' metadata settles first
    grep -q "assigned" "$IT_DIR/worker-local.log" && break
    sleep 1
done

send acme "first question"
it_check "acme's task is answered" it_wait_count results 1 30
it_check "by one model call" test "$(it_sim_requests "$SIM_URL")" -eq 1
send acme "first question"
it_check "the same task again is answered again" it_wait_count results 2 30
it_check "from its done record, without a call" \
    test "$(it_sim_requests "$SIM_URL")" -eq 1
send acme "another question"
it_check "acme reusing the id for another task: DLQ" it_wait_count dlq 1 30
it_check "with code conflict" \
    bash -c "python3 '$KS_ROOT/tests/integration/kafkatool.py' read '$B' '${IT_PREFIX}dlq' | grep -q '\"kascade-error\": \"conflict\"'"
send globex "first question"
it_check "globex with the same id gets an answer" it_wait_count results 3 30
send "" "first question"
it_check "and so does a task without a tenant" it_wait_count results 4 30
sleep 2
results >"$IT_DIR/results.txt"
it_check "each answer is its own tenant's, none answered twice" \
    test "$(tr '\n' ' ' <"$IT_DIR/results.txt")" = "acme ok acme ok globex ok - ok "
it_check "from their own model calls" test "$(it_sim_requests "$SIM_URL")" -eq 3
it_check "the conflict was not answered" test "$(it_count dlq)" -eq 1
it_check "the worker is still up" kill -0 "$WORKER"
