#!/usr/bin/env bash
# router.transactions with deferred work: tasks for a spent `defer` tier and
# escalations waiting for it are interleaved with tasks for a tier with
# budget, and the router is SIGKILLed three times mid-stream and started
# again under the same instance name. A read_committed reader (kcat's
# default) then sees every task exactly once on its tier topic, the
# deferred ones too once the budget is raised. Before the deferred topic
# those were held in memory with their offsets open: the commits of their
# partitions stopped at the first one, and each restart (and each
# transaction abort's rewind) routed again, in new committed transactions,
# what earlier transactions had already committed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
redis_port=${KASCADE_REDIS_URL##*:}
N_LOCAL=600 # classify_intent -> local
N_DEF=150   # answer -> mid, spent under defer
N_ESC=60    # escalations from local -> mid, spent under defer
PARTS=20
# (a short session: the group gives a killed router's partitions to the
# next one in seconds)
IT_X+=(-X "router.transactions=true" -X "router.instance=it-$$"
       -X "tiers.mid.on_budget_exhausted=defer"
       -X "kafka.session.timeout.ms=6000" -X "kafka.heartbeat.interval.ms=1000")
it_kascade topics create >"$IT_DIR/topics.out"
it_kascade budget set mid 0 >>"$IT_DIR/budget.out"
python3 - "$IT_DIR" "$N_LOCAL" "$N_DEF" "$N_ESC" "$PARTS" "$IT_PREFIX" <<'PY'
import json, sys
d, nl, nd, ne, parts, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
tasks = ["l-%d\t%s" % (i, json.dumps({"id": "l-%d" % i, "type": "classify_intent",
                                        "input": "q %d" % i})) for i in range(nl)]
deferred = ["d-%d\t%s" % (i, json.dumps({"id": "d-%d" % i, "type": "answer",
                                           "input": "a %d" % i})) for i in range(nd)]
# interleave: one deferred task every nl/nd local ones
stream, k = [], nl // nd
for i, t in enumerate(tasks):
    stream.append(t)
    if i % k == 0 and deferred:
        stream.append(deferred.pop(0))
stream += deferred
for p in range(parts):
    with open("%s/tasks-%02d.txt" % (d, p), "w") as f:
        for line in stream[p * len(stream) // parts:(p + 1) * len(stream) // parts]:
            f.write(line + "\n")
    with open("%s/esc-%02d.txt" % (d, p), "w") as f:
        for i in range(p * ne // parts, (p + 1) * ne // parts):
            f.write("e-%d\t%s\n" % (i, json.dumps({
                "id": "e-%d" % i, "from_tier": "local", "hop": 0,
                "reason": "low_confidence", "confidence": 0.1,
                "context_key": "%sctx:-:e-%d" % (prefix, i),
                "cost_so_far_usd": 0})))
with open("%s/ctx.redis" % d, "w") as f:
    for i in range(ne):
        ctx = {"task": {"id": "e-%d" % i, "type": "classify_intent", "input": "e %d" % i},
               "format": "json", "attempts": [{
                   "tier": "local", "model": "m", "hop": 0, "output": "x",
                   "confidence": 0.1, "confidence_source": "self_report",
                   "decision": "escalate", "reason": "low_confidence",
                   "cost_usd": 0, "latency_ms": 1, "input_tokens": 1,
                   "output_tokens": 1}],
               "cost_so_far_usd": 0}
        f.write("SET %sctx:-:e-%d %s\n" % (prefix, i, json.dumps(json.dumps(ctx))))
PY
redis-cli -p "$redis_port" <"$IT_DIR/ctx.redis" >"$IT_DIR/ctx.out"
it_check "the escalations' contexts are in Redis" \
    test "$(grep -c OK "$IT_DIR/ctx.out")" -eq "$N_ESC"

it_daemon router-0 kascade-router
ROUTER=$LAST_PID
feed() { # feed PART
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t' -l "$IT_DIR/tasks-$1.txt"
    kcat -b "$B" -P -t "${IT_PREFIX}escalations" -K $'\t' -l "$IT_DIR/esc-$1.txt"
}
feed 00
it_check "the router is routing" it_wait_count tier.local 1 60
kills=0
progress=-1
for p in $(seq -w 1 $((PARTS - 1))); do
    feed "$p"
    if [ "$progress" -ge 0 ]; then # the restarted router routes this part
        it_wait_count tier.local $((progress + 1)) 90 ||
            it_log "router-$kills routed nothing new in 90 s"
        progress=-1
    fi
    sleep 0.3
    if [ $((10#$p % 5)) -eq 0 ]; then
        # each router is killed only once it has routed, and committed,
        # part of the stream: deferred records of earlier parts are open
        # behind what it routed since
        before=$(it_count tier.local)
        kill -KILL "$ROUTER"
        wait "$ROUTER" 2>/dev/null || true
        kills=$((kills + 1))
        it_log "killed router $kills with $before committed local record(s)"
        it_daemon "router-$kills" kascade-router
        ROUTER=$LAST_PID
        progress=$before
    fi
done
it_check "the router was killed three times" test "$kills" -eq 3
it_check "every local task reaches its tier topic" it_wait_count tier.local "$N_LOCAL" 120
it_check "the deferred work waits in the deferred topic" \
    it_wait_count deferred $((N_DEF + N_ESC)) 60
it_check "none of it reached mid while spent" test "$(it_count tier.mid)" -eq 0
it_kascade budget set mid 100 >>"$IT_DIR/budget.out"
it_check "with budget, every deferred task and escalation reaches mid" \
    it_wait_count tier.mid $((N_DEF + N_ESC)) 120
sleep 3
once() { # once TOPIC-SUFFIX N
    it_read "$1" >"$IT_DIR/$1.jsonl"
    python3 - "$IT_DIR/$1.jsonl" "$2" <<'PY'
import collections, json, sys
keys = collections.Counter(json.loads(l)["key"] for l in open(sys.argv[1]))
dup = {k: c for k, c in keys.items() if c > 1}
print("%s: %d records, %d distinct, %d duplicated %s" % (
    sys.argv[1].rsplit("/", 1)[-1], sum(keys.values()), len(keys), len(dup),
    sorted(dup)[:5]))
sys.exit(0 if len(keys) == int(sys.argv[2]) and not dup else 1)
PY
}
it_check "read_committed sees each local task exactly once" once tier.local "$N_LOCAL"
it_check "read_committed sees each deferred task and escalation exactly once" \
    once tier.mid $((N_DEF + N_ESC))
it_check "nothing was dead-lettered" test "$(it_count dlq)" -eq 0
it_check "the last router exits 0 on SIGTERM" it_stop "$ROUTER"
