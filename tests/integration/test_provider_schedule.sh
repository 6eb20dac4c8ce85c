#!/usr/bin/env bash
# A provider that fails for a while and recovers (the simulator's fault
# schedule: 500s, then 429s, then hangs, then malformed bodies, then
# answers): tier local retries with backoff, and a task whose retries run
# out is handed on to mid (reason provider_failure) by the real router.
# Every task ends with exactly one ok Result, from local or from mid;
# nothing is lost, nothing dead-lettered, and the retries are bounded.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --fault-schedule 0-40:500,40-70:429,70-80:hang,80-100:malformed \
    --hang-ms 3000 --latency-ms 5
LOCAL=$SIM_URL
it_sim mid --latency-ms 5
MID=$SIM_URL
IT_X+=(-X "tiers.local.providers.0.base_url=$LOCAL/v1"
       -X "tiers.local.providers.0.max_retries=3"
       -X "tiers.local.providers.0.timeout_ms=1000"
       -X "tiers.local.providers.0.circuit_failures=1000"
       -X "tiers.local.max_inflight=8"
       -X "tiers.mid.providers.0.base_url=$MID/v1")
it_daemon router kascade-router
it_daemon worker-local kascade-worker --tier local
it_daemon worker-mid kascade-worker --tier mid

N=120
for i in $(seq "$N"); do
    printf 's-%d\t{"id":"s-%d","type":"classify_intent","input":"scheduled %d"}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "every task has a Result" it_wait_count results "$N" 180
sleep 2
check() {
    it_read results | python3 -c '
import collections, json, sys
res = [json.loads(l)["value"] for l in sys.stdin]
ids = collections.Counter(r["id"] for r in res)
by = collections.Counter((r["status"], r["tier"]) for r in res)
handed = [r for r in res if r["tier"] == "mid"]
ok = len(ids) == int(sys.argv[1]) and max(ids.values()) == 1 and \
    set(by) <= {("ok", "local"), ("ok", "mid")} and \
    all(r["path"][0]["reason"] == "provider_failure" for r in handed)
print(dict(by), "%d handed on" % len(handed))
sys.exit(0 if ok else 1)' "$N"
}
it_check "one ok Result per task, from local or handed on to mid" check
it_check "nothing dead-lettered" test "$(it_count dlq)" -eq 0
calls=$(it_sim_requests "$LOCAL")
it_log "local saw $calls calls for $N tasks"
it_check "retries bounded: at most 4 calls per task" test "$calls" -le $((4 * N))
it_check "the provider recovered: later tasks answered on local" \
    bash -c "python3 '$KS_ROOT/tests/integration/kafkatool.py' read '$KASCADE_BOOTSTRAP_SERVERS' '${IT_PREFIX}results' | grep -q '\"tier\": \"local\"'"
