#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - the `make bench` job.
#
# kascade-router against its baseline, bench-pipe (a raw librdkafka
# consume-and-produce copy with the router's delivery discipline), in the
# same run on the same broker: a real single-node Apache Kafka
# (deploy/local/kafka.sh) and a redis-server (deploy/local/redis.sh), both
# started here on free ports in a temp dir and always stopped on exit.
#
# Each measurement preloads BENCH_N tasks (default 200000, cycling through
# BENCH_TASKS, default bench/tasks.jsonl) and times, from the process's
# start (group join included) until the sum of the high watermarks of its
# output topics reaches BENCH_N, with `bench-pipe --wait-sum`; "steady" is
# the rate from 10% to 100%. Peak RSS (VmHWM) and CPU time are read before
# the process stops. BENCH_ROUNDS rounds (default 2, alternating which
# runs first) show the variance; by default only one when the first round
# takes 40 s or more.
#
# Figures go to stdout, progress to stderr. Exits non-zero with a message
# when anything fails (e.g. the router does not route all tasks within
# BENCH_TIMEOUT seconds, default 120).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/run.sh BUILD_DIR}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN=$BUILD/bin
N=${BENCH_N:-200000}
TASKS=${BENCH_TASKS:-$ROOT/bench/tasks.jsonl}
TIMEOUT=${BENCH_TIMEOUT:-120}
ROUNDS=${BENCH_ROUNDS:-2}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS must be a positive number" >&2; exit 2; }
CONFIG=$ROOT/deploy/examples/kascade.json
RUN=$(date +%s)-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-bench.XXXXXX")
PIDS=() # processes this script started and has not stopped yet
BOOT=

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

start_stack() { start_kafka_redis bench-pipe kascade-router kascade; }

pipe_topic() { # pipe_topic NAME: 6 partitions, as topics.partitions
    KASCADE_STATE_DIR="$TMP/kafka" "$ROOT/deploy/local/kafka.sh" topic \
        "$1" 6 || die "cannot create topic $1"
}

# router_topics PREFIX: creates the router's topics; prints the ones it
# writes to (the tier topics and the DLQ), comma-separated.
router_topics() {
    "$BIN/kascade" -c "$CONFIG" -X "topics.prefix=$1" topics create \
        >"$TMP/topics.out" || die "kascade topics create failed"
    awk -v p="$1" '$2 ~ ("^" p "(tier\\.|dlq$)") { printf "%s%s", sep, $2; sep = "," }' \
        "$TMP/topics.out"
}

preload() { # preload TOPIC COUNT
    "$BIN/bench-pipe" -b "$BOOT" --produce "$1" -n "$2" --file "$TASKS" ||
        die "preloading $1 failed"
}

# measure_pipe ROUND: the baseline copies the preloaded input once more,
# in a new group, to a new topic.
measure_pipe() {
    local out=bench.$RUN.pipe.out.$1 t0 b0 b1 pid status=0
    pipe_topic "$out"
    say "round $1: bench-pipe copying $N messages"
    b0=$(broker_cpu)
    t0=$(now_ms)
    "$BIN/bench-pipe" -b "$BOOT" -i "bench.$RUN.pipe.in" -o "$out" \
        -g "bench.$RUN.pipe.$1" -n "$N" --timeout "$TIMEOUT" \
        >"$TMP/pipe.$1.out" &
    pid=$!
    track "$pid"
    wait_sum "pipe.$1" "$N" "$out" "$t0" "$pid"
    b1=$(broker_cpu)
    wait "$pid" || status=$?
    untrack "$pid"
    [ "$status" = 0 ] || die "bench-pipe exited with $status"
    # The pipe reports its own CPU time and peak RSS as it exits:
    # "... cpu C s, peak rss K kB".
    echo "$(sed -n 's/.*cpu \([0-9.]*\) s, peak rss \([0-9]*\) kB.*/\1 \2/p' \
        "$TMP/pipe.$1.out") $(calc "$b1 - $b0")" >"$TMP/pipe.$1.usage"
    echo "round $1: $(cat "$TMP/pipe.$1.out"); broker cpu" \
        "$(cut -d' ' -f3 "$TMP/pipe.$1.usage") s"
}

