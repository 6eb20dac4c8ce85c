#!/usr/bin/env bash
# The router's own Result too large for the broker (the results topic's
# max.message.bytes): an escalation from the top tier ends with the best
# answer so far, here of ~3,000 bytes. The router replaces the Result by a
# small `failed` one with error `too_large`, dead-letters the record
# (key and headers, no value) with code `too_large`, and the escalation's
# offset commits. Before, the delivery was produced again for ever and
# the escalations partition's commits stopped behind it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
redis_port=${KASCADE_REDIS_URL##*:}
LIMIT=1500
LIBS=$(ls -d "${KASCADE_CACHE:-$HOME/.cache/kascade}"/kafka-*/libs 2>/dev/null |
    head -n 1)
[ -n "$LIBS" ] || it_die "no Kafka jars under ${KASCADE_CACHE:-$HOME/.cache/kascade} (deploy/local/kafka.sh fetch)"
java -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" \
    --create --topic "${IT_PREFIX}results" --partitions 4 \
    --replication-factor 1 --config "max.message.bytes=$LIMIT" \
    >"$IT_DIR/topic.out" 2>&1 || it_die "cannot create the results topic: $(cat "$IT_DIR/topic.out")"
it_kascade topics create >"$IT_DIR/topics.out"
python3 - "$IT_DIR" "$IT_PREFIX" <<'PY'
import json, sys
d, prefix = sys.argv[1], sys.argv[2]
def ctx(i, out):
    return {"task": {"id": i, "type": "review", "input": "q"}, "format": "json",
            "attempts": [{"tier": "frontier", "model": "m", "hop": 2,
                          "output": out, "confidence": 0.1,
                          "confidence_source": "self_report",
                          "decision": "escalate", "reason": "low_confidence",
                          "cost_usd": 0, "latency_ms": 1, "input_tokens": 1,
                          "output_tokens": 1}], "cost_so_far_usd": 0}
with open(d + "/ctx.redis", "w") as f, open(d + "/esc.txt", "w") as e:
    for i, out in (("big-1", "long answer " * 250), ("small-1", "short")):
        f.write("SET %sctx:-:%s %s\n" % (prefix, i, json.dumps(json.dumps(ctx(i, out)))))
        e.write("%s\t%s\n" % (i, json.dumps({
            "id": i, "from_tier": "frontier", "hop": 2,
            "reason": "low_confidence", "confidence": 0.1,
            "context_key": "%sctx:-:%s" % (prefix, i), "cost_so_far_usd": 0})))
PY
redis-cli -p "$redis_port" <"$IT_DIR/ctx.redis" >/dev/null
it_daemon router kascade-router
ROUTER=$LAST_PID
kcat -b "$B" -P -t "${IT_PREFIX}escalations" -K $'\t' -l "$IT_DIR/esc.txt"
it_check "both escalations end in a Result" it_wait_count results 2 60
it_check "the big one is in the DLQ" it_wait_count dlq 1 30
check() {
    it_read results >"$IT_DIR/results.jsonl"
    it_read dlq >"$IT_DIR/dlq.jsonl"
    python3 - "$IT_DIR" <<'PY'
import json, sys
d = sys.argv[1]
rd = lambda n: [json.loads(l) for l in open("%s/%s.jsonl" % (d, n))]
res = {r["value"]["id"]: r["value"] for r in rd("results")}
dlq = rd("dlq")
bad = []
big = res.get("big-1", {})
if big.get("status") != "failed" or not str(big.get("error")).startswith("too_large"):
    bad.append("big-1: %r" % big)
if res.get("small-1", {}).get("status") != "low_confidence":
    bad.append("small-1: %r" % res.get("small-1"))
if len(dlq) != 1 or dlq[0]["key"] != "big-1" or \
        dlq[0]["headers"].get("kascade-error") != "too_large":
    bad.append("dlq: %r" % dlq)
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}
it_check "a failed too_large Result and a too_large DLQ entry" check
esc_lag_zero() {
    local deadline=$((SECONDS + 30))
    until it_kascade status --json >"$IT_DIR/status.json" 2>>"$IT_DIR/status.log" &&
        python3 -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["router"]["escalations_lag"] == 0 else 1)
' "$IT_DIR/status.json"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}
it_check "the escalations' offsets commit (lag 0)" esc_lag_zero
it_check "the router exits 0 on SIGTERM" it_stop "$ROUTER"
