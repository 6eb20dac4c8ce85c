#!/usr/bin/env bash
# Providers of kind `anthropic` (the Messages API, the simulator's
# POST /v1/messages):
# - mid: a working model: every task ends `ok` with the answer, usage
#   from the reply and its cost at the tier's prices;
# - frontier: rate-limited (429 with Retry-After: 1) on about 40% of calls:
#   retried, every task still ends `ok`, one call per task plus one per 429;
# - local: every reply is a malformed 200: not retried (one call per
#   task); local is not the top tier, so the task is handed on and ends
#   `ok` on mid, its path naming local's provider_failure, with no DLQ
#   entry.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

export IT_ANTHROPIC_KEY=sk-ant-test-not-a-secret
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 2
MID=$SIM_URL
it_sim frontier --fail 429:0.4 --seed 11
FRONT=$SIM_URL
it_sim local --fail malformed:1
LOCAL=$SIM_URL
for t in mid frontier local; do
    IT_X+=(-X "tiers.$t.providers.0.kind=anthropic"
           -X "tiers.$t.providers.0.api_key_env=IT_ANTHROPIC_KEY")
done
IT_X+=(-X "tiers.mid.providers.0.base_url=$MID/v1"
       -X "tiers.frontier.providers.0.base_url=$FRONT/v1"
       -X "tiers.frontier.providers.0.max_retries=20"
       -X "tiers.frontier.providers.0.circuit_failures=1000"
       -X "tiers.local.providers.0.base_url=$LOCAL/v1")
it_daemon router kascade-router
for t in local mid frontier; do
    it_daemon "worker-$t" kascade-worker --tier "$t"
done

for i in $(seq 20); do
    printf 'a-%d\t{"id":"a-%d","type":"answer","instructions":"Be brief.","input":"What is kascade %d?"}\n' "$i" "$i" "$i"
    printf 'r-%d\t{"id":"r-%d","type":"review","messages":[{"role":"system","content":"Review."},{"role":"user","content":"review %d"}]}\n' "$i" "$i" "$i"
done >"$IT_DIR/tasks.txt"
for i in $(seq 5); do
    printf 'm-%d\t{"id":"m-%d","type":"classify_intent","input":"garbled %d"}\n' "$i" "$i" "$i"
done >>"$IT_DIR/tasks.txt"
kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t' \
    -l "$IT_DIR/tasks.txt"

it_check "45 results arrive" it_wait_count results 45 120
sleep 2
it_read results >"$IT_DIR/results.jsonl"
it_read dlq >"$IT_DIR/dlq.jsonl"

check() {
    python3 - "$IT_DIR/results.jsonl" "$IT_DIR/dlq.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
dlq = [json.loads(l) for l in open(sys.argv[2])]
bad = []
ids = collections.Counter(r["id"] for r in res)
if len(ids) != 45 or max(ids.values()) != 1:
    bad.append("not one result per task: %d ids, %s" % (len(ids), ids.most_common(2)))
by = collections.Counter((r["id"][0], r["status"]) for r in res)
if dict(by) != {("a", "ok"): 20, ("r", "ok"): 20, ("m", "ok"): 5}:
    bad.append("statuses %s" % dict(by))
prices = {"mid": (0.15, 0.6), "frontier": (3, 15)}
for r in res:
    if r["status"] != "ok":
        if not (r.get("error") or "").startswith("provider:"):
            bad.append("%s: error %r" % (r["id"], r.get("error")))
        continue
    if r["id"][0] == "m" and not (
            r["tier"] == "mid" and len(r["path"]) == 2 and
            r["path"][0]["tier"] == "local" and
            r["path"][0]["reason"] == "provider_failure"):
        bad.append("%s: not handed on from local: %r" % (r["id"], r["path"]))
    u = r.get("usage") or {}
    i, o = u.get("input_tokens", 0), u.get("output_tokens", 0)
    if not (i > 0 and o > 0 and r.get("output")):
        bad.append("%s: no usage or output: %r" % (r["id"], r))
        continue
    pin, pout = prices[r["tier"]]
    want = (i * pin + o * pout) / 1e6
    if abs(r.get("cost_usd", 0) - want) > 2e-6 or r["cost_usd"] <= 0:
        bad.append("%s: cost %r, want %r" % (r["id"], r.get("cost_usd"), want))
codes = collections.Counter(d["headers"].get("kascade-error") for d in dlq)
if dict(codes) != {}:
    bad.append("dlq codes %s" % dict(codes))
print("\n".join(bad[:10]) or "ok: %s" % dict(by))
sys.exit(1 if bad else 0)
PY
}
it_check "anthropic answers are ok with usage and cost; malformed ones handed on" check

stats() { curl -sf "$1/stats"; }
front_429=$(stats "$FRONT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"]["429"])')
front_calls=$(it_sim_requests "$FRONT")
it_check "429s happened and were retried ($front_calls calls, $front_429 of them 429)" \
    test "$front_429" -gt 0 -a "$front_calls" -eq $((20 + front_429))
it_check "the working model was called once per task (20 + 5 handed on)" \
    test "$(it_sim_requests "$MID")" -eq 25
it_check "malformed replies were not retried (5 calls)" \
    test "$(it_sim_requests "$LOCAL")" -eq 5
