#!/usr/bin/env bash
# kascade submit on a batch with bad lines: each line that cannot be a task
# (not JSON, over limits.max_message_bytes, no id with --wait) is reported
# as "line N: ..." and the rest go on; --wait's summary matches the results
# topic and ends as soon as the dead-lettered tasks' DLQ entries are in,
# not at its timeout, also when a worker dead-letters a task (its DLQ entry
# is matched by key); a wrong broker address or a missing tasks topic is
# an error at once; piped output carries no terminal control codes; and
# SIGINT while waiting exits 130 promptly with how far it got and an -o
# file of whole JSON lines.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IT_X+=(-X "limits.max_message_bytes=2048")
it_kascade topics create >"$IT_DIR/topics.out"
for tier in local mid frontier; do
    it_sim "$tier" --latency-ms 2
    IT_X+=(-X "tiers.$tier.providers.0.base_url=$SIM_URL/v1")
done
it_daemon router kascade-router
WORKERS=()
for tier in local mid frontier; do
    it_daemon "worker-$tier" kascade-worker --tier "$tier"
    WORKERS+=($LAST_PID)
done

# 300 tasks, 3 of them dead-lettered by the router (no input), and 3 lines
# that cannot be tasks at lines 5, 50 and 120.
python3 - "$IT_DIR/tasks.jsonl" <<'PY'
import json, sys
out, n = [], 0
while len(out) < 303:
    line = len(out) + 1
    if line == 5:
        out.append('{"id": "broken", "input": ')
    elif line == 50:
        out.append(json.dumps({"id": "big", "type": "answer", "input": "x" * 3000}))
    elif line == 120:
        out.append(json.dumps({"type": "answer", "input": "who am i"}))
    elif n % 100 == 7:
        out.append(json.dumps({"id": "s-%d" % n, "type": "answer"}))
        n += 1
    else:
        out.append(json.dumps({"id": "s-%d" % n, "type": "answer", "input": "q %d" % n}))
        n += 1
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY

rc=0
start=$SECONDS
it_kascade submit "$IT_DIR/tasks.jsonl" --wait --timeout 300 \
    -o "$IT_DIR/out.jsonl" >"$IT_DIR/submit.out" 2>"$IT_DIR/submit.err" || rc=$?
took=$((SECONDS - start))
it_log "submit took ${took}s, exit $rc"
it_check "rejected lines make the exit status 1" test "$rc" -eq 1
it_check "exactly lines 5, 50 and 120 are reported" \
    test "$(grep -o '^line [0-9]*:' "$IT_DIR/submit.err" | tr '\n' ' ')" = "line 5: line 50: line 120: "
it_check "with their reasons" grep -q '^line 50: too big' "$IT_DIR/submit.err"
it_check "the summary lists them" \
    grep -q 'rejected: *3 line(s) (line 5, 50, 120)' "$IT_DIR/submit.out"
it_check "300 sent" grep -q 'sent: *300 task(s)' "$IT_DIR/submit.out"
it_check "297 results in -o" test "$(wc -l <"$IT_DIR/out.jsonl")" -eq 297
it_check "as many as the results topic holds" test "$(it_count results)" -eq 297
it_check "the 3 dead-lettered tasks are counted" \
    grep -q 'dead-lettered: *invalid=3' "$IT_DIR/submit.out"
it_check "nothing missing" bash -c "! grep -q missing: '$IT_DIR/submit.out'"
it_check "it ended well before its timeout" test "$took" -lt 120
it_check "a plain final progress line" grep -q '^kascade: answered 300/300' "$IT_DIR/submit.err"
it_check "no control codes in piped output" \
    bash -c "! grep -q \$'[\\r\\033]' '$IT_DIR/submit.err' '$IT_DIR/submit.out'"
it_check "no .part file left" test ! -e "$IT_DIR/out.jsonl.part"

# A task that a worker dead-letters (here `conflict`: another task under
# the same tenant and id is answered already) has its DLQ entry keyed by
# the task id, its source the tier topic: --wait accounts for it at once
# (it used to look only for entries of the tasks topic, and waited out
# its --timeout).
printf '%s\n' '{"id": "dup-1", "tenant": "acme", "type": "answer", "input": "first"}' \
    >"$IT_DIR/dup1.jsonl"
printf '%s\n' '{"id": "dup-1", "tenant": "acme", "type": "answer", "input": "second, different"}' \
    '{"id": "dup-2", "tenant": "acme", "type": "answer", "input": "fine"}' >"$IT_DIR/dup2.jsonl"
it_kascade submit "$IT_DIR/dup1.jsonl" --wait --timeout 60 >"$IT_DIR/dup1.out" 2>&1 ||
    it_die "the first dup-1 was not answered: $(cat "$IT_DIR/dup1.out")"
