#!/usr/bin/env bash
# One tier's pool under load and under trouble, on the real broker, Redis
# and the simulator:
# 1. 5,000 tasks through one worker at max_inflight 256: every task has
#    exactly one Result and the model was called once per task; then
#    3,000 at max_inflight 1024, with hundreds of calls in flight at once.
# 2. A worker killed with SIGKILL mid-run, then started again: nothing is
#    lost; the model is called again only for the calls that were in
#    flight at the kill (at most max_inflight more than the tasks), and the
#    budget is charged once per task, plus the killed worker's open
#    reservations at their worst case (those calls may have been billed;
#    at most max_inflight of them: expired_micro), plus, at most, once
#    more for each call that had to be redone.
# 3. A second worker joining mid-run (a rebalance): nothing lost, and no
#    call is made twice (revoked partitions finish their calls first and
#    the new owner answers the rest from the done records), and the
#    budget charged exactly the summed cost of the Results.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IT_X+=(-X "tiers.mid.providers.0.price_in_per_mtok=1"
       -X "tiers.mid.providers.0.price_out_per_mtok=2"
       -X "kafka.session.timeout.ms=6000" -X "kafka.heartbeat.interval.ms=1000")
it_kascade topics create >"$IT_DIR/topics.out"
redis_port=${KASCADE_REDIS_URL##*:}
B=$KASCADE_BOOTSTRAP_SERVERS

feed() { # feed PREFIX N: N tasks straight to the mid tier topic
    python3 -c 'import json, sys
p, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print("%s-%d\t%s" % (p, i, json.dumps({"id": "%s-%d" % (p, i), "type": "answer",
          "tenant": "t%d" % (i % 7), "input": "%s question %d" % (p, i)})))' "$1" "$2" |
        kcat -b "$B" -P -t "${IT_PREFIX}tier.mid" -K $'\t'
}
distinct() { # distinct PREFIX: distinct task ids among the Results
    it_read results | python3 -c 'import json, sys
print(len({r["value"]["id"] for r in map(json.loads, sys.stdin)
           if r["value"]["id"].startswith(sys.argv[1] + "-")}))' "$1"
}
wait_distinct() { # wait_distinct PREFIX N SECONDS
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(distinct "$1")" -ge "$2" ] && return 0
        sleep 1
    done
    it_log "$1: $(distinct "$1") distinct results, expected $2"
    return 1
}
calls() { it_sim_requests "$SIM"; }
spent_now() { # spent_now [FIELD]
    redis-cli -p "$redis_port" HGET \
        "${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:mid" "${1:-spent}" |
        sed 's/^$/0/'
}

# 1. Many in flight.
it_sim mid --latency-ms 50 --jitter-ms 50 --max-connections 4096
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
it_daemon worker-256 kascade-worker --tier mid -X tiers.mid.max_inflight=256
W256=$LAST_PID
feed big 5000
it_check "5,000 tasks at max_inflight 256: all answered" \
    wait_distinct big 5000 300
it_check "exactly one Result per task" test "$(it_count results)" -eq 5000
it_check "one call per task" test "$(calls)" -eq 5000
it_check "the worker drains and exits 0" it_stop "$W256"

# 1b. max_inflight 1024 against a slower model: still one call and one
# Result per task, and the calls really run side by side (the simulator's
# in-flight gauge, sampled while the pool drains).
it_sim wide --latency-ms 300 --max-connections 4096
WIDE=$SIM_URL
it_daemon worker-1024 kascade-worker --tier mid -X tiers.mid.max_inflight=1024 \
    -X "tiers.mid.providers.0.base_url=$WIDE/v1"
W1024=$LAST_PID
feed wide 3000
peak() {
    python3 - "$WIDE" <<'PY'
import json, sys, time, urllib.request
most, end = 0, time.time() + 60
while time.time() < end:
    s = json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))
    most = max(most, s["inflight"])
    if s["ok"] >= 3000:
        break
    time.sleep(0.02)
