#!/usr/bin/env bash
# Eight worker processes share one tier whose daily budget is $1.00, on
# the real broker and Redis, with simulated calls of varying cost and real
# usage numbers. A poller reads `spent` all along: it never passes the
# limit. At the end `spent` equals the sum of cost_usd over the Results to
# the micro-dollar, and every task has one answer (a redelivery repeats it
# exactly): ok while the budget lasted, budget_exceeded after (the tier's
# policy is reject).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=400
# A short executor prompt keeps the worst case this test counts on.
IT_X+=(-X "tiers.mid.prompt=Answer." -X "tiers.local.prompt=Answer."
       -X "tiers.mid.daily_budget_usd=1" -X "tiers.mid.on_budget_exhausted=reject"
       -X "tiers.mid.providers.0.price_in_per_mtok=100"
       -X "tiers.mid.providers.0.price_out_per_mtok=400"
       -X "tiers.mid.max_inflight=16")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 20 --jitter-ms 60
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
it_daemon router kascade-router
for i in $(seq 8); do
    it_daemon "worker-mid-$i" kascade-worker --tier mid
done

redis_port=${KASCADE_REDIS_URL##*:}
day=$(date -u +%Y%m%d)
key="${IT_PREFIX}{budget}:$day:tier:mid"
# Polls spent and spent+reserved every 20 ms; records the highest seen.
python3 - "$redis_port" "$key" "$IT_DIR/poll.txt" <<'PY' &
import os, socket, sys, time
port, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sock = socket.create_connection(("127.0.0.1", port))
rd = sock.makefile("rb")
def hget(field):
    parts = [b"HGET", key.encode(), field.encode()]
    sock.sendall(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
    head = rd.readline()
    if head.startswith(b"$-1"):
        return 0
    value = rd.read(int(head[1:]) + 2)
    return int(value[:-2])
hi = n = 0
end = time.time() + 300
while time.time() < end:
    hi = max(hi, hget("spent"))
    n += 1
    # Whole or not at all: the test kills this loop at any instant and
    # then reads the file (an empty one, caught mid-write, stopped the
    # script once).
    with open(out + ".tmp", "w") as f:
        f.write("%d %d\n" % (hi, n))
    os.replace(out + ".tmp", out)
    time.sleep(0.02)
PY
POLLER=$!
IT_PIDS+=($POLLER)

python3 - "$IT_DIR/tasks.txt" "$N" <<'PY'
import json, random, sys
random.seed(3)
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        text = "word " * random.randint(5, 400)
        f.write("c-%d\t%s\n" % (i, json.dumps({"id": "c-%d" % i, "type": "answer",
            "input": text, "hints": {"max_output_tokens": 64}})))
PY
kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t' \
    -l "$IT_DIR/tasks.txt"

it_check "every task has a result" it_wait_count results "$N" 180
sleep 2
kill "$POLLER" 2>/dev/null || true
it_read results >"$IT_DIR/results.jsonl"
spent=$(redis-cli -p "$redis_port" HGET "$key" spent)
reserved=$(redis-cli -p "$redis_port" HGET "$key" reserved)
read -r highest polls <"$IT_DIR/poll.txt"
it_log "spent $spent, reserved $reserved, highest seen $highest over $polls polls"
it_check "spent never passed the limit while polled" test "$highest" -le 1000000
it_check "the budget was used up (it was a real race)" test "$spent" -gt 900000
it_check "no reservation left open" test "$reserved" -eq 0
check() {
    python3 - "$IT_DIR/results.jsonl" "$spent" "$N" <<'PY'
import collections, decimal, json, sys
# At least once: a task redelivered by a rebalance is answered again from
# its done record, so a duplicate must be the very same Result.
by_id, same = {}, True
for r in map(lambda l: json.loads(l)["value"], open(sys.argv[1])):
    same &= by_id.setdefault(r["id"], r) == r
res = list(by_id.values())
st = collections.Counter(r["status"] for r in res)
total = sum(decimal.Decimal(str(r["cost_usd"])) for r in res)
micro = int(total * 1000000)
print("statuses %s, sum of cost_usd %s micro, spent %s, duplicates identical: %s"
      % (dict(st), micro, sys.argv[2], same))
ok = (len(res) == int(sys.argv[3]) and same and
      set(st) <= {"ok", "budget_exceeded"} and st["budget_exceeded"] > 0 and
      micro == int(sys.argv[2]))
sys.exit(0 if ok else 1)
PY
}
it_check "spent equals the sum of cost_usd; one answer per task" check
