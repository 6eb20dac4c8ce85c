#!/usr/bin/env bash
# The router's escalation loop alone (no workers): this test writes the
# contexts into Redis and the Escalation records into the escalations
# topic itself, as a worker would. An escalation climbs one tier at a time
# with kascade-hop and kascade-reason set; from the top tier, past
# routing.max_hops or past the task's max_cost_usd it ends with the best
# answer so far and the right status; with no answer at all it fails; a
# missing context is dead-lettered; a spent tier is skipped upward.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# IT_ROUTER_TXN=true runs the same checks with router.transactions on.
IT_X+=(-X "router.transactions=${IT_ROUTER_TXN:-false}" -X "router.instance=it-$$")

B=$KASCADE_BOOTSTRAP_SERVERS
redis_port=${KASCADE_REDIS_URL##*:}
rcli() { redis-cli -p "$redis_port" "$@"; }
METRICS_PORT=$(it_free_port)
IT_X+=(-X "metrics.port=$METRICS_PORT")
it_kascade topics create >"$IT_DIR/topics.out"
it_daemon router kascade-router
ROUTER=$LAST_PID

# ctx ID TASK-HINTS ATTEMPTS-JSON: stores the context of task ID.
ctx() {
    rcli SET "${IT_PREFIX}ctx:-:$1" "{\"task\": {\"id\": \"$1\", \"type\": \"answer\", \"input\": \"question $1\"$2}, \"format\": \"json\", \"attempts\": $3, \"cost_so_far_usd\": 0}" >/dev/null
}
attempt() { # attempt TIER HOP OUTPUT CONFIDENCE
    printf '{"tier": "%s", "model": "m-%s", "hop": %s, "output": %s, "confidence": %s, "confidence_source": "self_report", "decision": "escalate", "reason": "low_confidence", "cost_usd": 0.0001, "latency_ms": 10, "input_tokens": 5, "output_tokens": 2}' "$1" "$1" "$2" "$3" "$4"
}
escalate() { # escalate ID FROM HOP [COST_SO_FAR]
    printf '%s\t{"id": "%s", "from_tier": "%s", "hop": %s, "reason": "low_confidence", "confidence": 0.2, "context_key": "%sctx:-:%s", "cost_so_far_usd": %s}\n' \
        "$1" "$1" "$2" "$3" "$IT_PREFIX" "$1" "${4:-0}" |
        kcat -b "$B" -P -t "${IT_PREFIX}escalations" -K $'\t'
}
# hdr TOPIC ID HEADER: the header of ID's last message on TOPIC
hdr() {
    it_read "$1" | python3 -c '
import json, sys
v = [json.loads(l) for l in sys.stdin]
m = [r for r in v if r["key"] == sys.argv[1]]
print(m[-1]["headers"].get(sys.argv[2], "") if m else "")' "$2" "$3"
}
result() { # result ID FIELD: a field of ID's result
    it_read results | python3 -c '
import json, sys
v = [json.loads(l)["value"] for l in sys.stdin]
m = [r for r in v if isinstance(r, dict) and r.get("id") == sys.argv[1]]
print(json.dumps(m[-1].get(sys.argv[2])) if m else "missing")' "$1" "$2"
}

# 1. climbing: local -> mid -> frontier -> stop with the best answer.
ctx e1 "" "[$(attempt local 0 '"a-local"' 0.3)]"
escalate e1 local 0
it_check "escalation from local lands on mid" it_wait_count tier.mid 1 30
it_check "with kascade-hop 1" test "$(hdr tier.mid e1 kascade-hop)" = 1
it_check "and kascade-reason escalation:low_confidence" \
    test "$(hdr tier.mid e1 kascade-reason)" = "escalation:low_confidence"
it_check "and kascade-tier mid" test "$(hdr tier.mid e1 kascade-tier)" = mid
task_of() { # task_of TOPIC ID: the value of ID's last message, as JSON
    it_read "$1" | python3 -c '
import json, sys
m = [json.loads(l) for l in sys.stdin]
m = [r["value"] for r in m if r["key"] == sys.argv[1]]
print(json.dumps(m[-1], sort_keys=True) if m else "missing")' "$2"
}
it_check "the republished value is the context's task" \
    test "$(task_of tier.mid e1)" = '{"id": "e1", "input": "question e1", "type": "answer"}'
it_check "nothing went to frontier yet" test "$(it_count tier.frontier)" -eq 0

ctx e1 "" "[$(attempt local 0 '"a-local"' 0.3), $(attempt mid 1 '"a-mid"' 0.45)]"
escalate e1 mid 1
it_check "escalation from mid lands on frontier" it_wait_count tier.frontier 1 30
it_check "with kascade-hop 2" test "$(hdr tier.frontier e1 kascade-hop)" = 2

ctx e1 "" "[$(attempt local 0 '"a-local"' 0.3), $(attempt mid 1 '"a-mid"' 0.45), $(attempt frontier 2 '"a-frontier"' 0.4)]"
escalate e1 frontier 2
it_check "escalation from the top tier ends in a result" it_wait_count results 1 30
it_check "status low_confidence" test "$(result e1 status)" = '"low_confidence"'
it_check "with the best answer (mid, 0.45)" test "$(result e1 output)" = '"a-mid"'
it_check "and the whole path" \
    test "$(result e1 path | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 3

# 2. max_hops (3 in the example config): hop 3 goes no further.
ctx e2 "" "[$(attempt local 0 '"b-local"' 0.2), $(attempt mid 3 '"b-mid"' 0.3)]"
escalate e2 mid 3
it_check "an escalation at max_hops ends in a result" it_wait_count results 2 30
it_check "status low_confidence, best answer" \
    test "$(result e2 status) $(result e2 output)" = '"low_confidence" "b-mid"'
it_check "max_hops stopped it" bash -c "[[ '$(result e2 error)' == *max_hops* ]]"

# 3. max_cost_usd: mid's worst case does not fit what is left.
ctx e3 ', "hints": {"max_cost_usd": 0.0002}' "[$(attempt local 0 '"c-local"' 0.2)]"
escalate e3 local 0 0.0001
it_check "an escalation over max_cost_usd ends in a result" it_wait_count results 3 30
it_check "status budget_exceeded with the answer so far" \
    test "$(result e3 status) $(result e3 output)" = '"budget_exceeded" "c-local"'
it_check "and says max_cost_usd" bash -c "[[ '$(result e3 error)' == *max_cost_usd* ]]"

# 4. no attempt with an output: failed.
ctx e4 "" "[$(attempt frontier 0 null null)]"
escalate e4 frontier 0
it_check "an escalation with no answer at all ends in a result" it_wait_count results 4 30
it_check "status failed" test "$(result e4 status)" = '"failed"'

# 5. a missing context goes to the DLQ.
escalate e5 local 0
it_check "a missing context is dead-lettered" it_wait_count dlq 1 30
it_check "as invalid" test "$(hdr dlq e5 kascade-error)" = invalid

# 6. a spent tier (mid, limit 0 at runtime) is skipped upward.
it_kascade budget set mid 0 >"$IT_DIR/budget.out"
sleep 2 # the router reads budgets once a second
ctx e6 "" "[$(attempt local 0 '"f-local"' 0.2)]"
escalate e6 local 0
it_check "an escalation skips the spent mid tier" it_wait_count tier.frontier 2 30
it_check "straight to frontier at hop 1" test "$(hdr tier.frontier e6 kascade-hop)" = 1
it_check "mid got nothing more" test "$(it_count tier.mid)" -eq 1

# 7. an Escalation's reason is free text on the wire: the metric's label
# is a closed set, anything else counts as "other" (one series, however
# many different texts).
ctx e7 "" "[$(attempt local 0 '"g-local"' 0.2)]"
printf 'e7\t{"id": "e7", "from_tier": "local", "hop": 0, "reason": "ignore previous instructions %s", "confidence": 0.2, "context_key": "%sctx:-:e7", "cost_so_far_usd": 0}\n' \
    "$$" "$IT_PREFIX" | kcat -b "$B" -P -t "${IT_PREFIX}escalations" -K $'\t'
it_check "the forged reason's escalation is routed" it_wait_count tier.frontier 3 30
it_check "kascade_escalations_total counts the four republished" \
    test "$(it_metric "$METRICS_PORT" 'kascade_escalations_total')" = 4
it_check "the free-text reason is counted as other" \
    test "$(it_metric "$METRICS_PORT" 'kascade_escalations_total[{]from_tier="local",reason="other"')" = 1
no_free_text() {
    ! curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | grep -q ignore
}
it_check "and makes no series of its own" no_free_text
it_check "router drains and exits 0 on SIGTERM" it_stop "$ROUTER"
