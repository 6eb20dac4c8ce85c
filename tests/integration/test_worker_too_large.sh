#!/usr/bin/env bash
# A Result larger than the broker takes (the results topic's
# max.message.bytes) is not retried for ever: the worker publishes a small
# `failed` Result with error `too_large` in its place, puts the task in
# the DLQ with code `too_large`, and the tier partition's offset commits
# (the group's lag reads 0, and a restarted worker does not answer it
# again). Before, the delivery was produced again and again, nothing was
# answered, and the partition's commits stopped behind it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
LIMIT=1500
# The results topic takes at most LIMIT bytes a record (a topic setting, so
# the DLQ and the tier topics keep the broker's default). Made with
# Kafka's own TopicCommand from the jars deploy/local/kafka.sh fetched.
LIBS=$(ls -d "${KASCADE_CACHE:-$HOME/.cache/kascade}"/kafka-*/libs 2>/dev/null |
    head -n 1)
[ -n "$LIBS" ] || it_die "no Kafka jars under ${KASCADE_CACHE:-$HOME/.cache/kascade} (deploy/local/kafka.sh fetch)"
java -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$B" \
    --create --topic "${IT_PREFIX}results" --partitions 4 \
    --replication-factor 1 --config "max.message.bytes=$LIMIT" \
    >"$IT_DIR/topic.out" 2>&1 || it_die "cannot create the results topic: $(cat "$IT_DIR/topic.out")"
it_kascade topics create >"$IT_DIR/topics.out"
# The simulator replays a recorded answer of ~2,000 bytes for the big
# task's prompt: its Result is over LIMIT, the task itself is small.
python3 - "$IT_DIR/replay.csv" <<'PY'
import csv, sys
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["prompt", "sim"])
    w.writerow(["tell me everything please", "long answer " * 170])
PY
it_sim local --latency-ms 2 --replay "$IT_DIR/replay.csv" --replay-model sim
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_daemon worker-local kascade-worker --tier local
WORKER=$LAST_PID

python3 - "$IT_DIR/tasks.txt" <<'PY'
import json, sys
big = {"id": "big-1", "type": "extract", "input": "tell me everything please",
       "hints": {"max_output_tokens": 1000}}
small = {"id": "small-1", "type": "extract", "input": "a short one"}
with open(sys.argv[1], "w") as f:
    for t in (big, small):
        f.write("%s\t%s\n" % (t["id"], json.dumps(t)))
PY
kcat -b "$B" -P -t "${IT_PREFIX}tier.local" -K $'\t' -l "$IT_DIR/tasks.txt"

it_check "both tasks have a Result" it_wait_count results 2 60
it_check "the big task is in the DLQ" it_wait_count dlq 1 30
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
if res.get("small-1", {}).get("status") != "ok":
    bad.append("small-1: %r" % res.get("small-1"))
if len(dlq) != 1 or dlq[0]["value"].get("id") != "big-1" or \
        dlq[0]["headers"].get("kascade-error") != "too_large":
    bad.append("dlq: %r" % dlq)
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}
it_check "a failed too_large Result and a too_large DLQ entry" check
lag_zero() {
    it_kascade status --json >"$IT_DIR/status.json" 2>>"$IT_DIR/status.log" &&
        python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if [t["lag"] for t in s["tiers"] if t["name"] == "local"] == [0] else 1)
' "$IT_DIR/status.json"
}
wait_lag_zero() {
    local deadline=$((SECONDS + 30))
    until lag_zero; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}
it_check "the tier partition's offsets commit (lag 0)" wait_lag_zero
it_check "the worker exits 0 on SIGTERM" it_stop "$WORKER"
# A new worker starts from the committed offsets: nothing comes back.
it_daemon worker-local-2 kascade-worker --tier local
WORKER=$LAST_PID
sleep 8
it_check "after a restart nothing is answered or dead-lettered again" \
    test "$(it_count results)/$(it_count dlq)" = "2/1"
it_check "the second worker exits 0 on SIGTERM" it_stop "$WORKER"
