#!/usr/bin/env bash
# A router whose assignment is lost commits nothing for it (the worker's
# side is test_rebalance_lost.sh). Router a routes a first batch and keeps
# its offsets stored but uncommitted (auto-commit every 60 s), then is
# stopped (SIGSTOP) past session.timeout.ms; router b takes the
# partitions over, routes the first batch again (at-least-once: a's work
# was not committed) and a second batch, commits everything and leaves,
# so the group is empty. Then a goes on (SIGCONT), finds its assignment
# lost, and must try no commit of its stale positions: neither its own
# commit on revocation nor librdkafka 2.0's on unassign ("Offset commit
# (unassigned partitions)"). Kafka 4.1 refuses both here (the first
# locally: assignment lost; the second: unknown member), so the
# end-to-end checks (every task routed, nothing routed again after a goes
# on, lag 0) hold either way and the log check is what fails when a lost
# assignment is committed like a revocation (checked by removing the
# lost-assignment branches of common/kafka/client.c and router/router.c:
# 2 attempts logged); a broker that took such a commit would rewind the
# group behind b's work.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_kafka.sh"

IT_X+=(-X "topics.partitions=2"
       -X "kafka.session.timeout.ms=6000" -X "kafka.heartbeat.interval.ms=500")
it_kascade topics create >"$IT_DIR/topics.out"
B=$KASCADE_BOOTSTRAP_SERVERS
N1=20
N2=20

submit() { # submit FIRST COUNT
    python3 -c '
import json, sys
a, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(a, a + n):
    print("rl-%d\t%s" % (i, json.dumps({"id": "rl-%d" % i, "type": "answer",
          "input": "lost router question %d" % i})))' "$1" "$2" |
        kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
}
wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $deadline ]; do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
tier_has() { [ "$(it_count tier.mid)" -ge "$1" ]; }
distinct() {
    it_read tier.mid | python3 -c 'import json, sys
print(len({json.loads(l)["key"] for l in sys.stdin}))'
}

it_daemon router-a kascade-router -X log.level=debug \
    -X "kafka.auto.commit.interval.ms=60000"
A=$LAST_PID
submit 0 "$N1"
it_check "router a routes the first batch" wait_for 60 tier_has "$N1"
kill -STOP "$A"
it_log "router a stopped with its offsets uncommitted"
it_daemon router-b kascade-router
RB=$LAST_PID
it_check "router b takes the partitions over" \
    wait_for 60 grep -q -E "assigned [1-9]" "$IT_DIR/router-b.log"
submit "$N1" "$N2"
# b routes the first batch again (a committed nothing) and the second.
it_check "router b routes both batches" \
    wait_for 60 tier_has $((2 * N1 + N2))
it_check "router b exits 0 on SIGTERM (commits, leaves)" it_stop "$RB"
it_check "the router's lag is 0 with b gone" \
    it_status_wait 's["router"]["tasks_lag"] == 0'
before=$(it_count tier.mid)
kill -CONT "$A"
it_log "router a goes on ($before tier records)"
it_check "router a finds its assignment lost" \
    wait_for 30 grep -q "assignment lost" "$IT_DIR/router-a.log"
it_check "router a rejoins the group" \
    wait_for 30 bash -c "grep 'assignment lost' -A 1000 '$IT_DIR/router-a.log' |
        grep -q -E 'assigned [1-9]'"
sleep 5 # a would route again whatever a stale commit rewound
after=$(it_count tier.mid)
it_check "router a routes nothing again ($before -> $after tier records)" \
    test "$after" -eq "$before"
it_check "the router's lag stays 0" \
    it_status_wait 's["router"]["tasks_lag"] == 0' 5
it_check "every task routed ($(distinct) distinct of $((N1 + N2)))" \
    test "$(distinct)" -eq $((N1 + N2))
it_check "router a exits 0 on SIGTERM" it_stop "$A"
tried=$(grep -c -E "commit on revocation|Offset commit \(unassigned partitions\)" \
    "$IT_DIR/router-a.log" || true)
it_check "router a tried no commit of the lost partitions ($tried)" \
    test "$tried" -eq 0
