#!/usr/bin/env bash
# reply_to is an allow-list (topics.reply_to_allow): a task naming one of
# kascade's own topics, or a topic that is not listed, is dead-lettered as
# `invalid` by the router before any model call; one naming a listed
# topic is answered there; one without reply_to on the results topic. A
# task put straight on a tier topic is refused by the worker the same way.
# Before the list, a task with reply_to "<prefix>tasks" made the worker
# publish its Result into the tasks topic.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
REPLY_PREFIX="it-replies-$$."
OK_TOPIC="${REPLY_PREFIX}results"
# Listing kascade's own topics does not allow them.
IT_X+=(-X "topics.reply_to_allow=${REPLY_PREFIX}*,${IT_PREFIX}tasks")
it_kascade topics create >"$IT_DIR/topics.out"
# The allowed topic exists (created as another prefix's results topic).
"$KS_BIN/kascade" -c "$KS_CONFIG" -X "topics.prefix=$REPLY_PREFIX" \
    topics create >"$IT_DIR/reply-topics.out"
it_sim local --latency-ms 2
URL=$SIM_URL
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_daemon router kascade-router
ROUTER=$LAST_PID
it_daemon worker-local kascade-worker --tier local
WORKER=$LAST_PID

task() { # task ID [REPLY_TO]
    python3 - "$@" <<'PY'
import json, sys
t = {"id": sys.argv[1], "type": "classify_intent", "input": "q " + sys.argv[1]}
if len(sys.argv) > 2:
    t["reply_to"] = sys.argv[2]
print("%s\t%s" % (sys.argv[1], json.dumps(t)))
PY
}
{
    task r-own "${IT_PREFIX}tasks"
    task r-tier "${IT_PREFIX}tier.local"
    task r-other "it-other-$$"
    task r-bad $'bad\ttopic'
    task r-ok "$OK_TOPIC"
    task r-plain
} >"$IT_DIR/tasks.txt"
kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t' -l "$IT_DIR/tasks.txt"
# Straight onto the tier topic, past the router: the worker checks too.
task w-own "${IT_PREFIX}tasks" >"$IT_DIR/tier.txt"
kcat -b "$B" -P -t "${IT_PREFIX}tier.local" -K $'\t' -l "$IT_DIR/tier.txt"

wait_topic() { # wait_topic TOPIC N SECONDS
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(python3 "$KS_ROOT/tests/integration/kafkatool.py" read "$B" "$1" |
            wc -l)" -ge "$2" ] && return 0
        sleep 1
    done
    return 1
}
it_check "the listed reply_to topic gets its Result" wait_topic "$OK_TOPIC" 1 60
it_check "the plain task's Result is on the results topic" \
    it_wait_count results 1 60
it_check "five refused tasks are in the DLQ" it_wait_count dlq 5 60
sleep 2
python3 "$KS_ROOT/tests/integration/kafkatool.py" read "$B" "$OK_TOPIC" \
    >"$IT_DIR/ok.jsonl"
it_read dlq >"$IT_DIR/dlq.jsonl"
it_read results >"$IT_DIR/results.jsonl"
it_read tasks >"$IT_DIR/tasks.jsonl"
check() {
    python3 - "$IT_DIR" "$IT_PREFIX" <<'PY'
import json, sys
d, prefix = sys.argv[1], sys.argv[2]
rd = lambda n: [json.loads(l) for l in open("%s/%s.jsonl" % (d, n))]
bad = []
ok, dlq, results, tasks = rd("ok"), rd("dlq"), rd("results"), rd("tasks")
if [r["value"].get("id") for r in ok] != ["r-ok"]:
    bad.append("reply_to topic holds %r" % ok)
if [r["value"].get("id") for r in results] != ["r-plain"]:
    bad.append("results topic holds %r" % results)
if len(tasks) != 6:
    bad.append("the tasks topic holds %d records, not the 6 tasks" % len(tasks))
want = {"r-own": "own topics", "r-tier": "own topics",
        "r-other": "reply_to_allow", "r-bad": "not a Kafka topic name",
        "w-own": "own topics"}
src = {i: "tasks/" for i in want}
src["w-own"] = "tier.local/"
seen = {}
for r in dlq:
    h = r["headers"]
    i = r["value"].get("id") if isinstance(r["value"], dict) else None
    seen[i] = h
    if h.get("kascade-error") != "invalid":
        bad.append("%s: code %r" % (i, h.get("kascade-error")))
    if not h.get("kascade-source", "").startswith(prefix + src.get(i, "?")):
        bad.append("%s: refused by the wrong daemon (%r)" % (i, h.get("kascade-source")))
    if "reply_to" not in h.get("kascade-error-detail", "") or \
            want.get(i, "?") not in h.get("kascade-error-detail", ""):
        bad.append("%s: detail %r" % (i, h.get("kascade-error-detail")))
if sorted(seen) != sorted(want):
    bad.append("DLQ holds %r" % sorted(seen, key=str))
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}
it_check "refused tasks are invalid in the DLQ from the router, nothing else moved" check
it_check "two model calls: the refused tasks cost nothing" \
    test "$(it_sim_requests "$URL")" -eq 2
it_check "the router exits 0 on SIGTERM" it_stop "$ROUTER"
it_check "the worker exits 0 on SIGTERM" it_stop "$WORKER"
