#!/usr/bin/env bash
# A daemon stopped (SIGTERM) while its DLQ cannot be written loses no task:
# the DLQ topic is deleted, an undecodable record reaches the router and
# another the worker (each among good tasks), both daemons are stopped
# while they still retry the DLQ write. They exit within the drain
# deadline without a crash (the worker with status 1: a job abandoned at
# the deadline, to be redelivered), and neither group's offset moves past
# its bad record. With the DLQ back, a second router and worker get the
# bad records again and dead-letter them; the good tasks after them are
# redelivered too and answered from their done records, without a second
# model call. Then both groups commit to the end (lag 0).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_kafka.sh"

GOOD=12
IT_X+=(-X "kafka.topic.metadata.propagation.max.ms=1000"
       -X "topics.partitions=1" -X "drain_timeout_ms=3000")
it_kascade topics create >"$IT_DIR/topics.out"
DLQ="${IT_PREFIX}dlq"
it_topic_delete "$DLQ" || it_die "cannot delete $DLQ"
it_sim mid --latency-ms 20
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
it_daemon router kascade-router
ROUTER=$LAST_PID
it_daemon worker-mid kascade-worker --tier mid
WORKER=$LAST_PID

B=$KASCADE_BOOTSTRAP_SERVERS
it_dlq_tasks r- | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_dlq_tasks w- | kcat -b "$B" -P -t "${IT_PREFIX}tier.mid" -K $'\t'

offset_of() { # offset_of TOPIC-SUFFIX KEY
    it_read "$1" | python3 -c 'import json, sys
print([m["offset"] for m in map(json.loads, sys.stdin) if m["key"] == sys.argv[1]][0])' "$2"
}
committed() { # committed GROUP-SUFFIX TOPIC-SUFFIX: partition 0's offset
    python3 "$KS_ROOT/tests/integration/kafkaadmin.py" committed \
        "$KASCADE_BOOTSTRAP_SERVERS" "$IT_PREFIX$1" |
        awk -v t="$IT_PREFIX$2" '$1 == t && $2 == 0 { print $3 }'
}
stopped() { # stopped PID NAME: SIGTERM, wait; fails on a crash or a hang
    local rc=0 t0=$SECONDS
    kill -TERM "$1"
    wait "$1" || rc=$?
    it_log "$2 exited with status $rc after $((SECONDS - t0)) s"
    [ "$rc" -lt 128 ] && [ $((SECONDS - t0)) -le 30 ]
}

it_check "every good task is answered" it_wait_count results $((2 * GOOD)) 60
it_check "the router retries the DLQ write" \
    it_wait_log 30 "$IT_DIR/router.log" "DLQ $DLQ refuses"
it_check "the worker retries the DLQ write" \
    it_wait_log 30 "$IT_DIR/worker-mid.log" "DLQ $DLQ refuses"
sleep 2
it_check "the router stops without a crash" stopped "$ROUTER" router
it_check "the worker stops without a crash" stopped "$WORKER" worker
R_BAD=$(offset_of tasks r-bad)
W_BAD=$(offset_of tier.mid w-bad)
r_got=$(committed router tasks)
w_got=$(committed worker.mid tier.mid)
it_check "the router's group committed up to its bad record, not past ($r_got, bad at $R_BAD)" \
    test "${r_got:--1}" -eq "$R_BAD"
it_check "the worker's group committed up to its bad record, not past ($w_got, bad at $W_BAD)" \
    test "${w_got:--1}" -eq "$W_BAD"
calls=$(it_sim_requests "$SIM")

it_kascade topics create >>"$IT_DIR/topics.out" || it_die "cannot create $DLQ again"
it_daemon router-2 kascade-router
ROUTER=$LAST_PID
it_daemon worker-mid-2 kascade-worker --tier mid
WORKER=$LAST_PID
it_check "both bad records reach the DLQ after the restart" it_wait_count dlq 2 40
check_dlq() {
    it_read dlq >"$IT_DIR/dlq.jsonl"
    python3 - "$IT_DIR/dlq.jsonl" <<'PY'
import json, sys
got = sorted((m["key"], m["headers"].get("kascade-error"))
             for m in map(json.loads, open(sys.argv[1])))
print("dlq: %r" % got)
sys.exit(0 if got == [("r-bad", "decode"), ("w-bad", "decode")] else 1)
PY
}
it_check "the DLQ holds each bad record once, code decode" check_dlq
it_check "both groups commit to the end (lag 0)" \
    it_status_wait 's["router"]["tasks_lag"] == 0 and
[t["lag"] for t in s["tiers"] if t["name"] == "mid"] == [0]' 30
calls2=$(it_sim_requests "$SIM")
it_check "redelivered tasks answered without a model call ($calls -> $calls2 calls)" \
    test "$calls2" -eq "$calls"
it_check "the second router exits 0 on SIGTERM" it_stop "$ROUTER"
it_check "the second worker exits 0 on SIGTERM" it_stop "$WORKER"
