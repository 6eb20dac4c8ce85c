#!/usr/bin/env bash
# Agreement with the provider's "n" (tiers[].providers[].supports_n):
# 1. against kascade-modelsim, which honours n, tier local with samples 3
#    makes ONE call per task asking for the 3 answers: the simulator sees
#    4 requests for 4 tasks, the worker counts 4 ok calls, and each Result
#    is the agreed answer (source agreement, confidence 1: the simulator
#    gives one answer 3 times) with the usage of all 3 choices;
# 2. against the real local model (llama.cpp, deploy/local/llm.sh), whose
#    server accepts n and answers once, the worker asks again for the
#    answers it did not get: 3 ok calls per task, one Result each whose
#    confidence is a share of 3.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

METRICS=$(it_free_port)
it_sim local --latency-ms 20
X_SIM=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.local.providers.0.model=sim-local")
IT_X+=(-X "tiers.local.samples=3"
       -X "tiers.local.providers.0.supports_n=true"
       -X "tiers.local.escalate_below=0"
       -X "metrics.port=$METRICS")
it_kascade topics create >"$IT_DIR/topics.out"

# send PREFIX COUNT: COUNT tasks ids PREFIX-0.. onto tier.local
send() {
    for ((i = 0; i < $2; i++)); do
        printf '%s-%d\t{"id":"%s-%d","type":"qa","input":"What is %d + 3? Answer with the number only.","hints":{"max_output_tokens":8}}\n' \
            "$1" "$i" "$1" "$i" "$i"
    done >"$IT_DIR/tasks-$1.txt"
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t' \
        -l "$IT_DIR/tasks-$1.txt"
}

# check PREFIX COUNT WANT: each task PREFIX-i has one ok Result of source
# agreement; WANT "one" (confidence 1) or "share" (1/3, 2/3 or 1)
check() {
    it_read results >"$IT_DIR/results.jsonl"
    python3 - "$1" "$2" "$3" "$IT_DIR/results.jsonl" <<'PY'
import collections, json, sys
prefix, count, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
res = [json.loads(l)["value"] for l in open(sys.argv[4])]
res = [r for r in res if str(r.get("id", "")).startswith(prefix + "-")]
bad = []
ids = collections.Counter(r["id"] for r in res)
if ids != collections.Counter("%s-%d" % (prefix, i) for i in range(count)):
    bad.append("result ids %s" % dict(ids))
ok = (1.0,) if want == "one" else (1 / 3, 2 / 3, 1.0)
for r in res:
    u, c = r.get("usage") or {}, r.get("confidence")
    why = []
    if r.get("status") != "ok" or r.get("confidence_source") != "agreement":
        why.append("status/source %r/%r" % (r.get("status"), r.get("confidence_source")))
    if not isinstance(c, (int, float)) or not any(abs(c - v) < 1e-9 for v in ok):
        why.append("confidence %r" % c)
    if want == "one" and u.get("output_tokens", 0) % 3 != 0:
        why.append("output tokens %r are not 3 choices'" % u.get("output_tokens"))
    if why:
        bad.append("%s: %s" % (r["id"], "; ".join(why)))
print("\n".join(bad[:10]))
sys.exit(1 if bad else 0)
PY
}

ok_calls() { it_metric "$METRICS" '^kascade_requests_total[{]tier="local",.*status="ok"'; }

it_daemon worker-sim kascade-worker --tier local "${X_SIM[@]}"
WPID=$LAST_PID
send sim 4
it_check "4 results arrive (simulator)" it_wait_count results 4 120
sleep 1 # a second call would have ended by now
it_check "simulator: one Result per task, all 3 choices agree" check sim 4 one
it_check "simulator: one request per task (n=3)" \
    test "$(it_sim_requests "$SIM_URL")" -eq 4
it_check "simulator: the worker counts one ok call per task" \
    test "$(ok_calls)" -eq 4
it_check "worker stops cleanly" it_stop "$WPID"

it_local_model
it_daemon worker-llm kascade-worker --tier local \
    -X "tiers.local.providers.0.base_url=$LLM_URL" \
    -X "tiers.local.providers.0.model=smollm2-135m" \
    -X "tiers.local.providers.0.timeout_ms=120000" \
    -X "tiers.local.max_inflight=2"
send llm 2
it_check "2 more results arrive (real model)" it_wait_count results 6 300
sleep 2
it_check "real model: one Result per task, a share of 3 answers" check llm 2 share
it_check "real model: it answers n once, so 3 ok calls per task" \
    test "$(ok_calls)" -eq 6
