#!/usr/bin/env bash
# bench/worker.sh BUILD_DIR - one tier worker's throughput against its
# ideal rate and against a bare HTTP client.
#
# A worker with max_inflight M calling a model that answers in L ms can
# at best finish M / L tasks per ms: that ideal is one baseline. The
# other is measured in the same run, after each worker measurement:
# bench-curlbase (bench/curlbase.c), a minimal curl-multi client making
# the same number of calls with M in flight against the same simulator,
# no Kafka and no Redis: the rate this machine can make those calls at. One
# kascade-worker (--tier mid) is measured against it at L = 50 ms (one
# kascade-modelsim --latency-ms 50) for each M in BENCH_WORKER_INFLIGHT
# (default "1 16 256 1024"), on a real single-node Apache Kafka
# (deploy/local/kafka.sh) and a redis-server (deploy/local/redis.sh), both
# started here on free ports in a temp dir and always stopped on exit.
#
# Each M gets its own topic and Redis prefixes (so its own group and done
# records). The worker starts first; once it logs its assignment its RSS
# is read as the baseline, then N_M tasks are preloaded straight into
# <prefix>tier.mid (bypassing the router) and timed from the start of the
# preload until <prefix>results holds N_M records (`bench-pipe
# --wait-sum`); "steady" is the rate from 10% to 100%. N_M is sized to
# last about BENCH_WORKER_SECONDS (default 6) at the ideal rate, capped at
# BENCH_WORKER_MAX_N (default 20000). CPU time (during the measurement)
# and peak RSS (VmHWM) are read before the worker is sent SIGTERM.
#
# Figures go to stdout, progress to stderr. Exits non-zero with a message
# when anything fails (e.g. the results do not arrive within
# BENCH_TIMEOUT seconds, default 120, or a model call failed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/worker.sh BUILD_DIR}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN=$BUILD/bin
TASKS=${BENCH_TASKS:-$ROOT/bench/tasks.jsonl}
TIMEOUT=${BENCH_TIMEOUT:-120}
INFLIGHT=${BENCH_WORKER_INFLIGHT:-1 16 256 1024}
TARGET_S=${BENCH_WORKER_SECONDS:-6}
MAX_N=${BENCH_WORKER_MAX_N:-20000}
LATENCY_MS=50
for v in $INFLIGHT "$TARGET_S" "$MAX_N"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || {
        echo "BENCH_WORKER_INFLIGHT, _SECONDS and _MAX_N must be positive numbers" >&2
        exit 2
    }
done
CONFIG=$ROOT/deploy/examples/kascade.json
RUN=$(date +%s)-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-bench.XXXXXX")
PIDS=() # processes this script started and has not stopped yet
BOOT=
SIM=

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

start_stack() {
    local b i
    start_kafka_redis bench-pipe bench-curlbase kascade-worker \
        kascade-modelsim kascade
    say "starting the model simulator (${LATENCY_MS} ms)"
    "$BIN/kascade-modelsim" --port 0 --latency-ms "$LATENCY_MS" \
        --max-connections 4096 --log-level warn >"$TMP/sim.out" \
        2>"$TMP/sim.log" &
    b=$!
    track "$b"
    for ((i = 0; i < 100; i++)); do
        SIM=$(sed -n 's/^listening on //p' "$TMP/sim.out" 2>/dev/null) || true
        [ -z "$SIM" ] || break
        alive "$b" || die "the model simulator exited: $(tail -n 3 "$TMP/sim.log")"
        sleep 0.1
    done
    [ -n "$SIM" ] || die "the model simulator did not start within 10 s"
}

preload() { # preload TOPIC COUNT
    "$BIN/bench-pipe" -b "$BOOT" --produce "$1" -n "$2" --file "$TASKS" \
        2>"$TMP/preload.log" || die "preloading $1 failed: $(cat "$TMP/preload.log")"
}

# sim_stat KEY: a counter of the simulator's GET /stats.
sim_stat() {
    curl -fsS "$SIM/stats" | sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p"
}

# redis_stats FILE: Redis's INFO commandstats into FILE, one line per
# command: name calls usec (a script's inner commands count as their own).
redis_stats() {
    redis-cli -u "$KASCADE_REDIS_URL" INFO commandstats | tr -d '\r' |
        awk -F'[:=,]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); print $1, $3, $5 }' \
            >"$1" || die "cannot read Redis's INFO commandstats"
}

# redis_delta BEFORE AFTER N: "calls_per_task usec_per_task" over every
# command; the per-command breakdown goes to stderr.
redis_delta() {
    awk -v n="$3" 'NR == FNR { c[$1] = $2; u[$1] = $3; next }
        { dc = $2 - c[$1]; du = $3 - u[$1]; tc += dc; tu += du
          if (dc > 0) printf "  redis %-14s %8.2f calls/task %8.1f us/task\n", $1, dc / n, du / n > "/dev/stderr" }
        END { printf "%.1f %.1f\n", tc / n, tu / n }' "$1" "$2"
}

# wait_assigned PID LOG: until the worker logs its assignment (30 s).
wait_assigned() {
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q 'assigned [1-9]' "$2" && return 0
        alive "$1" || die "kascade-worker exited: $(tail -n 3 "$2")"
        sleep 0.1
    done
    die "kascade-worker was not assigned partitions within 30 s"
}

