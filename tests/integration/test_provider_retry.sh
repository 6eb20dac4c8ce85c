#!/usr/bin/env bash
# Transient provider trouble is retried, permanent trouble is not:
# - the local model answers 429 (Retry-After: 1) or 500 to about half the
#   calls: every task still ends `ok`, with more calls than tasks;
# - the frontier model hangs: each call times out at the tier's timeout_ms
#   and is retried once, then the task ends `failed` with a DLQ entry
#   `timeout` (the top tier: below it, failure would escalate instead).
# Circuits are kept closed (circuit_failures 1000) to count retries alone.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --fail 429:0.35,500:0.15 --seed 7
LOCAL=$SIM_URL
it_sim frontier --fail hang:1 --hang-ms 5000
MID=$SIM_URL
IT_X+=(-X "tiers.local.providers.0.base_url=$LOCAL/v1"
       -X "tiers.local.providers.0.max_retries=10"
       -X "tiers.frontier.providers.0.base_url=$MID/v1"
       -X "tiers.frontier.providers.0.timeout_ms=300"
       -X "tiers.frontier.providers.0.max_retries=1"
       -X "tiers.local.providers.0.circuit_failures=1000"
       -X "tiers.frontier.providers.0.circuit_failures=1000")
it_daemon router kascade-router
it_daemon worker-local kascade-worker --tier local
it_daemon worker-frontier kascade-worker --tier frontier

for i in $(seq 5); do
    printf 'h-%d\t{"id":"h-%d","type":"review","input":"hangs %d"}\n' "$i" "$i" "$i"
done >"$IT_DIR/hang.txt"
{
    for i in $(seq 30); do
        printf 'k-%d\t{"id":"k-%d","type":"classify_intent","input":"flaky %d"}\n' "$i" "$i" "$i"
    done
    cat "$IT_DIR/hang.txt"
} | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'

it_check "35 results arrive" it_wait_count results 35 120
it_check "5 DLQ entries arrive" it_wait_count dlq 5 60
sleep 2
it_read results >"$IT_DIR/results.jsonl"
it_read dlq >"$IT_DIR/dlq.jsonl"
check() {
    python3 - "$IT_DIR/results.jsonl" "$IT_DIR/dlq.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
dlq = [json.loads(l) for l in open(sys.argv[2])]
by = collections.Counter((r["id"][0], r["status"]) for r in res)
codes = collections.Counter(d["headers"].get("kascade-error") for d in dlq)
ok = dict(by) == {("k", "ok"): 30, ("h", "failed"): 5} and \
    dict(codes) == {"timeout": 5}
print(dict(by), dict(codes))
sys.exit(0 if ok else 1)
PY
}
it_check "flaky calls end ok, hanging ones failed with DLQ timeout" check
local_calls=$(it_sim_requests "$LOCAL")
it_check "the flaky model was retried ($local_calls calls for 30 tasks)" \
    test "$local_calls" -gt 30
it_check "each hanging call was tried twice (10 calls)" \
    test "$(it_sim_requests "$MID")" -eq 10
