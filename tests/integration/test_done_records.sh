#!/usr/bin/env bash
# Nothing paid twice: tasks answered once and submitted again (a
# redelivery, as after a crash) are answered from the kascade:done record
# (kascade:done:<tenant>:<id>:<hop>, "-" for no tenant)
# in the real Redis, without a second model call.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
for tier in local mid frontier; do
    it_sim "$tier" --latency-ms 2
    IT_X+=(-X "tiers.$tier.providers.0.base_url=$SIM_URL/v1")
    eval "URL_$tier=\$SIM_URL"
done
ROUTER_METRICS=$(it_free_port)
LOCAL_METRICS=$(it_free_port)
it_daemon router kascade-router -X "metrics.port=$ROUTER_METRICS"
it_daemon worker-local kascade-worker --tier local -X "metrics.port=$LOCAL_METRICS"
for tier in mid frontier; do
    it_daemon "worker-$tier" kascade-worker --tier "$tier"
done

python3 - "$IT_DIR/tasks.jsonl" <<'PY'
import json, sys
types = ["classify_intent", "answer", "review"]
with open(sys.argv[1], "w") as f:
    for i in range(90):
        f.write(json.dumps({"id": "d-%d" % i, "type": types[i % 3],
                            "input": "question %d" % i}) + "\n")
PY

calls() {
    echo $(($(it_sim_requests "$URL_local") + $(it_sim_requests "$URL_mid") +
        $(it_sim_requests "$URL_frontier")))
}
it_check "first submission: every task answered" \
    it_kascade submit "$IT_DIR/tasks.jsonl" --wait --timeout 120 \
    -o "$IT_DIR/first.jsonl"
first=$(calls)
it_check "one model call per task ($first)" test "$first" -eq 90
redis_port=${KASCADE_REDIS_URL##*:}
it_check "a done record per task in Redis" \
    test "$(redis-cli -p "$redis_port" --scan --pattern "${IT_PREFIX}done:-:d-*:0" | wc -l)" -eq 90
it_check "second submission: every task answered again" \
    it_kascade submit "$IT_DIR/tasks.jsonl" --wait --timeout 120 \
    -o "$IT_DIR/second.jsonl"
it_check "no second model call" test "$(calls)" -eq "$first"
same() {
    python3 - "$IT_DIR/first.jsonl" "$IT_DIR/second.jsonl" <<'PY'
import json, sys
a = {r["id"]: r for r in map(json.loads, open(sys.argv[1]))}
b = {r["id"]: r for r in map(json.loads, open(sys.argv[2]))}
sys.exit(0 if a == b and len(a) == 90 else 1)
PY
}
it_check "the stored answers are the same answers" same
it_check "router metrics count 180 routed tasks" \
    test "$(it_metric "$ROUTER_METRICS" '^kascade_tasks_routed_total')" -eq 180
it_check "local worker metrics count 30 ok results" \
    test "$(it_metric "$LOCAL_METRICS" '^kascade_results_total[{]tier="local",status="ok"')" -eq 30
it_check "and 30 answered from the done record" \
    test "$(it_metric "$LOCAL_METRICS" '^kascade_results_total[{]tier="local",status="stored"')" -eq 30
it_check "local worker metrics count 30 model calls" \
    test "$(it_metric "$LOCAL_METRICS" '^kascade_requests_total[{].*status="ok"')" -eq 30
