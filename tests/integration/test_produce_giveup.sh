#!/usr/bin/env bash
# A produce fault that outlasts the retries dead-letters the task with code
# `produce` and lets its offset commit (no offset stays unfinished). The
# tier topic and the results topic refuse every write for the whole test
# (it_topic_refuse, lib_kafka.sh: a fault kascade takes for transient).
# The router's tier records and the worker's Results each fail
# KS_PRODUCE_TRIES + 1 times (5 tries again, 0.5 s doubling, about 8 to
# 16 s), then the task goes to the DLQ with code `produce` and a detail
# naming the topic and the count; both groups commit to the end (lag 0),
# and nothing is answered. A variant that retries without end (or drops
# the record) fails these checks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_kafka.sh"

N=3
TRIES=5 # KS_PRODUCE_TRIES in common/kafka/produce.h
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 20
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")

tasks() { # tasks PREFIX: N tasks keyed by id
    python3 -c '
import json, sys
for i in range(int(sys.argv[2])):
    t = "%s%d" % (sys.argv[1], i)
    print("%s\t%s" % (t, json.dumps({"id": t, "type": "answer",
          "input": "give up on " + t})))' "$1" "$N"
}
B=$KASCADE_BOOTSTRAP_SERVERS
# The worker's tasks go straight onto the tier topic before it is shut.
tasks w- | kcat -b "$B" -P -t "${IT_PREFIX}tier.mid" -K $'\t'
it_topic_refuse "${IT_PREFIX}tier.mid" && it_topic_refuse "${IT_PREFIX}results" ||
    it_die "cannot make the topics unwritable"
it_daemon router kascade-router
ROUTER=$LAST_PID
it_daemon worker-mid kascade-worker --tier mid
WORKER=$LAST_PID
tasks r- | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'

it_check "every task reaches the DLQ" it_wait_count dlq $((2 * N)) 50
check_dlq() {
    it_read dlq >"$IT_DIR/dlq.jsonl"
    python3 - "$IT_DIR/dlq.jsonl" "$IT_PREFIX" "$N" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
prefix, n = sys.argv[2], int(sys.argv[3])
bad = []
for m in msgs:
    h = m["headers"]
    want = prefix + ("tier.mid" if m["key"].startswith("r-") else "results")
    if h.get("kascade-error") != "produce" or want not in \
            h.get("kascade-error-detail", ""):
        bad.append("%s: %r" % (m["key"], h))
keys = sorted(m["key"] for m in msgs)
if keys != sorted(["r-%d" % i for i in range(n)] + ["w-%d" % i for i in range(n)]):
    bad.append("keys %r" % keys)
print("\n".join(bad) or "dlq: %d entries, code produce" % len(msgs))
sys.exit(1 if bad else 0)
PY
}
it_check "one DLQ entry a task, code produce, naming the refusing topic" check_dlq
tried_r=$(grep -c "produce to ${IT_PREFIX}tier.mid failed .*trying again" \
    "$IT_DIR/router.log" || true)
tried_w=$(grep -c "produce to ${IT_PREFIX}results failed .*trying again" \
    "$IT_DIR/worker-mid.log" || true)
it_check "the router tried each record $TRIES times again ($tried_r for $N)" \
    test "$tried_r" -eq $((TRIES * N))
it_check "the worker tried each Result $TRIES times again ($tried_w for $N)" \
    test "$tried_w" -eq $((TRIES * N))
it_check "nothing answered" test "$(it_count results)" -eq 0
it_check "both groups commit to the end (lag 0)" \
    it_status_wait 's["router"]["tasks_lag"] == 0 and
[t["lag"] for t in s["tiers"] if t["name"] == "mid"] == [0]'
it_topic_accept "${IT_PREFIX}tier.mid" && it_topic_accept "${IT_PREFIX}results"
it_check "the router exits 0 on SIGTERM" it_stop "$ROUTER"
it_check "the worker exits 0 on SIGTERM" it_stop "$WORKER"
