#!/usr/bin/env bash
# Providers that fail: the mid tier's model answers 500 to everything, the
# frontier's sends malformed bodies, the local one works (and gets garbage
# written straight to its topic). Retries run out; mid's tasks are
# handed on (escalated: repeated failure) to the frontier, which fails
# them too; on the top tier each failing task ends as a `failed` Result
# plus a DLQ entry with error `provider`, the original bytes untouched; working tasks are
# unaffected; no daemon crashes and nothing is dropped. (Circuits are kept
# closed here, circuit_failures 1000, to count retries alone;
# test_provider_circuit.sh tests them.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --latency-ms 2
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_sim mid --fail 500:1
MID_URL=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.mid.providers.0.max_retries=2"
       -X "tiers.mid.providers.0.circuit_failures=1000")
it_sim frontier --fail malformed:1
IT_X+=(-X "tiers.frontier.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.frontier.providers.0.circuit_failures=1000")

it_daemon router kascade-router
for tier in local mid frontier; do
    it_daemon "worker-$tier" kascade-worker --tier "$tier"
done

for i in $(seq 20); do
    printf 'l-%d\t{"id":"l-%d","type":"classify_intent","input":"ok %d"}\n' "$i" "$i" "$i"
    printf 'm-%d\t{"id":"m-%d","type":"answer","input":"fails %d"}\n' "$i" "$i" "$i"
    printf 'f-%d\t{"id":"f-%d","type":"review","input":"garbled %d"}\n' "$i" "$i" "$i"
done >"$IT_DIR/tasks.txt"
kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t' \
    -l "$IT_DIR/tasks.txt"
# Garbage written straight to a tier topic: the worker dead-letters it too.
printf '%s\n' 'garbage' '{"id":"g-1"}' '{"id":"g-2","type":"x","input":1}' |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local"

it_check "60 results arrive" it_wait_count results 60 120
it_check "43 DLQ entries arrive" it_wait_count dlq 43 60
sleep 2
it_read results >"$IT_DIR/results.jsonl"
it_read dlq >"$IT_DIR/dlq.jsonl"

check() {
    python3 - "$IT_DIR/results.jsonl" "$IT_DIR/dlq.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
dlq = [json.loads(l) for l in open(sys.argv[2])]
by = collections.Counter((r["id"][0], r["status"]) for r in res)
want = {("l", "ok"): 20, ("m", "failed"): 20, ("f", "failed"): 20}
bad = []
if dict(by) != want:
    bad.append("results %s" % dict(by))
for r in res:
    if r["status"] == "failed" and not (r["error"] or "").startswith("provider:"):
        bad.append("%s: error %r" % (r["id"], r["error"]))
codes = collections.Counter(d["headers"].get("kascade-error") for d in dlq)
if dict(codes) != {"provider": 40, "decode": 1, "invalid": 2}:
    bad.append("dlq codes %s" % dict(codes))
for d in dlq:
    if d["headers"].get("kascade-error") != "provider":
        if ".tier.local/" not in d["headers"].get("kascade-source", ""):
            bad.append("garbage DLQ source %r" % d["headers"])
        continue
    v = d["value"]
    if not isinstance(v, dict) or v.get("id", "")[0] not in "mf" or \
            "status" in v:
        bad.append("DLQ value is not the original task: %r" % (v,))
    if not d["headers"].get("kascade-source", "").count("tier."):
        bad.append("DLQ source %r" % d["headers"].get("kascade-source"))
print("\n".join(bad[:10]))
sys.exit(1 if bad else 0)
PY
}
it_check "failures are failed Results and provider DLQ entries" check
# 20 tasks x (1 call + 2 retries): bounded, not retried forever.
it_check "the failing provider was called exactly 60 times" \
    test "$(it_sim_requests "$MID_URL")" -eq 60
