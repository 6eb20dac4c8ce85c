#!/usr/bin/env bash
# A Redis stall longer than a provider's timeout must not time out the
# calls in flight. test_redis_slow.sh cannot tell a loop that waits on
# Redis from one that does not (its 0.5 s sleeps are under the 2 s
# provider timeout); here the numbers are set so that it can: calls of
# 300 ms, a provider timeout of 1 s, and Redis stopped for 1.5 s at a
# time (`DEBUG SLEEP 1.5`, four times, 1 s apart), under redis.timeout_ms
# (2 s: Redis is slow, not down). A worker whose event loop blocks on a
# Redis round trip (per job before the pipelining, or once per turn in
# workers/batch.c) keeps curl from reading answers that arrived during
# the stall, and curl then times every call in flight out: timeouts, and
# paid retries; the burst of timeouts also opens the provider's circuit
# for 30 s, so the first stall (about 60 timeouts, one window in flight)
# idles the tier and the later stalls find nothing in flight. The worker
# passes because its store runs a pump while it waits on Redis (store.h
# ks_store_set_pump: curl_multi_perform every 5 ms of Redis's silence), so
# the calls in flight are read on time. Before the pump: 52-62 timeouts
# and as many paid retries (both the per-job code of 5ce8983 and the
# pipelined one of c257b71).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=1000
METRICS_PORT=$(it_free_port)
it_own_redis --enable-debug-command local || it_die "redis-server did not start"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
it_check "own redis-server up, DEBUG allowed" test "$(rcli debug sleep 0)" = OK

IT_X+=(-X "redis.url=redis://127.0.0.1:$REDIS_PORT"
       -X "redis.timeout_ms=2000"
       -X "tiers.mid.max_inflight=64"
       -X "tiers.mid.providers.0.timeout_ms=1000")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 300
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
it_daemon worker-mid kascade-worker --tier mid -X "metrics.port=$METRICS_PORT"
WORKER=$LAST_PID
it_wait_assigned worker-mid || true

it_send_tier mid st "$N"
it_wait_calls "$SIM" 64 || true
slept=$(it_stall_redis 4 1.5 1)
it_check "Redis slept 4 times during the run ($(it_sim_requests "$SIM") of $N calls made by then)" \
    test "$slept" -eq 4

wait_answered() {
    local deadline=$((SECONDS + 90))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(it_count results)" -ge "$N" ] && return 0
        sleep 1
    done
    it_log "$(it_count results) of $N answered"
    return 1
}
it_check "every task answered ($N)" wait_answered
sleep 1
timeouts=$(it_metric "$METRICS_PORT" '^kascade_requests_total[{].*status="timeout"')
calls=$(it_sim_requests "$SIM")
it_check "the worker is still running" kill -0 "$WORKER"
it_log "figures: $timeouts provider timeouts, $calls calls for $N tasks"
it_check "no provider timeout ($timeouts)" test "$timeouts" -eq 0
it_check "one call per task, no paid retry ($calls calls for $N tasks)" \
    test "$calls" -eq "$N"
