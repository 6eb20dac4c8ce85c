#!/usr/bin/env bash
# The local tier on a real model: deploy/local/llm.sh starts llama.cpp
# (llama-cpp-python's OpenAI-compatible server) with the SmolLM2-135M GGUF,
# the router and one local worker run against it, and five tasks sent with
# kcat each get exactly one ok Result carrying the model's real usage, a
# non-empty answer and a confidence measured from its token logprobs.
#
# The first run on a machine builds the model server's venv (llama.cpp from
# source, minutes): tests/run.sh does that before the integration tests
# (`llm.sh prepare`); run alone, this test builds it itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

LLM="$KS_ROOT/deploy/local/llm.sh"
it_local_model
it_check "llm.sh status sees the server" "$LLM" status

# Nothing escalates here (escalate_below 0): every answer is the local
# tier's own. The server answers one request at a time, hence the long
# timeout and the small in-flight limit.
IT_X+=(-X "tiers.local.providers.0.base_url=$LLM_URL"
       -X "tiers.local.providers.0.model=smollm2-135m"
       -X "tiers.local.providers.0.timeout_ms=120000"
       -X "tiers.local.max_inflight=2"
       -X "tiers.local.escalate_below=0")
it_kascade topics create >"$IT_DIR/topics.out"
it_daemon router kascade-router
it_daemon worker-local kascade-worker --tier local

inputs=("I was charged twice for my order"
        "Where is my parcel? It is a week late."
        "Please cancel my subscription"
        "How do I reset my password?"
        "Your app is great, thanks!")
for i in "${!inputs[@]}"; do
    printf 'lm-%d\t{"id":"lm-%d","type":"classify_intent","input":"%s","hints":{"max_output_tokens":12}}\n' \
        "$i" "$i" "${inputs[$i]}"
done >"$IT_DIR/tasks.txt"
kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t' \
    -l "$IT_DIR/tasks.txt"

it_check "5 results arrive" it_wait_count results 5 300
sleep 2 # a duplicate would show up now
it_read results >"$IT_DIR/results.jsonl"

check() {
    python3 - "$IT_DIR/results.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
bad = []
ids = collections.Counter(r.get("id") for r in res)
if ids != collections.Counter("lm-%d" % i for i in range(5)):
    bad.append("result ids %s, want lm-0..lm-4 once each" % dict(ids))
for r in res:
    u = r.get("usage") or {}
    c = r.get("confidence")
    why = []
    if r.get("status") != "ok":
        why.append("status %r (error %r)" % (r.get("status"), r.get("error")))
    if r.get("tier") != "local" or r.get("model") != "smollm2-135m":
        why.append("tier/model %r/%r" % (r.get("tier"), r.get("model")))
    if not (u.get("input_tokens", 0) > 0 and u.get("output_tokens", 0) > 0):
        why.append("usage %r" % u)
    if not (isinstance(r.get("output"), str) and r["output"].strip()):
        why.append("output %r" % r.get("output"))
    if r.get("confidence_source") != "logprob":
        why.append("confidence_source %r" % r.get("confidence_source"))
    if not (isinstance(c, (int, float)) and 0 < c <= 1):
        why.append("confidence %r" % c)
    if why:
        bad.append("%s: %s" % (r.get("id"), "; ".join(why)))
    else:
        print("%s: %r (confidence %.3f, %d+%d tokens)" % (
            r["id"], r["output"][:60], c, u["input_tokens"], u["output_tokens"]),
            file=sys.stderr)
print("\n".join(bad[:10]))
sys.exit(1 if bad else 0)
PY
}
it_check "each task: one ok Result, real usage, output, logprob confidence" check
