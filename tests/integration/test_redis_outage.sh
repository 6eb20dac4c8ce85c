#!/usr/bin/env bash
# Redis trouble: a worker whose Redis is unreachable makes no model call
# (it cannot check the done record, so a call could be paid twice: fail
# closed) and reports it on /healthz; when Redis comes back it resumes by
# itself and answers everything, once. Then Redis is stopped mid-run and
# started again, with the same outcome. Nothing is lost.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REDIS_PORT=$(it_free_port)
METRICS_PORT=$(it_free_port)
redis() { KASCADE_REDIS_PORT=$REDIS_PORT KASCADE_REDIS_DIR="$IT_DIR/redis" \
    "$KS_ROOT/deploy/local/redis.sh" "$1" >/dev/null 2>&1; }
IT_HOOKS+=("redis stop")
IT_X+=(-X "redis.url=redis://127.0.0.1:$REDIS_PORT" -X "redis.timeout_ms=200")

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --latency-ms 2
SIM=$SIM_URL
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM/v1")
it_daemon router kascade-router
it_daemon worker-local kascade-worker --tier local -X "metrics.port=$METRICS_PORT"

send() { # send FIRST LAST
    for i in $(seq "$1" "$2"); do
        printf 'r-%d\t{"id":"r-%d","type":"classify_intent","input":"q %d"}\n' "$i" "$i" "$i"
    done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'
}

send 1 20
sleep 5
it_check "no model call while Redis is down" test "$(it_sim_requests "$SIM")" -eq 0
it_check "no result while Redis is down" test "$(it_count results)" -eq 0
healthz() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/healthz"; }
it_check "/healthz says 503 while Redis is down" test "$(healthz)" = 503
redis start
it_check "Redis back: all 20 answered" it_wait_count results 20 60
it_check "one call per task" test "$(it_sim_requests "$SIM")" -eq 20
it_check "/healthz says 200 again" test "$(healthz)" = 200

redis stop
send 21 40
sleep 4
it_check "Redis stopped mid-run: no further call" \
    test "$(it_sim_requests "$SIM")" -eq 20
redis start
it_check "Redis restarted: the other 20 answered" it_wait_count results 40 60
sleep 2
it_check "exactly one result per task" test "$(it_count results)" -eq 40
it_check "exactly one call per task" test "$(it_sim_requests "$SIM")" -eq 40