# measure_router ROUND: the router routes a freshly preloaded tasks topic
# under its own prefix (so its own group), then drains on SIGTERM.
measure_router() {
    local prefix=bench.$RUN.r$1. topics t0 b0 b1 usage pid status=0
    topics=$(router_topics "$prefix")
    preload "${prefix}tasks" "$N"
    say "round $1: kascade-router routing $N tasks"
    b0=$(broker_cpu)
    t0=$(now_ms)
    "$BIN/kascade-router" -c "$CONFIG" -X "topics.prefix=$prefix" \
        -X metrics.port=0 ${BENCH_ROUTER_X:-} 2>"$TMP/router.$1.log" &
    pid=$!
    track "$pid"
    wait_sum "router.$1" "$N" "$topics" "$t0" "$pid"
    b1=$(broker_cpu)
    usage=$(proc_usage "$pid") || die "cannot read /proc/$pid"
    usage=${usage% *} # CPU and peak RSS, without the current RSS
    echo "$usage $(calc "$b1 - $b0")" >"$TMP/router.$1.usage"
    stop_pid "$pid" || status=$?
    untrack "$pid"
    [ "$status" = 0 ] || die "kascade-router exited with $status on SIGTERM" \
        "(log: $(tail -n 3 "$TMP/router.$1.log"))"
    echo "round $1: router: $(field sum "$TMP/router.$1.wait") tasks in" \
        "$(field elapsed "$TMP/router.$1.wait") s, cpu ${usage% *} s, peak" \
        "rss ${usage#* } kB; broker cpu $(calc "$b1 - $b0") s;" \
        "$(sed -n 's/^topics: //p' "$TMP/router.$1.wait" | sed "s/$prefix//g")"
}

# report ROUND: the comparison line; both rates come from the same
# watermark sampling.
report() {
    local r=$TMP/router.$1.wait p=$TMP/pipe.$1.wait ru pu
    read -r -a ru <"$TMP/router.$1.usage"
    read -r -a pu <"$TMP/pipe.$1.usage"
    echo "round $1: router: $N tasks, $(field rate "$r") tasks/s" \
        "(steady $(field steady "$r")); pipe: $(field rate "$p") msgs/s" \
        "(steady $(field steady "$p")); ratio router/pipe =" \
        "$(calc "$(field rate "$r") / $(field rate "$p")")" \
        "(steady $(calc "$(field steady "$r") / $(field steady "$p")"))"
    echo "round $1: peak RSS router/pipe = $(calc "${ru[1]} / ${pu[1]}")" \
        "(${ru[1]} kB / ${pu[1]} kB); CPU per message router/pipe =" \
        "$(calc "${ru[0]} / ${pu[0]}") (${ru[0]} s / ${pu[0]} s); broker" \
        "CPU router run/pipe run = $(calc "${ru[2]} / ${pu[2]}")"
    echo "$(calc "$(field rate "$r") / $(field rate "$p")")" \
        "$(calc "$(field steady "$r") / $(field steady "$p")")" \
        "$(calc "${ru[1]} / ${pu[1]}") $(calc "${ru[0]} / ${pu[0]}")" \
        >>"$TMP/ratios"
    if grep -q 'dlq=[1-9]' "$r"; then
        echo "round $1: note: some tasks went to the DLQ: $(sed -n 's/^topics: //p' "$r")"
    fi
}

# summary: mean, min and max of each ratio over the rounds.
summary() {
    awk '
        { for (i = 1; i <= 4; i++) {
              s[i] += $i
              if (NR == 1 || $i < lo[i]) lo[i] = $i
              if (NR == 1 || $i > hi[i]) hi[i] = $i } }
        END {
            split("throughput,steady throughput,peak RSS,CPU per message", k, ",")
            printf "all %d rounds, router/pipe (mean, min..max):", NR
            for (i = 1; i <= 4; i++)
                printf "%s %s %.2f (%.2f..%.2f)", (i > 1 ? ";" : ""), k[i],
                    s[i] / NR, lo[i], hi[i]
            printf "\n" }' "$TMP/ratios"
}

main() {
    local t r
    start_stack
    echo "bench: N=$N tasks from $(basename "$TASKS"), $(nproc) cores," \
        "$(date -u +%Y-%m-%dT%H:%MZ), Kafka at $BOOT"
    pipe_topic "bench.$RUN.pipe.in"
    preload "bench.$RUN.pipe.in" "$N"
    # Warm-up: the first group on a fresh broker creates __consumer_offsets
    # and the JVM is cold; neither may count against whichever runs first.
    pipe_topic "bench.$RUN.warm.in"
    pipe_topic "bench.$RUN.warm.out"
    preload "bench.$RUN.warm.in" 20000
    "$BIN/bench-pipe" -b "$BOOT" -i "bench.$RUN.warm.in" \
        -o "bench.$RUN.warm.out" -g "bench.$RUN.warm" -n 20000 \
        --timeout "$TIMEOUT" >/dev/null || die "warm-up pipe failed"

    # Odd rounds run the pipe first, even rounds the router, so neither
    # always gets the warmer broker.
    t=$SECONDS
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then
            measure_pipe "$r"
            measure_router "$r"
        else
            measure_router "$r"
            measure_pipe "$r"
        fi
        report "$r"
        if ((r == 1 && SECONDS - t >= 40)) && [ -z "${BENCH_ROUNDS:-}" ]; then
            say "round 1 took $((SECONDS - t)) s: one round only"
            break
        fi
    done
    summary
    say "done"
}

main
