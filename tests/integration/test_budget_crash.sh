#!/usr/bin/env bash
# A worker killed with SIGKILL in the middle of a call leaves its budget
# reservation behind, and the provider may bill the call. Its liveness
# lapses (KS_BUDGET_LIVE_MS, 5 s) and the next sweep (the new worker's
# once-a-second read) charges the reservation at its worst case and
# releases it: within seconds, long before its own 20 s expiry
# (timeout_ms plus budget.reservation_margin_ms). The redelivered task is
# answered by the new worker; spent is at least what the simulator was
# asked to bill (two calls, priced like the answered one) and at most that
# plus one worst case.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# A short executor prompt keeps the worst case this test counts on: two
# worst cases (the killed call charged, the new one reserved) fit 0.08.
IT_X+=(-X "tiers.mid.prompt=Answer." -X "tiers.local.prompt=Answer."
       -X "tiers.mid.daily_budget_usd=0.08" -X "tiers.mid.on_budget_exhausted=defer"
       -X "tiers.mid.providers.0.price_in_per_mtok=100"
       -X "tiers.mid.providers.0.price_out_per_mtok=400"
       -X "tiers.mid.providers.0.timeout_ms=8000"
       -X "tiers.mid.providers.0.max_retries=0"
       -X "budget.reservation_margin_ms=12000"
       -X "kafka.session.timeout.ms=6000" -X "kafka.heartbeat.interval.ms=1000")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 3000
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
it_daemon router kascade-router
it_daemon worker-mid-1 kascade-worker --tier mid
FIRST=$LAST_PID

printf 'x-1\t{"id":"x-1","type":"answer","input":"slow","hints":{"max_output_tokens":64}}\n' |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'

redis_port=${KASCADE_REDIS_URL##*:}
key="${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:mid"
reserved() { redis-cli -p "$redis_port" HGET "$key" reserved; }
wait_reserved() { # wait_reserved OP VALUE SECONDS
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(reserved)" "$1" "$2" ] 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
field() { redis-cli -p "$redis_port" HGET "$key" "$1"; }
it_check "the first worker reserved and is calling" wait_reserved -gt 0 30
worst=$(reserved)
kill -KILL "$FIRST"
wait "$FIRST" 2>/dev/null || true
killed_at=$SECONDS
it_log "killed the first worker mid-call; reserved is $worst"
it_check "its reservation is still held right after the crash" \
    test "$(reserved)" -gt 0

METRICS=$(it_free_port)
it_daemon worker-mid-2 kascade-worker --tier mid -X "metrics.port=$METRICS"
it_check "the reservation is charged and released within seconds" \
    wait_reserved -eq 0 12
it_log "released $((SECONDS - killed_at)) s after the kill"
it_check "charged at its worst case ($worst micro-USD)" \
    test "$(field expired_micro)" = "$worst"
it_check "the redelivered task is answered by the new worker" \
    it_wait_count results 1 60
it_check "exactly one result" test "$(it_count results)" -eq 1
it_check "the model was called once per worker" \
    test "$(it_sim_requests "$SIM")" -eq 2
# The answered call's cost from its Result; the killed call asked for the
# same, so the simulator billed two of them.
actual=$(it_read results | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())["value"]
print(round(r["cost_usd"] * 1e6))')
wait_spent() { # the new worker settles after producing: wait for it
    local deadline=$((SECONDS + 10))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(field spent)" = $((worst + actual)) ] && return 0
        sleep 0.2
    done
    return 1
}
it_check "spent is the worst case plus the answered call ($worst + $actual)" \
    wait_spent
it_check "spent >= billed (2 x $actual)" test "$(field spent)" -ge $((2 * actual))
it_check "spent <= billed + one worst case" \
    test "$(field spent)" -le $((2 * actual + worst))
holds=$(it_metric "$METRICS" '^kascade_budget_holds_total[{]tier="mid",reason="reserved"')
it_check "the new worker backed off rather than spin ($holds holds)" \
    test "$holds" -le 20
expired=$(it_metric "$METRICS" '^kascade_budget_expired_charged_usd[{]tier="mid"')
it_check "kascade_budget_expired_charged_usd shows it ($expired)" \
    python3 -c "import sys; sys.exit(abs($expired * 1e6 - $worst) > 1)"

