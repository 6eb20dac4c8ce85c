#!/usr/bin/env bash
# ordering: "key" with a hot key: the tasks waiting behind their key stay
# out of the backlog, so one key with many tasks does not hold the other
# keys back.
# 1. 150 tasks of one key, then 240 tasks of other keys, at max_inflight
#    16 (backlog 80) against a 200 ms model: the other keys' tasks are all
#    answered while the hot key is still going (its 150 calls take 30 s
#    one at a time), with many calls in flight at the simulator; the hot
#    key's calls run one at a time, in arrival order; one Result a task.
# 2. key_queue_bytes 1024: the hot key's queue passes its bound, its
#    partition is held and taken from again, and every task is answered
#    in order.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 200 --max-connections 1024
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1"
       -X "tiers.mid.ordering=key" -X "tiers.mid.max_inflight=16")
B=$KASCADE_BOOTSTRAP_SERVERS

feed() { # feed PREFIX N [KEY]: N tasks, all keyed KEY, else each its own
    python3 -c 'import json, sys
p, n, key = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None
for i in range(n):
    tid = "%s-%03d" % (p, i)
    print("%s\t%s" % (key or tid, json.dumps({"id": tid, "type": "answer",
          "input": "%s question %d" % (p, i)})))' "$@" |
        kcat -b "$B" -P -t "${IT_PREFIX}tier.mid" -K $'\t' \
            -X enable.idempotence=true # in order, even on retries
}
distinct() { # distinct PREFIX: distinct task ids among the Results
    it_read results | python3 -c 'import json, sys
print(len({r["value"]["id"] for r in map(json.loads, sys.stdin)
           if r["value"]["id"].startswith(sys.argv[1] + "-")}))' "$1"
}
wait_distinct() { # wait_distinct PREFIX N SECONDS
    local deadline=$((SECONDS + $3)) n=0
    while [ $SECONDS -lt $deadline ]; do
        n=$(distinct "$1")
        [ "$n" -ge "$2" ] && return 0
        sleep 0.5
    done
    it_log "$1: $n distinct results, expected $2"
    return 1
}
peak() { # peak SECONDS: the most calls in flight at the simulator
    python3 - "$SIM" "$1" <<'PY'
import json, sys, time, urllib.request
most, end = 0, time.time() + float(sys.argv[2])
while time.time() < end:
    most = max(most, json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))["inflight"])
    time.sleep(0.02)
print(most)
PY
}
check_order() { # check_order LOG PREFIX N: the key's calls one at a time, in order
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys
busy, last, overlap, reorder, calls = False, -1, 0, 0, 0
for line in open(sys.argv[1]):
    m = re.search(r"worker: %s-(\d+): call (ended|\S+)" % re.escape(sys.argv[2]), line)
    if not m:
        continue
    seq, what = int(m.group(1)), m.group(2)
    if what == "ended":
        busy = False
        continue
    calls += 1
    overlap += busy
    reorder += seq < last
    busy, last = True, seq
print("%s: %d calls, %d overlapping, %d out of order"
      % (sys.argv[2], calls, overlap, reorder))
sys.exit(0 if calls == int(sys.argv[3]) and overlap == 0 and reorder == 0 else 1)
PY
}

# 1. A hot key ahead of many others.
HOT=150 OTHERS=240
it_daemon worker-1 kascade-worker --tier mid -X log.level=debug
W1=$LAST_PID
feed hot "$HOT" hot-key
sleep 4 # the worker has taken the hot key's tasks
feed other "$OTHERS"
t0=$SECONDS
peak 3 >"$IT_DIR/peak" &
PEAK=$!
it_check "the other keys' $OTHERS tasks are answered within 12 s" \
    wait_distinct other "$OTHERS" 12
it_log "other keys answered in $((SECONDS - t0)) s"
hot_then=$(distinct hot)
it_log "the hot key had $hot_then of $HOT answered by then"
it_check "... while the hot key was still going ($hot_then of $HOT)" \
    test "$hot_then" -lt "$HOT"
wait "$PEAK"
it_log "up to $(cat "$IT_DIR/peak") calls in flight while they ran"
it_check "other keys ran side by side (up to $(cat "$IT_DIR/peak") calls in flight)" \
    test "$(cat "$IT_DIR/peak")" -ge 12
it_check "the hot key's tasks all answered" wait_distinct hot "$HOT" 120
it_check "the hot key's calls one at a time, in arrival order" \
    check_order "$IT_DIR/worker-1.log" hot "$HOT"
it_check "one Result per task" test "$(it_count results)" -eq $((HOT + OTHERS))
it_check "the worker drains and exits 0" it_stop "$W1"

# 2. A key queue bounded at 1 KiB: back-pressure on its partition.
it_daemon worker-2 kascade-worker --tier mid -X log.level=debug \
    -X tiers.mid.key_queue_bytes=1024
W2=$LAST_PID
feed tight 60 tight-key
it_check "a key queue over its bound: all 60 answered" wait_distinct tight 60 60
it_check "the partition was held at the bound and taken from again" \
    grep -q "key queue is back under key_queue_bytes .* taken from again" \
    "$IT_DIR/worker-2.log"
it_check "passing the bound held the partition" \
    grep -q "key queue passed key_queue_bytes .* partition held" \
    "$IT_DIR/worker-2.log"
it_check "the bounded key's calls one at a time, in arrival order" \
    check_order "$IT_DIR/worker-2.log" tight 60
it_check "the worker drains and exits 0" it_stop "$W2"
