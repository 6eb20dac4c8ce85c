#!/usr/bin/env bash
# A worker with more calls in flight than one reservation round trip
# takes (workers/spend.c reserves 256 jobs a round trip): every job of a
# turn gets its budget verdict. With max_inflight 1024 the turn's batch
# held up to 1,024 jobs and the ones past the 256th were given an unset
# verdict, so some went to the DLQ as `redis` (with an empty error) or
# `invalid` ("the tenant cannot name a budget key") instead of being
# called (found by bench/worker.sh at 1024 in flight).
#
# 3,000 tasks are produced onto tier mid before its worker starts, so its
# first turns have far more than 256 jobs ready; the simulator answers in
# 200 ms. Every task must get its Result, the DLQ must stay empty, the
# simulator must have answered exactly one call per task, and Redis must
# have charged exactly the Results' costs (a job given an unset verdict
# that happened to read as "reserved" was called with no reservation and
# never charged).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=3000
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 200 --max-connections 4096
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1"
       -X "tiers.mid.max_inflight=1024"
       -X "tiers.mid.escalate_below=0")
for i in $(seq "$N"); do
    printf 'w-%d\t{"id":"w-%d","type":"answer","input":"question %d"}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.mid" -K $'\t'
it_daemon worker-mid kascade-worker --tier mid
W=$LAST_PID

it_check "all $N tasks answered" it_wait_count results "$N" 90
it_check "nothing dead-lettered ($(it_count dlq))" test "$(it_count dlq)" -eq 0
it_check "one call per task" test "$(it_sim_requests "$SIM")" -eq "$N"
it_check "worker exits 0 on SIGTERM" it_stop "$W"
redis_port=${KASCADE_REDIS_URL##*:}
spent=$(redis-cli -p "$redis_port" HGET \
    "${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:mid" spent)
costs=$(it_read results | python3 -c '
import json, sys
print(sum(round(json.loads(l)["value"]["cost_usd"] * 1e6) for l in sys.stdin))')
it_check "Redis charged the Results' costs (spent ${spent:-none}, costs $costs)" \
    test "${spent:-0}" -eq "$costs"