print(most)
PY
}
most=$(peak)
it_log "up to $most calls in flight at max_inflight 1024"
it_check "max_inflight 1024: hundreds of calls in flight at once ($most)" \
    test "$most" -ge 256 -a "$most" -le 1024
it_check "3,000 tasks at max_inflight 1024: all answered" \
    wait_distinct wide 3000 120
it_check "one call per task" test "$(it_sim_requests "$WIDE")" -eq 3000
it_check "the 1024 worker drains and exits 0" it_stop "$W1024"

# 2. SIGKILL mid-run and restart.
curl -sf -X POST "$SIM/stats/reset" >/dev/null
sleep 1
spent0=$(spent_now)
expired0=$(spent_now expired_micro)
feed kill 4000
it_daemon worker-a kascade-worker --tier mid -X tiers.mid.max_inflight=32
A=$LAST_PID
# (progress read from the simulator's counters: reading the results
# topic takes longer than the run)
for _ in $(seq 300); do [ "$(calls)" -ge 300 ] && break; sleep 0.1; done
kill -KILL "$A"
wait "$A" 2>/dev/null || true
it_log "killed a worker after $(calls) calls for 4000 tasks"
it_daemon worker-b kascade-worker --tier mid -X tiers.mid.max_inflight=32
it_check "after the restart every task is answered" wait_distinct kill 4000 180
made=$(calls)
it_log "$made calls for 4000 tasks"
it_check "extra calls only for those in flight at the kill ($made)" \
    test "$made" -ge 4000 -a "$made" -le $((4000 + 32))
spent_vs_cost() { # spent_vs_cost PREFIX SPENT_BEFORE EXTRA_CALLS [CHARGED]
    sleep 2
    it_read results | python3 -c '
import decimal, json, sys
prefix, before, now, extra = sys.argv[1] + "-", int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
charged = int(sys.argv[5])  # worst cases charged for the killed worker
seen = {}
for r in map(json.loads, sys.stdin):
    v = r["value"]
    if not v["id"].startswith(prefix):
        continue
    if v["id"] in seen and seen[v["id"]] != v["cost_usd"]:
        print("two different Results for", v["id"]); sys.exit(1)
    seen[v["id"]] = v["cost_usd"]
micro = {i: int(decimal.Decimal(str(c)) * 1000000) for i, c in seen.items()}
total, worst = sum(micro.values()), max(micro.values())
delta = now - before
print("spent %d, summed cost of %d distinct Results %d, %d extra call(s), "
      "%d charged at worst case" % (delta, len(seen), total, extra, charged))
# Each task is charged once; the open reservations of the dead worker at
# their worst case; a call redone after its settle went out is charged again
# (it was paid again), no more.
sys.exit(0 if total + charged <= delta <= total + charged + extra * worst
         else 1)' \
        "$1" "$2" "$(spent_now)" "$3" "${4:-0}"
}
sleep 7 # the dead worker's liveness lapses: its reservations are charged
charged=$(($(spent_now expired_micro) - expired0))
it_log "the dead worker's reservations were charged $charged micro-USD"
it_check "the dead worker's open reservations were charged" \
    test "$charged" -gt 0
it_check "the budget is charged once per task, the dead worker's calls at worst case, and again only for a redone call" \
    spent_vs_cost kill "$spent0" $((made - 4000)) "$charged"

# 3. A rebalance: a second worker joins mid-run.
curl -sf -X POST "$SIM/stats/reset" >/dev/null
spent1=$(spent_now)
feed reb 4000
for _ in $(seq 300); do [ "$(calls)" -ge 300 ] && break; sleep 0.1; done
it_daemon worker-c kascade-worker --tier mid -X tiers.mid.max_inflight=64
it_log "second worker joined after $(calls) calls for 4000 tasks"
it_check "after the rebalance every task is answered" wait_distinct reb 4000 180
it_check "and no call was made twice" test "$(calls)" -eq 4000
it_check "the budget is charged exactly once per task" \
    spent_vs_cost reb "$spent1" 0
