#!/usr/bin/env bash
# router.transactions: the router is SIGKILLed in the middle of a stream of
# tasks and started again under the same instance name. A read_committed
# reader of the tier topic (kcat's default) sees every task exactly once:
# the tier records and the consumed offsets were committed together, and
# the killed router's open transaction was aborted when the new one
# fenced it. Without transactions the restart would route again whatever
# was produced after the last offset commit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
N=3000
# IT_ROUTER_TXN=false is the control run: it should find duplicates.
IT_X+=(-X "router.transactions=${IT_ROUTER_TXN:-true}" -X "router.instance=it-$$")
it_kascade topics create >"$IT_DIR/topics.out"
python3 - "$IT_DIR" "$N" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
for part in range(30):
    with open("%s/part-%02d.txt" % (d, part), "w") as f:
        for i in range(part * n // 30, (part + 1) * n // 30):
            f.write("x-%d\t%s\n" % (i, json.dumps(
                {"id": "x-%d" % i, "type": "classify_intent", "input": "q %d" % i})))
PY
it_daemon router1 kascade-router
R1=$LAST_PID
# The first part shows the router is up; the producer then trickles the
# rest in.
kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t' -l "$IT_DIR/part-00.txt"
it_check "the router is routing" it_wait_count tier.local 1 60
rm "$IT_DIR/part-00.txt"
# The kill comes from the feed itself after a third of the parts, so it
# lands mid-stream however fast or slow the machine is.
(n=0
for f in "$IT_DIR"/part-*.txt; do
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t' -l "$f"
    n=$((n + 1))
    if [ "$n" -eq 10 ]; then
        sleep 0.15 # routed, most likely not yet committed without transactions
        kill -KILL "$R1"
    fi
    sleep 0.3
done) &
FEED=$!
IT_PIDS+=($FEED)
wait "$R1" 2>/dev/null || true
at_kill=$(it_count tier.local)
it_log "killed the router with $at_kill committed tier record(s)"
it_check "the router was killed mid-stream" test "$at_kill" -gt 0 -a "$at_kill" -lt "$N"
it_daemon router2 kascade-router
R2=$LAST_PID
wait "$FEED" || true
it_check "every task reaches the tier topic" it_wait_count tier.local "$N" 120
sleep 3
it_read tier.local >"$IT_DIR/tier.jsonl"
dups() {
    python3 - "$IT_DIR/tier.jsonl" "$N" <<'PY'
import collections, json, sys
keys = collections.Counter(json.loads(l)["key"] for l in open(sys.argv[1]))
dup = {k: c for k, c in keys.items() if c > 1}
print("%d records, %d distinct, %d duplicated" % (sum(keys.values()), len(keys), len(dup)))
sys.exit(0 if len(keys) == int(sys.argv[2]) and not dup else 1)
PY
}
it_check "read_committed sees each task exactly once" dups
it_check "the restarted router exits 0 on SIGTERM" it_stop "$R2"
