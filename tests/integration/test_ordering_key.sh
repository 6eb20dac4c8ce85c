#!/usr/bin/env bash
# ordering: "key": a worker with many calls in flight still makes at most
# one call at a time per message key, in the order the key's tasks
# arrived, while tasks of other keys run alongside. Checked from the
# worker's debug log of call starts and ends; and every task is answered
# once.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 40 --jitter-ms 60
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.mid.ordering=key" -X "tiers.mid.max_inflight=64")
it_daemon worker-mid kascade-worker --tier mid -X log.level=debug

KEYS=8 PER=15
for j in $(seq "$PER"); do
    for k in $(seq "$KEYS"); do
        printf 'key-%d\t{"id":"o-%d-%02d","type":"answer","input":"key %d task %d"}\n' "$k" "$k" "$j" "$k" "$j"
    done
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.mid" -K $'\t' \
    -X enable.idempotence=true # in order within a partition, even on retries
N=$((KEYS * PER))
it_check "every task answered" it_wait_count results "$N" 90
check_order() {
    python3 - "$IT_DIR/worker-mid.log" "$1" <<'PY'
import re, sys
busy, last, overlap, reorder, most, calls = {}, {}, 0, 0, 0, 0
for line in open(sys.argv[1]):
    m = re.search(r"worker: (o-(\d+)-(\d+)): call (ended|\S+)", line)
    if not m:
        continue
    tid, key, seq, what = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    if what == "ended":
        busy[key] = None
        continue
    calls += 1
    if busy.get(key):
        overlap += 1
    if last.get(key, 0) > seq:
        reorder += 1
    busy[key], last[key] = tid, seq
    most = max(most, sum(1 for v in busy.values() if v))
print("%d calls, %d overlapping a call of the same key, %d out of order, "
      "up to %d keys in flight at once" % (calls, overlap, reorder, most))
want = int(sys.argv[2])
sys.exit(0 if calls == want and overlap == 0 and reorder == 0 and most > 1
         else 1)
PY
}
it_check "one call per key at a time, in arrival order, keys in parallel" \
    check_order "$N"
it_check "one result per task" test "$(it_read results |
    python3 -c 'import json,sys; print(len({json.loads(l)["value"]["id"] for l in sys.stdin}))')" -eq "$N"
