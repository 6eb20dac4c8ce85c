#!/usr/bin/env bash
# A slow Redis is not a slow provider: a worker with calls in flight
# (model latency 300 ms, provider timeout 2 s) while Redis stops
# answering for 0.5 s at a time (`DEBUG SLEEP 0.5`, six times in a row,
# spaced 0.5 s apart) makes no provider timeout and no paid retry: the
# simulator answers exactly one call per task and every task is answered
# (a Result, or an Escalation whose context was saved: half of them go
# on, so the escalation contexts are written during the sleeps too).
#
# The Redis round trips of the worker's loop are pipelined once per turn
# (workers/batch.c, docs/design.md section 6): a sleep holds a turn once,
# not once per job; and with a command timeout below the stall
# (redis.timeout_ms 200) the stall counts as Redis down, which holds work
# but repeats no call. Redis's own server is started here because DEBUG is
# refused unless enable-debug-command allows it (Redis 7).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=1500
METRICS_PORT=$(it_free_port)
it_own_redis --enable-debug-command local || it_die "redis-server did not start"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
it_check "own redis-server up, DEBUG allowed" test "$(rcli debug sleep 0)" = OK

IT_X+=(-X "redis.url=redis://127.0.0.1:$REDIS_PORT"
       -X "tiers.mid.max_inflight=64"
       -X "tiers.mid.escalate_below=0.5"
       -X "tiers.mid.providers.0.timeout_ms=2000")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 300 --confidence-dist 0:1
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
it_daemon worker-mid kascade-worker --tier mid -X "metrics.port=$METRICS_PORT"
WORKER=$LAST_PID
it_wait_assigned worker-mid || true

it_send_tier mid s "$N"
# Wait for calls to be in flight, then slow Redis down mid-run.
it_wait_calls "$SIM" 64 || true
slept=$(it_stall_redis 6 0.5 0.5)
it_check "Redis slept 6 times during the run ($(it_sim_requests "$SIM") of $N calls made by then)" \
    test "$slept" -eq 6

answered() { echo $(($(it_count results) + $(it_count escalations))); }
wait_answered() {
    local deadline=$((SECONDS + 90))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(answered)" -ge "$N" ] && return 0
        sleep 1
    done
    it_log "$(answered) of $N answered"
    return 1
}
it_check "every task answered (results + escalations = $N)" wait_answered
sleep 1
timeouts=$(it_metric "$METRICS_PORT" '^kascade_requests_total[{].*status="timeout"')
it_check "no provider timeout (kascade_requests_total timeout: $timeouts)" \
    test "$timeouts" -eq 0
calls=$(it_sim_requests "$SIM")
it_check "one call per task, no paid retry ($calls calls for $N tasks)" \
    test "$calls" -eq "$N"
esc=$(it_count escalations)
it_check "escalation contexts written during the run ($esc escalations)" \
    test "$esc" -gt 0
ctx=$(rcli --scan --pattern "${IT_PREFIX}ctx:*" | wc -l)
it_check "one context per escalation ($ctx keys)" test "$ctx" -eq "$esc"

# The same with a Redis command timeout below the stall
# (redis.timeout_ms 200): each sleep now drops the connection and counts
# as Redis down (fail closed: look-ups, reservations and done records
# wait and are retried), which delays tasks but never repeats a call.
it_stop "$WORKER" || it_check "the first worker drains and exits 0" false
M=600
it_daemon worker-mid2 kascade-worker --tier mid -X "metrics.port=$METRICS_PORT" \
    -X "redis.timeout_ms=200"
it_wait_assigned worker-mid2 || true
base=$(it_sim_requests "$SIM")
for i in $(seq "$M"); do
    printf 't-%d\t{"id":"t-%d","type":"answer","input":"question %d"}\n' \
        "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.mid" -K $'\t'
for _ in $(seq 100); do
    [ "$(it_sim_requests "$SIM")" -gt $((base + 64)) ] && break
    sleep 0.1
done
for _ in 1 2 3 4; do
    rcli debug sleep 0.5 >/dev/null
    sleep 0.5
done
N=$((N + M))
it_check "timeout 200 ms: every task answered ($N in all)" wait_answered
it_check "timeout 200 ms: Redis was taken for down" \
    grep -q "redis 127.0.0.1:$REDIS_PORT:" "$IT_DIR/worker-mid2.log"
sleep 1
timeouts=$(it_metric "$METRICS_PORT" '^kascade_requests_total[{].*status="timeout"')
it_check "timeout 200 ms: no provider timeout ($timeouts)" test "$timeouts" -eq 0
calls=$(($(it_sim_requests "$SIM") - base))
it_check "timeout 200 ms: one call per task ($calls calls for $M tasks)" \
    test "$calls" -eq "$M"
