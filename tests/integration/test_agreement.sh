#!/usr/bin/env bash
# Agreement (self-consistency) on the real local model: tier local with
# samples 3 calls SmolLM2-135M (llama.cpp, deploy/local/llm.sh) three
# times per task, one call after another; each task gets one Result whose
# output is one of the model's answers, whose confidence_source is
# "agreement" with a confidence of 1/3, 2/3 or 1, and whose usage is the
# sum of the three calls (so at least three prompts' worth of input
# tokens). The worker's kascade_requests_total counts three ok calls per
# task and its budget the spend of all of them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_local_model

METRICS=$(it_free_port)
IT_X+=(-X "tiers.local.providers.0.base_url=$LLM_URL"
       -X "tiers.local.providers.0.model=smollm2-135m"
       -X "tiers.local.providers.0.timeout_ms=120000"
       -X "tiers.local.max_inflight=2"
       -X "tiers.local.samples=3"
       -X "tiers.local.escalate_below=0"
       -X "metrics.port=$METRICS")
it_kascade topics create >"$IT_DIR/topics.out"
it_daemon worker-local kascade-worker --tier local

inputs=("What is 2 + 3? Answer with the number only."
        "Name a colour of the sky. One word."
        "Is fire hot? Answer yes or no.")
for i in "${!inputs[@]}"; do
    printf 'ag-%d\t{"id":"ag-%d","type":"qa","input":"%s","hints":{"max_output_tokens":8}}\n' \
        "$i" "$i" "${inputs[$i]}"
done >"$IT_DIR/tasks.txt"
kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t' \
    -l "$IT_DIR/tasks.txt"

it_check "3 results arrive" it_wait_count results 3 300
sleep 2 # a duplicate would show up now
it_read results >"$IT_DIR/results.jsonl"

check() {
    python3 - "$IT_DIR/results.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
bad = []
ids = collections.Counter(r.get("id") for r in res)
if ids != collections.Counter("ag-%d" % i for i in range(3)):
    bad.append("result ids %s, want ag-0..ag-2 once each" % dict(ids))
for r in res:
    u = r.get("usage") or {}
    c = r.get("confidence")
    why = []
    if r.get("status") != "ok" or r.get("tier") != "local":
        why.append("status/tier %r/%r" % (r.get("status"), r.get("tier")))
    if r.get("confidence_source") != "agreement":
        why.append("confidence_source %r" % r.get("confidence_source"))
    if not any(abs(c - v) < 1e-9 for v in (1 / 3, 2 / 3, 1)):
        why.append("confidence %r is not a share of 3" % c)
    # three calls of a prompt of at least 10 tokens
    if not (u.get("input_tokens", 0) >= 30 and u.get("output_tokens", 0) >= 3):
        why.append("usage %r is not three calls'" % u)
    if not (isinstance(r.get("output"), str) and r["output"].strip()):
        why.append("output %r" % r.get("output"))
    if why:
        bad.append("%s: %s" % (r.get("id"), "; ".join(why)))
    else:
        print("%s: %r (agreement %.3f, %d+%d tokens)" % (
            r["id"], r["output"][:40], c, u["input_tokens"], u["output_tokens"]),
            file=sys.stderr)
print("\n".join(bad[:10]))
sys.exit(1 if bad else 0)
PY
}
it_check "each task: one Result, the majority of 3 answers, source agreement" check
it_check "three ok model calls per task" \
    test "$(it_metric "$METRICS" '^kascade_requests_total[{]tier="local",.*status="ok"')" -eq 9
