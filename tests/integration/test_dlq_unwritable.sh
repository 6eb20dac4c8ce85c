#!/usr/bin/env bash
# A DLQ that cannot be written loses no task and stops no daemon. The DLQ
# topic is deleted (the broker creates no topic on its own) while an
# undecodable record reaches the router (tasks topic) and another the
# worker (tier topic), each among good tasks. Both daemons log the
# refusal as an error and keep the record's offset uncommitted (the lag
# of its partition stays above 0 while every good task is answered),
# trying again with a growing backoff; neither exits. (Each group's
# committed offset reaches the bad record and stops there.) Once the DLQ topic
# exists again both entries arrive, with their codes, and the offsets
# commit to the end (lag 0). A variant that takes a DLQ refusal for done
# (the task dropped, its offset committed) fails the lag and DLQ checks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_kafka.sh"

GOOD=12
# librdkafka marks a topic missing only after this (30 s by default).
IT_X+=(-X "kafka.topic.metadata.propagation.max.ms=1000"
       -X "topics.partitions=1")
it_kascade topics create >"$IT_DIR/topics.out"
DLQ="${IT_PREFIX}dlq"
it_topic_delete "$DLQ" || it_die "cannot delete $DLQ"
it_log "DLQ topic deleted"
it_sim mid --latency-ms 20
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
it_daemon router kascade-router
ROUTER=$LAST_PID
it_daemon worker-mid kascade-worker --tier mid
WORKER=$LAST_PID

B=$KASCADE_BOOTSTRAP_SERVERS
it_dlq_tasks r- | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_dlq_tasks w- | kcat -b "$B" -P -t "${IT_PREFIX}tier.mid" -K $'\t'

it_check "every good task is answered" it_wait_count results $((2 * GOOD)) 60
it_check "the router logs the DLQ's refusal" \
    it_wait_log 30 "$IT_DIR/router.log" "DLQ $DLQ refuses"
it_check "the worker logs the DLQ's refusal" \
    it_wait_log 30 "$IT_DIR/worker-mid.log" "DLQ $DLQ refuses"
# `kascade status` needs the DLQ topic: the committed offsets are read
# from the groups directly. Each bad record's partition must commit up to
# it (the good tasks before it are done) and not past it (those after it
# are done too, and auto-commit runs every second).
offset_of() { # offset_of TOPIC-SUFFIX KEY
    it_read "$1" | python3 -c 'import json, sys
print([m["offset"] for m in map(json.loads, sys.stdin) if m["key"] == sys.argv[1]][0])' "$2"
}
committed() { # committed GROUP-SUFFIX TOPIC-SUFFIX: partition 0's offset
    python3 "$KS_ROOT/tests/integration/kafkaadmin.py" committed \
        "$KASCADE_BOOTSTRAP_SERVERS" "$IT_PREFIX$1" |
        awk -v t="$IT_PREFIX$2" '$1 == t && $2 == 0 { print $3 }'
}
R_BAD=$(offset_of tasks r-bad)
W_BAD=$(offset_of tier.mid w-bad)
commits_at() { # commits_at GROUP TOPIC OFFSET: waits for that commit
    local deadline=$((SECONDS + 15)) got
    while [ $SECONDS -lt $deadline ]; do
        got=$(committed "$1" "$2")
        [ "$got" = "$3" ] && { sleep 3; got=$(committed "$1" "$2"); }
        [ "$got" = "$3" ] && return 0
        sleep 0.5
    done
    it_log "$1 on $2: committed ${got:-nothing}, expected $3"
    return 1
}
it_check "the router commits up to its bad record (offset $R_BAD), not past" \
    commits_at router tasks "$R_BAD"
it_check "the worker commits up to its bad record (offset $W_BAD), not past" \
    commits_at worker.mid tier.mid "$W_BAD"
it_check "the router is still running" kill -0 "$ROUTER"
it_check "the worker is still running" kill -0 "$WORKER"
tries=$(($(grep -c "DLQ $DLQ refuses" "$IT_DIR/router.log" || true) +
    $(grep -c "DLQ $DLQ refuses" "$IT_DIR/worker-mid.log" || true)))
it_log "DLQ refusals logged so far: $tries"

it_kascade topics create >>"$IT_DIR/topics.out" || it_die "cannot create $DLQ again"
it_log "DLQ topic back"
it_check "both entries reach the DLQ" it_wait_count dlq 2 45
check_dlq() {
    it_read dlq >"$IT_DIR/dlq.jsonl"
    python3 - "$IT_DIR/dlq.jsonl" <<'PY'
import json, sys
got = sorted((m["key"], m["headers"].get("kascade-error"))
             for m in map(json.loads, open(sys.argv[1])))
ok = set(got) == {("r-bad", "decode"), ("w-bad", "decode")}
print("dlq: %r" % got)
sys.exit(0 if ok else 1)
PY
}
it_check "the DLQ holds the two bad records with code decode" check_dlq
it_check "then every offset commits (lag 0)" \
    it_status_wait 's["router"]["tasks_lag"] == 0 and
[t["lag"] for t in s["tiers"] if t["name"] == "mid"] == [0]' 30
it_check "the router exits 0 on SIGTERM" it_stop "$ROUTER"
it_check "the worker exits 0 on SIGTERM" it_stop "$WORKER"
