#!/usr/bin/env bash
# An error reply from Redis is not "Redis down": a tenant whose budget key
# holds the wrong type (WRONGTYPE from the reserve script) gets its task
# dead-lettered with code `redis`, with budget.fail_open on, and no model
# call is made for it; another tenant's task is answered as usual and the
# worker stays up. The same for the rate-limit script (its key of the
# wrong type) and, as `invalid`, for a tenant too long to name a budget.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --latency-ms 2
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
IT_X+=(-X "budget.fail_open=true" -X "tiers.local.providers.0.rpm=10000")
it_daemon router kascade-router
it_daemon worker-local kascade-worker --tier local
WORKER=$LAST_PID

redis_port=${KASCADE_REDIS_URL##*:}
day=$(date -u +%Y%m%d)
redis-cli -p "$redis_port" SET "${IT_PREFIX}{budget}:$day:tenant:broken:res" x \
    >/dev/null

cat >"$IT_DIR/tasks.jsonl" <<'JSON'
{"id": "re-bad", "type": "classify_intent", "tenant": "broken", "input": "hello", "hints": {"max_tier": "local"}}
{"id": "re-good", "type": "classify_intent", "tenant": "fine", "input": "hello", "hints": {"max_tier": "local"}}
JSON
for _ in $(seq 30); do # the topics' metadata settles first
    grep -q "assigned" "$IT_DIR/worker-local.log" && break
    sleep 1
done
it_kascade submit "$IT_DIR/tasks.jsonl" --wait --timeout 8 \
    -o "$IT_DIR/out.jsonl" || true

it_check "the good tenant's task is answered" \
    grep -q '"id": *"re-good".*"status": *"ok"' "$IT_DIR/out.jsonl"
it_check "the broken tenant's task is in the DLQ" it_wait_count dlq 1 20
dlq_ok() {
    it_read dlq | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
ok = [r for r in recs if r["headers"].get("kascade-error") == "redis"
      and "WRONGTYPE" in r["headers"].get("kascade-error-detail", "")
      and r["value"].get("id") == "re-bad"]
sys.exit(0 if len(recs) == 1 and ok else 1)'
}
it_check "with code redis and the error as detail" dlq_ok
it_check "no answer for the broken tenant's task" \
    bash -c "! grep -q 're-bad' '$IT_DIR/out.jsonl'"
it_check "one model call in all (none for the broken tenant)" \
    test "$(it_sim_requests "$SIM_URL")" -eq 1
it_check "the worker is still up" kill -0 "$WORKER"

# A tenant too long for a budget key: invalid (by the codec or, before
# any call, by the worker), never called unreserved.
long=$(printf 'a%.0s' $(seq 200))
printf '{"id": "re-long", "type": "classify_intent", "tenant": "%s", "input": "hello", "hints": {"max_tier": "local"}}\n' \
    "$long" >"$IT_DIR/long.jsonl"
it_kascade submit "$IT_DIR/long.jsonl" --wait --timeout 8 >/dev/null 2>&1 || true
it_check "a tenant too long for a key is in the DLQ" it_wait_count dlq 2 20
it_check "as invalid" bash -c "python3 '$KS_ROOT/tests/integration/kafkatool.py' read '$KASCADE_BOOTSTRAP_SERVERS' '${IT_PREFIX}dlq' | grep -q '\"kascade-error\": \"invalid\"'"

# The rate-limit script meets its key of the wrong type.
redis-cli -p "$redis_port" DEL "${IT_PREFIX}rate:{local:0}" >/dev/null
redis-cli -p "$redis_port" SET "${IT_PREFIX}rate:{local:0}" x >/dev/null
echo '{"id": "re-rate", "type": "classify_intent", "tenant": "fine", "input": "hello", "hints": {"max_tier": "local"}}' \
    >"$IT_DIR/rate.jsonl"
it_kascade submit "$IT_DIR/rate.jsonl" --wait --timeout 8 >/dev/null 2>&1 || true
it_check "a rate-limit error reply sends the task to the DLQ" it_wait_count dlq 3 20
it_check "as redis, from the rate limit" bash -c "python3 '$KS_ROOT/tests/integration/kafkatool.py' read '$KASCADE_BOOTSTRAP_SERVERS' '${IT_PREFIX}dlq' | grep -q '\"kascade-error-detail\": \"rate limit: redis answered with an error: WRONGTYPE'"
it_check "still one model call in all" test "$(it_sim_requests "$SIM_URL")" -eq 1
it_check "the worker is still up after all" kill -0 "$WORKER"
