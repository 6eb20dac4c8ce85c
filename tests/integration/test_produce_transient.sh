#!/usr/bin/env bash
# A transient produce fault is retried, then the records go through:
# nothing is lost and nothing goes to the DLQ. The router's tier topic and
# the worker's results topic refuse writes for a few seconds while tasks
# flow (it_topic_refuse in lib_kafka.sh: INVALID_TIMESTAMP, not persisted,
# which kascade takes for transient), so the router (router/produce.c) and
# the worker (workers/send.c) each produce their records again after a
# backoff (KS_PRODUCE_TRIES tries, 0.5 s doubling). Then every task has
# its Result, the DLQ is empty, duplicates stay within at-least-once (at
# most one per failed delivery, and none expected: the broker persisted
# none of the refused writes), and both groups commit to the end (lag 0).
# Before the retry (a transient failure dead-lettered at once, as with
# KS_PRODUCE_TRIES 0) the tasks went to the DLQ with code `produce`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_kafka.sh"

N=30
it_kascade topics create >"$IT_DIR/topics.out"
TIER="${IT_PREFIX}tier.mid"
RESULTS="${IT_PREFIX}results"
it_sim mid --latency-ms 20
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")

# Both topics refuse writes before the first task arrives.
it_topic_refuse "$TIER" && it_topic_refuse "$RESULTS" ||
    it_die "cannot make the topics unwritable"
it_log "tier and results topics unwritable"

it_daemon router kascade-router
ROUTER=$LAST_PID
it_daemon worker-mid kascade-worker --tier mid
WORKER=$LAST_PID
python3 -c '
import json
for i in range(30):
    print("tr-%d\t%s" % (i, json.dumps({"id": "tr-%d" % i, "type": "answer",
          "input": "transient question %d" % i})))' |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'

it_check "the router's tier produce fails and is tried again" \
    it_wait_log 30 "$IT_DIR/router.log" "produce to $TIER failed .*trying again"
# The tier topic comes back (within the retries: the 6th failure of a
# record, 7.75 s after its first at the shortest, sends it to the DLQ);
# the results topic stays shut until the worker has met the fault too.
it_topic_accept "$TIER" || it_die "cannot restore $TIER"
it_log "tier topic writable again"
it_check "the worker's Result produce fails and is tried again" \
    it_wait_log 30 "$IT_DIR/worker-mid.log" \
    "produce to $RESULTS failed .*trying again"
it_topic_accept "$RESULTS" ||
    it_die "cannot restore $RESULTS"
it_log "results topic writable again"

it_check "every task has a Result" it_wait_count results "$N" 60
sleep 2
it_read results >"$IT_DIR/results.jsonl"
dlq=$(it_count dlq)
it_check "nothing in the DLQ ($dlq)" test "$dlq" -eq 0
distinct=$(python3 -c 'import json, sys
print(len({json.loads(l)["value"]["id"] for l in open(sys.argv[1])}))' \
    "$IT_DIR/results.jsonl")
total=$(wc -l <"$IT_DIR/results.jsonl")
tier_total=$(it_count tier.mid)
failed=$(($(grep -c "failed .*trying again" "$IT_DIR/router.log" || true) +
    $(grep -c "failed .*trying again" "$IT_DIR/worker-mid.log" || true)))
it_log "results: $total for $distinct tasks; tier records $tier_total;" \
    "$failed failed deliveries tried again"
it_check "each task answered: $distinct distinct of $N" test "$distinct" -eq "$N"
dups="$((total - N)) Results and $((tier_total - N)) tier records over $N"
it_check "duplicates within at-least-once ($dups; $failed retries)" \
    test $((total - N + tier_total - N)) -le "$failed"
it_check "the router's and the worker's offsets commit (lag 0)" \
    it_status_wait 's["router"]["tasks_lag"] == 0 and
[t["lag"] for t in s["tiers"] if t["name"] == "mid"] == [0]'
it_check "the router exits 0 on SIGTERM" it_stop "$ROUTER"
it_check "the worker exits 0 on SIGTERM" it_stop "$WORKER"
