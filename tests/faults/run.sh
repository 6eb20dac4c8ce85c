#!/usr/bin/env bash
# tests/faults/run.sh BUILD_DIR - the fault suite (`make test-faults`).
#
# Starts a real Kafka broker (deploy/local/kafka.sh) and a real
# redis-server (deploy/local/redis.sh, then restarted with an append-only
# file and DEBUG allowed from loopback), runs each scenario of
# FAULTS_SCENARIOS on its own topic and key prefix with F_TASKS tasks,
# prints each run's ledger and appends its row to FAULTS_LEDGER, and exits
# non-zero if any scenario failed. See tests/faults/README.md.
#
# Environment:
#   FAULTS_TASKS      tasks per scenario (default 20000)
#   FAULTS_SCENARIOS  space-separated, from: kills broker redis providers
#                     combined (default "kills broker redis providers")
#   FAULTS_LEDGER     the file rows are appended to
#                     (default build/faults-ledger.md)
#   FAULTS_KEEP=1     keep the logs of passing runs too
# and fleet.sh's F_WORKERS, F_INFLIGHT, F_TIMEOUT_MS, F_DEADLINE_S.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: tests/faults/run.sh BUILD_DIR}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export KS_BIN="$BUILD/bin"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
F_TASKS=${FAULTS_TASKS:-20000}
SCENARIOS=${FAULTS_SCENARIOS:-kills broker redis providers}
F_LEDGER_OUT=${FAULTS_LEDGER:-$ROOT/build/faults-ledger.md}

# shellcheck source=fleet.sh
source "$ROOT/tests/faults/fleet.sh"

for b in kascade kascade-router kascade-worker kascade-modelsim; do
    [ -x "$KS_BIN/$b" ] || { echo "faults: $KS_BIN/$b missing (make first)" >&2; exit 2; }
done
for tool in kcat redis-cli redis-server curl python3; do
    command -v "$tool" >/dev/null ||
        { echo "faults: $tool is missing (deploy/local/deps.sh)" >&2; exit 2; }
done

STACK=$(mktemp -d "${TMPDIR:-/tmp}/kascade-faults.XXXXXX")
F_KAFKA_DIR="$STACK/kafka"
F_REDIS_DIR="$STACK/redis"
F_DIR="$STACK/runs"
mkdir -p "$F_DIR"
stop_stack() {
    local s
    for s in "${F_SLOTS[@]}"; do kill -KILL "${F_PID[$s]}" 2>/dev/null; done
    f_sims_stop
    KASCADE_STATE_DIR="$F_KAFKA_DIR" "$ROOT/deploy/local/kafka.sh" stop \
        >/dev/null 2>&1 || true
    KASCADE_REDIS_DIR="$F_REDIS_DIR" "$ROOT/deploy/local/redis.sh" stop \
        >/dev/null 2>&1 || true
    rm -rf "$STACK"
}
trap stop_stack EXIT
trap 'exit 143' TERM INT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KASCADE_BOOTSTRAP_SERVERS=$(KASCADE_KAFKA_PORT=$port \
    KASCADE_STATE_DIR="$F_KAFKA_DIR" "$ROOT/deploy/local/kafka.sh" start) ||
    { echo "faults: the broker did not start" >&2; exit 1; }
KASCADE_REDIS_URL=$(KASCADE_REDIS_DIR="$F_REDIS_DIR" \
    "$ROOT/deploy/local/redis.sh" start) ||
    { echo "faults: redis did not start" >&2; exit 1; }
export KASCADE_BOOTSTRAP_SERVERS KASCADE_REDIS_URL
f_redis_restart || exit 1 # with the suite's settings: AOF, DEBUG
echo "== faults: Kafka $KASCADE_BOOTSTRAP_SERVERS, Redis $KASCADE_REDIS_URL," \
    "$F_TASKS tasks per scenario, scenarios: $SCENARIOS"

mkdir -p "$(dirname "$F_LEDGER_OUT")"
{
    echo
    echo "fault suite $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), $F_TASKS tasks, binaries of $BUILD"
    echo
    python3 "$ROOT/tests/faults/ledger.py" --header
} >>"$F_LEDGER_OUT"

failed=()
for s in $SCENARIOS; do
    case "$s" in
    kills) faults="kill" ;;
    broker) faults="broker" ;;
    redis) faults="redis sleep" ;;
    providers) faults="providers" ;;
    combined) faults="kill broker redis sleep providers" ;;
    *) echo "faults: unknown scenario '$s'" >&2; exit 2 ;;
    esac
    echo "== faults: $s ($faults)"
    # shellcheck disable=SC2086 # faults holds words
    if f_run "$s" $faults; then
        [ "${FAULTS_KEEP:-0}" = 1 ] || rm -rf "${F_DIR:?}/$s"
    else
        failed+=("$s")
        rm -rf "$ROOT/build/faults-$s-logs"
        cp -r "$F_DIR/$s" "$ROOT/build/faults-$s-logs" 2>/dev/null &&
            echo "   logs: build/faults-$s-logs"
    fi
done
echo "== faults: ledger appended to $F_LEDGER_OUT"
if [ ${#failed[@]} -gt 0 ]; then
    echo "faults: failed: ${failed[*]}"
    exit 1
fi
echo "faults: all scenarios passed"
