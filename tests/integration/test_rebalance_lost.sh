#!/usr/bin/env bash
# A lost assignment commits nothing: worker a is stopped (SIGSTOP) with
# calls in flight for longer than session.timeout.ms, worker b takes its
# partitions over, then a goes on (SIGCONT) and finds its assignment
# lost. a finishes its calls (their done records let b answer
# redeliveries without a call) but tries no commit for the lost
# partitions: neither its own commit on revocation nor librdkafka's on
# unassign ("Offset commit (unassigned partitions)"); the broker would
# refuse them, and with a group gone empty it would take them. Every task
# is answered.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IT_X+=(-X "topics.partitions=2"
       -X "kafka.session.timeout.ms=6000" -X "kafka.heartbeat.interval.ms=500"
       -X "tiers.mid.max_inflight=8")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 1500
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
B=$KASCADE_BOOTSTRAP_SERVERS
N=40

python3 -c 'import json
for i in range(40):
    print("lost-%d\t%s" % (i, json.dumps({"id": "lost-%d" % i, "type": "answer",
          "input": "lost question %d" % i})))' |
    kcat -b "$B" -P -t "${IT_PREFIX}tier.mid" -K $'\t'

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $deadline ]; do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
calls_at_least() { [ "$(it_sim_requests "$SIM")" -ge "$1" ]; }
distinct() {
    it_read results | python3 -c 'import json, sys
print(len({json.loads(l)["value"]["id"] for l in sys.stdin}))'
}
all_answered() { [ "$(distinct)" -ge "$N" ]; }

it_daemon worker-a kascade-worker --tier mid -X log.level=debug
A=$LAST_PID
it_check "worker a has calls in flight" wait_for 60 calls_at_least 8
kill -STOP "$A"
it_log "worker a stopped with calls in flight"
it_daemon worker-b kascade-worker --tier mid
it_check "worker b takes the partitions over" \
    wait_for 60 grep -q "assigned 2 partition" "$IT_DIR/worker-b.log"
kill -CONT "$A"
it_log "worker a goes on"
it_check "worker a finds its assignment lost" \
    wait_for 30 grep -q "assignment lost" "$IT_DIR/worker-a.log"
it_check "every task answered" wait_for 120 all_answered
it_check "worker a drains and exits 0" it_stop "$A"
tried=$(grep -c -E "commit on revocation|Offset commit \(unassigned partitions\)" \
    "$IT_DIR/worker-a.log" || true)
it_log "worker a tried $tried commit(s) of the lost partitions"
it_check "worker a tried no commit of the lost partitions" test "$tried" -eq 0
