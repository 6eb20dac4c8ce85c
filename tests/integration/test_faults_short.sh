#!/usr/bin/env bash
# The fault suite, short (make test-faults is the long one; see
# tests/faults/README.md): 2,000 tasks through the router and two workers
# per tier (mid, frontier) on the real broker, with the simulators at
# 300-1000 ms latency, while a random router or worker is killed with
# SIGKILL every 2 s (and started again at once), 2% of the provider calls
# time out after the provider read and billed them, and Redis sleeps
# 0.5 s (DEBUG SLEEP) every 3 s. The ledger must balance: no task lost,
# Redis spent >= what the simulators billed, spent <= billed + the worst
# case of the calls in flight at the kills and of the failed requests, no
# daemon dead without a kill, no sanitizer report.
#
# Its own redis-server: DEBUG SLEEP needs enable-debug-command, which the
# shared one (deploy/local/redis.sh) does not set.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_own_redis --enable-debug-command local || it_die "redis-server did not start"
PORT=$REDIS_PORT
export KASCADE_REDIS_URL="redis://127.0.0.1:$PORT"

F_DIR="$IT_DIR/faults"
mkdir -p "$F_DIR"
F_TASKS=${FAULTS_SHORT_TASKS:-2000}
F_DEADLINE_S=${FAULTS_SHORT_DEADLINE_S:-240}
F_LEDGER_OUT="$IT_DIR/ledger.md"
source "$KS_ROOT/tests/faults/fleet.sh"
# Whatever the run leaves behind on failure is stopped with the test.
IT_HOOKS+=('for s in "${F_SLOTS[@]}"; do kill -KILL "${F_PID[$s]}"; done'
           'f_sims_stop')

rc=0
f_run short kill timeout sleep >"$IT_DIR/ledger.out" 2>"$IT_DIR/run.log" || rc=$?
cat "$IT_DIR/ledger.out" >&2
grep -E 'FAIL' "$IT_DIR/run.log" >&2 || true
ledger="$F_DIR/short/ledger.json"
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$ledger" "$1"; }
it_check "the run produced a ledger" test -s "$ledger"
injected() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["injected"][sys.argv[2]])' "$ledger" "$1"; }
it_check "workers and the router were killed ($(field kills) kills)" \
    test "$(field kills)" -ge 5
it_check "Redis slept ($(injected redis_sleeps_ok) DEBUG SLEEPs)" \
    test "$(injected redis_sleeps_ok)" -ge 3
it_check "providers timed out after reading ($(injected provider_faults))" \
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["injected"]["provider_faults"].get("timeout", 0) < 5)' "$ledger"
it_check "no task lost ($(field lost) lost of $(field tasks))" test "$(field lost)" = 0
it_check "spent >= billed (charged $(field charged_micro), billed $(field billed_micro) micro-dollars)" \
    test "$(field charged_micro)" -ge "$(field billed_micro)"
it_check "spent <= billed + the worst case of the calls in doubt (bound $(field bound_micro))" \
    test "$(field charged_micro)" -le "$(field bound_micro)"
it_check "no daemon died without being killed ($(field deaths))" test "$(field deaths)" = 0
it_check "the ledger's verdict is a pass" test "$rc" = 0
