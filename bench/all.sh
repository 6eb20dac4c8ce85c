#!/usr/bin/env bash
# bench/all.sh BUILD_DIR - every benchmark, and bench/RESULTS.md from them.
#
# `make bench` runs this. Each benchmark measures its own baseline in the
# same run; this script repeats them BENCH_REPEAT times (default 3) and
# writes bench/RESULTS.md with the machine, the date, the commit, the
# commands, and each figure with its baseline and ratio as mean and
# min..max over the runs:
#   bench/run.sh       router against a raw librdkafka pipe (BENCH_ROUNDS
#                      = BENCH_REPEAT rounds in one run)
#   bench/worker.sh    one worker against the ideal and a bare curl client,
#                      at 256 and 1024 calls in flight
#   bench/latency.sh   the latency kascade adds, per rate and setting
#   bench/decide.sh    instructions per routing decision (deterministic:
#                      run once)
# Raw outputs are kept in bench/results/ (not committed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/all.sh BUILD_DIR}
REPEAT=${BENCH_REPEAT:-3}
OUT=$ROOT/bench/results
mkdir -p "$OUT"
rm -f "$OUT"/*.out

say() { printf 'bench/all [%4ds]: %s\n' "$SECONDS" "$*" >&2; }

run() { # run NAME CMD...: stdout to $OUT/NAME.out, stderr to NAME.log
    local name=$1
    shift
    say "$name: $*"
    "$@" >"$OUT/$name.out" 2>"$OUT/$name.log" || {
        say "FAILED: $name (see $OUT/$name.log)"
        tail -n 5 "$OUT/$name.log" >&2
        exit 1
    }
}

run router env BENCH_ROUNDS="$REPEAT" "$ROOT/bench/run.sh" "$BUILD"
for ((i = 1; i <= REPEAT; i++)); do
    run "worker.$i" env BENCH_WORKER_INFLIGHT="256 1024" \
        "$ROOT/bench/worker.sh" "$BUILD"
    run "latency.$i" env BENCH_LATENCY_SECONDS="${BENCH_LATENCY_SECONDS:-5}" \
        BENCH_LATENCY_ROUND="$i" \
        "$ROOT/bench/latency.sh" "$BUILD"
done
run decide "$ROOT/bench/decide.sh" "$BUILD"

python3 "$ROOT/bench/results.py" --dir "$OUT" --repeat "$REPEAT" \
    --commit "$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')" \
    >"$ROOT/bench/RESULTS.md"
say "wrote bench/RESULTS.md"
