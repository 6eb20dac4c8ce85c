# lib_kafka.sh - broker-side faults for the integration tests (sourced
# after lib.sh, not run), switched in well under a second through
# librdkafka's Admin API (kafkaadmin.py; Kafka's Java tools take 5 to 15 s
# to start on a loaded machine, longer than the faults they switch).
#
# it_topic_refuse TOPIC         makes the topic refuse every write (below)
# it_topic_accept TOPIC         makes it writable again
# it_topic_delete TOPIC         deletes a topic (`kascade topics create`
#                               makes it again)
# it_status_wait PY-EXPR [SECS] waits for `kascade status --json` to match
#
# The fault it_topic_refuse switches: a topic whose
# message.timestamp.before.max.ms is 0 refuses every record (their
# CreateTime is already past) with INVALID_TIMESTAMP, which librdkafka
# does not retry (not persisted; the idempotent producer bumps its epoch
# and goes on) and kascade sorts as transient (ks_kafka_produce_fault:
# neither too large, nor a missing or forbidden topic, nor fatal). The
# topic's dynamic configs are replaced, not merged (AlterConfigs), so
# tests keep none of their own on such a topic. (min.insync.replicas
# above the replica count does not work here: Kafka 4 caps the effective
# minimum ISR at the replication factor, and the one broker keeps one.)

it_kafkaadmin() {
    python3 "$KS_ROOT/tests/integration/kafkaadmin.py" "$1" \
        "$KASCADE_BOOTSTRAP_SERVERS" "${@:2}" 2>>"$IT_DIR/kafkaadmin.log" ||
        { it_log "kafkaadmin.py $* failed: $(tail -n 1 "$IT_DIR/kafkaadmin.log")"
          return 1; }
}

it_topic_refuse() { it_kafkaadmin config "$1" message.timestamp.before.max.ms=0; }

it_topic_accept() { it_kafkaadmin config "$1"; }

it_topic_delete() { it_kafkaadmin delete "$1"; }

# it_status_wait PY-EXPR [SECONDS]: waits (30 s unless told) for `kascade
# status --json` to satisfy the Python expression over s (the status).
it_status_wait() {
    local deadline=$((SECONDS + ${2:-30}))
    until it_kascade status --json >"$IT_DIR/status.json" \
        2>>"$IT_DIR/status.log" &&
        python3 -c "import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if ($1) else 1)" "$IT_DIR/status.json"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}

it_wait_log() { # it_wait_log SECONDS FILE REGEX: until FILE has a line matching REGEX
    local deadline=$((SECONDS + $1))
    until grep -q -E "$3" "$2"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

it_dlq_tasks() { # it_dlq_tasks PREFIX: $GOOD tasks keyed by id, a bad record in the middle
    python3 -c '
import json, sys
p, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    if i == n // 2:
        print("%sbad\tthis is not a task {" % p)
    print("%s%d\t%s" % (p, i, json.dumps({"id": "%s%d" % (p, i),
          "type": "answer", "input": "question %s%d" % (p, i)})))' "$1" "$GOOD"
}