# measure M: one worker with max_inflight M drains N_M preloaded tasks.
measure() {
    local m=$1 prefix=wb.$RUN.$1. n ideal t0 b0 b1 u0 u1 pid status=0 ok0 ok1 bare rd
    local log=$TMP/worker.$1.log w=$TMP/worker.$1.wait
    n=$((m * 1000 * TARGET_S / LATENCY_MS))
    ((n <= MAX_N)) || n=$MAX_N
    ((n >= 40)) || n=40
    ideal=$((m * 1000 / LATENCY_MS))
    "$BIN/kascade" -c "$CONFIG" -X "topics.prefix=$prefix" \
        -X "redis.prefix=wb.$RUN.$m:" topics create >/dev/null ||
        die "kascade topics create failed"
    "$BIN/kascade-worker" -c "$CONFIG" -X "topics.prefix=$prefix" \
        -X "redis.prefix=wb.$RUN.$m:" -X "tiers.mid.max_inflight=$m" \
        -X "tiers.mid.providers.0.base_url=$SIM/v1" -X metrics.port=0 \
        --tier mid 2>"$log" &
    pid=$!
    track "$pid"
    wait_assigned "$pid" "$log"
    sleep 1 # let start-up allocations settle before the baseline
    u0=$(proc_usage "$pid") || die "cannot read /proc/$pid"
    ok0=$(sim_stat ok) || die "cannot read the simulator's /stats"
    say "max_inflight $m: $n tasks (ideal $ideal tasks/s)"
    b0=$(broker_cpu)
    redis_stats "$TMP/redis.$m.0"
    t0=$(now_ms)
    preload "${prefix}tier.mid" "$n"
    wait_sum "worker.$m" "$n" "${prefix}results" "$t0" "$pid"
    b1=$(broker_cpu)
    redis_stats "$TMP/redis.$m.1"
    u1=$(proc_usage "$pid") || die "cannot read /proc/$pid"
    ok1=$(sim_stat ok) || die "cannot read the simulator's /stats"
    stop_pid "$pid" || status=$?
    untrack "$pid"
    [ "$status" = 0 ] || die "kascade-worker exited with $status on SIGTERM" \
        "(log: $(tail -n 3 "$log"))"
    ((ok1 - ok0 == n)) || die "max_inflight $m: the simulator answered" \
        "$((ok1 - ok0)) calls for $n tasks (errors or retries: $(curl -fsS "$SIM/stats"))"
    bare=$("$BIN/bench-curlbase" -u "$SIM/v1" -m "$m" -n "$n" -t "$TASKS" |
        sed -n 's/.* rate=\([0-9]*\).*/\1/p') || die "bench-curlbase failed"
    [ -n "$bare" ] || die "bench-curlbase printed no rate"
    rd=$(redis_delta "$TMP/redis.$m.0" "$TMP/redis.$m.1" "$n")
    # M N elapsed rate steady ideal cpu_s rest_kb peak_kb broker_cpu_s bare
    # redis_calls_per_task redis_us_per_task
    read -r -a u0 <<<"$u0"
    read -r -a u1 <<<"$u1"
    echo "$m $n $(field elapsed "$w") $(field rate "$w") $(field steady "$w")" \
        "$ideal $(calc "${u1[0]} - ${u0[0]}") ${u0[2]} ${u1[1]}" \
        "$(calc "$b1 - $b0") $bare $rd" >>"$TMP/rows"
    tail -n 1 "$TMP/rows" | awk '{
        printf "max_inflight %d: %d tasks in %.2f s = %d tasks/s (steady %d);", $1, $2, $3, $4, $5
        printf " ideal %d; ratio %.2f (steady %.2f); cpu %.2f s = %.0f us/task;", $6, $4 / $6, $5 / $6, $7, $7 * 1e6 / $2
        printf " rss %d kB at rest, peak %d kB = %.1f KiB per call in flight;", $8, $9, ($9 - $8) / $1
        printf " broker cpu %.2f s;", $10
        printf " bare client %d calls/s, worker/bare %.2f;", $11, $4 / $11
        printf " redis %.1f commands/task, %.1f us/task\n", $12, $13 }'
}

# table: the rows as a Markdown table.
table() {
    echo
    echo "| max_inflight | tasks | tasks/s (steady) | ideal | ratio (steady) | bare client calls/s | worker / bare | CPU µs/task | RSS rest / peak kB | KiB per call in flight | broker CPU s | Redis commands / µs per task |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk '{ printf "| %d | %d | %d (%d) | %d | %.2f (%.2f) | %d | %.2f | %.0f | %d / %d | %.1f | %.2f | %.1f / %.1f |\n",
               $1, $2, $4, $5, $6, $4 / $6, $5 / $6, $11, $4 / $11,
               $7 * 1e6 / $2, $8, $9, ($9 - $8) / $1, $10, $12, $13 }' "$TMP/rows"
}

main() {
    local m
    start_stack
    echo "bench: worker, model latency ${LATENCY_MS} ms, max_inflight $INFLIGHT," \
        "tasks from $(basename "$TASKS"), $(nproc) cores," \
        "$(date -u +%Y-%m-%dT%H:%MZ), Kafka at $BOOT"
    for m in $INFLIGHT; do
        measure "$m"
    done
    table
    say "done"
}

main