rc=0
start=$SECONDS
it_kascade submit "$IT_DIR/dup2.jsonl" --wait --timeout 45 \
    >"$IT_DIR/dup2.out" 2>"$IT_DIR/dup2.err" || rc=$?
took=$((SECONDS - start))
it_check "a worker's DLQ entry ends the wait (exit $rc after ${took}s, timeout 45)" \
    test "$rc" -eq 0 -a "$took" -lt 30
it_check "it is counted with its code" \
    grep -q 'dead-lettered: *conflict=1' "$IT_DIR/dup2.out"
it_check "the other task is answered" grep -q 'per status: *ok=1' "$IT_DIR/dup2.out"
it_check "the DLQ entry came from the tier topic" \
    bash -c 'it_read() { python3 "$1/tests/integration/kafkatool.py" read "$KASCADE_BOOTSTRAP_SERVERS" "$2dlq"; }
             it_read "$1" "$2" | grep "\"kascade-error\": \"conflict\"" | grep -q "\"kascade-source\": \"$2tier.mid/"' \
    _ "$KS_ROOT" "$IT_PREFIX"

# A wrong broker address or a missing tasks topic is said at once, not
# after librdkafka's 5-minute message timeout with "sent 0/1" meanwhile.
no_broker=$(it_free_port)
rc=0
start=$SECONDS
timeout 120 "$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" \
    -X "kafka.bootstrap.servers=127.0.0.1:$no_broker" submit "$IT_DIR/dup1.jsonl" \
    >"$IT_DIR/nobroker.out" 2>"$IT_DIR/nobroker.err" || rc=$?
took=$((SECONDS - start))
it_check "an unreachable broker fails submit within 30 s (exit $rc after ${took}s)" \
    test "$rc" -eq 1 -a "$took" -lt 30
it_check "saying so" grep -q "^kascade: cannot reach Kafka at 127.0.0.1:$no_broker: " "$IT_DIR/nobroker.err"
rc=0
start=$SECONDS
timeout 120 "$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" -X "topics.prefix=${IT_PREFIX}none." \
    submit "$IT_DIR/dup1.jsonl" >"$IT_DIR/notopic.out" 2>"$IT_DIR/notopic.err" || rc=$?
took=$((SECONDS - start))
it_check "a missing tasks topic fails submit within 30 s (exit $rc after ${took}s)" \
    test "$rc" -eq 1 -a "$took" -lt 30
it_check "naming it and the fix" \
    grep -qF "kascade: topic ${IT_PREFIX}none.tasks: Broker: Unknown topic or partition (create the topics with \`kascade topics create\`)" \
    "$IT_DIR/notopic.err"

# Reading topics right after `kascade topics create` (submit --wait's and
# dlq list's reader): a broker that does not know the new topics yet is
# asked again, not taken for "no such topic" (it failed every time here).
fresh_ok=0
for i in 1 2 3; do
    fresh="${IT_PREFIX}fresh$i."
    "$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" -X "topics.prefix=$fresh" \
        topics create >/dev/null 2>&1 &&
        "$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" -X "topics.prefix=$fresh" \
            dlq list >"$IT_DIR/fresh$i.out" 2>&1 && fresh_ok=$((fresh_ok + 1))
done
it_check "a reader right after topics create works ($fresh_ok of 3)" test "$fresh_ok" = 3

# No workers: the tasks are sent but wait for ever, until SIGINT.
for pid in "${WORKERS[@]}"; do
    it_stop "$pid" || true
done
python3 -c 'import json
for i in range(50): print(json.dumps({"id": "w-%d" % i, "type": "answer", "input": "q"}))' \
    >"$IT_DIR/slow.jsonl"
# Not it_kascade: $! must be kascade itself, not a subshell.
"$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" submit "$IT_DIR/slow.jsonl" \
    --wait --timeout 300 -o "$IT_DIR/slow.out.jsonl" >"$IT_DIR/slow.out" 2>"$IT_DIR/slow.err" &
SUBMIT=$!
IT_PIDS+=($SUBMIT)
sleep 4
kill -INT "$SUBMIT"
start=$SECONDS
rc=0
wait "$SUBMIT" || rc=$?
it_check "SIGINT exits 130 (got $rc)" test "$rc" -eq 130
it_check "promptly" test $((SECONDS - start)) -lt 10
it_check "saying how far it got" \
    grep -q '^kascade: stopped at line 50: 50 of 50 task(s) sent, 0 result(s)' "$IT_DIR/slow.err"
it_check "with a valid (empty) -o file" test -f "$IT_DIR/slow.out.jsonl"
it_check "of whole JSON lines" \
    python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$IT_DIR/slow.out.jsonl"
it_check "and no .part file" test ! -e "$IT_DIR/slow.out.jsonl.part"
