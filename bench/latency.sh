#!/usr/bin/env bash
# bench/latency.sh BUILD_DIR - the latency kascade adds to a task.
#
# A real single-node Apache Kafka and a redis-server (deploy/local/), a
# model simulator answering in 0 ms, one kascade-router and one
# kascade-worker (tier mid, escalate_below 0 so no task escalates), all
# started here on free ports and always stopped on exit. For each rate in
# BENCH_LATENCY_RATES (default "100 1000 5000" tasks/s), bench-latency
# (bench/latency.c) sends tasks open loop for BENCH_LATENCY_SECONDS
# (default 8) and times each from its due send time to its Result's
# arrival; the baseline, in the same run, is the same open loop of calls
# straight to the simulator (bench-latency --http). "Added" is the
# fleet's percentile minus the direct call's. A second baseline, also in
# the same run and at the same rate: Kafka alone, the same bench-latency
# producer and consumer with the same settings on one topic and nothing
# in between (one hop where the fleet has three). Before anything is
# measured, a throwaway fleet and the Kafka-only pair run at
# BENCH_LATENCY_WARM_RATE (1000) tasks/s for BENCH_LATENCY_WARM_SECONDS
# (10; 0 skips it) to warm the fresh broker; each fleet then first
# answers 400 warm-up tasks that are not counted either. With
# BENCH_LATENCY_ROUND=K the settings start at the K-th (rotated), so
# that over rounds each gets a turn at going first.
#
# On stderr, per fleet measurement, bench-latency also splits each trip
# at the tier record's CreateTime (--tier): due -> tier record produced
# (tasks hop and router), tier produced -> Result produced (tier hop and
# worker). BENCH_LATENCY_LOGS=DIR keeps the router's and worker's logs
# and a per-task dump of each fleet measurement there (with
# KASCADE_LOG_LEVEL=debug and `-X kafka.debug=fetch` in a setting, the
# logs give the worker's fetch and accept time of every task).
#
# Each row of BENCH_LATENCY_SETTINGS (default: the built-in defaults,
# then two lower-latency settings) restarts the router and worker with
# those `-X kafka.<property>=<value>` overrides, so the table shows which
# settings give the best p99 at each rate.
#
# Figures go to stdout (one line per measurement, then a Markdown
# table), progress to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/latency.sh BUILD_DIR}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN=$BUILD/bin
TASKS=$ROOT/bench/tasks.jsonl
TIMEOUT=${BENCH_TIMEOUT:-120}
RATES=${BENCH_LATENCY_RATES:-100 1000 5000}
SECS=${BENCH_LATENCY_SECONDS:-8}
WARM_RATE=${BENCH_LATENCY_WARM_RATE:-1000}
WARM_SECS=${BENCH_LATENCY_WARM_SECONDS:-10}
CONFIG=$ROOT/deploy/examples/kascade.json
# One row per setting: a name, then kafka properties (k=v, comma-separated;
# "-" for none).
SETTINGS=${BENCH_LATENCY_SETTINGS:-"defaults -
linger1-fetch10 linger.ms=1,fetch.wait.max.ms=10
linger0-fetch1 linger.ms=0,fetch.wait.max.ms=1"}
# BENCH_LATENCY_ROUND=K (bench/all.sh passes its round): start at the
# K-th setting, so that over rounds no setting always runs first.
rotate_settings() {
    local n k
    n=$(grep -c . <<<"$SETTINGS")
    k=$(((${BENCH_LATENCY_ROUND:-1} - 1) % n))
    [ "$k" -gt 0 ] || return 0
    SETTINGS=$(grep . <<<"$SETTINGS" | tail -n +$((k + 1)); grep . <<<"$SETTINGS" | head -n "$k")
}
rotate_settings
RUN=$(date +%s)-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-latency.XXXXXX")
PIDS=()
BOOT=
SIM=
SIM_PID=

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

start_sim() {
    local i
    "$BIN/kascade-modelsim" --port 0 --latency-ms 0 --max-connections 4096 \
        --log-level warn >"$TMP/sim.out" 2>"$TMP/sim.log" &
    SIM_PID=$!
    track "$SIM_PID"
    for ((i = 0; i < 100; i++)); do
        SIM=$(sed -n 's/^listening on //p' "$TMP/sim.out" 2>/dev/null) || true
        [ -z "$SIM" ] || return 0
        sleep 0.1
    done
    die "the model simulator did not start"
}

# fleet NAME PROPS: starts a router and a worker with the kafka
# properties PROPS under a fresh prefix; sets PREFIX, ROUTER, WORKER.
fleet() {
    local args=() rargs=() wargs=() p
    PREFIX=lat.$RUN.$1.
    args=(-c "$CONFIG" -X "topics.prefix=$PREFIX" -X "redis.prefix=$PREFIX"
        -X metrics.port=0 -X routing.task_types.answer=mid
        -X tiers.mid.escalate_below=0
        -X "tiers.mid.providers.0.base_url=$SIM/v1")
    if [ "$2" != - ]; then
        IFS=, read -r -a p <<<"$2"
        # router:k=v or worker:k=v: for that process only
        for kv in "${p[@]}"; do
            case "$kv" in
            router:*) rargs+=(-X "kafka.${kv#router:}") ;;
            worker:*) wargs+=(-X "kafka.${kv#worker:}") ;;
            *) args+=(-X "kafka.$kv") ;;
            esac
        done
    fi
    "$BIN/kascade" "${args[@]}" topics create >/dev/null ||
        die "kascade topics create failed"
    "$BIN/kascade-router" "${args[@]}" ${rargs[@]+"${rargs[@]}"} \
        2>"$TMP/router.$1.log" &
    ROUTER=$!
    track "$ROUTER"
    "$BIN/kascade-worker" "${args[@]}" ${wargs[@]+"${wargs[@]}"} --tier mid \
        2>"$TMP/worker.$1.log" &
    WORKER=$!
    track "$WORKER"
    for ((i = 0; i < 300; i++)); do
        grep -q 'assigned [1-9]' "$TMP/worker.$1.log" &&
            grep -q 'assigned [1-9]' "$TMP/router.$1.log" && return 0
        alive "$ROUTER" || die "router exited: $(tail -n 3 "$TMP/router.$1.log")"
        alive "$WORKER" || die "worker exited: $(tail -n 3 "$TMP/worker.$1.log")"
        sleep 0.1
    done
    die "router or worker not assigned within 30 s"
}

# stop_fleet NAME: stops the router and the worker; with
# BENCH_LATENCY_LOGS=DIR their logs are kept there.
stop_fleet() {
    stop_pid "$ROUTER"
    untrack "$ROUTER"
    stop_pid "$WORKER"
    untrack "$WORKER"
    if [ -n "${BENCH_LATENCY_LOGS:-}" ]; then
        cp "$TMP/router.$1.log" "$TMP/worker.$1.log" "$BENCH_LATENCY_LOGS/"
    fi
}

# cpu_now: CPU seconds so far of router, worker, broker and simulator.
cpu_now() {
    local p
    for p in "$ROUTER" "$WORKER" "$(cat "$TMP/kafka/kafka.pid")" "$SIM_PID"; do
        proc_usage "$p" | cut -d' ' -f1
    done | tr '\n' ' '
}

# warm_broker KO_TOPIC: a fleet with the defaults and the Kafka-only pair
# at WARM_RATE tasks/s for WARM_SECS, not counted. A fresh broker's JVM
# spends its first minute compiling its hot paths, on the same 2 cores:
# whichever setting ran first paid for it (at 1,000/s the first setting
# had a median 3 to 6 times the later runs of the same setting, and the
# broker used 7.7 s of CPU against 5.4 to 6.7 s; bench/README.md).
warm_broker() {
    local n=$((WARM_RATE * WARM_SECS))
    [ "$WARM_SECS" -gt 0 ] || return 0
    say "broker warm-up: $WARM_RATE tasks/s for $WARM_SECS s, not counted"
    fleet warm -
    "$BIN/bench-latency" -b "$BOOT" --tasks "${PREFIX}tasks" \
        --results "${PREFIX}results" -r "$WARM_RATE" -n "$n" >/dev/null 2>&1 ||
        die "broker warm-up: results lost"
    "$BIN/bench-latency" -b "$BOOT" --tasks "$1" --results "$1" \
        -r "$WARM_RATE" -n "$n" >/dev/null 2>&1 ||
        die "broker warm-up: Kafka-only records lost"
    stop_fleet warm
}

pct() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# row SETTING RATE DIRECT FLEET KAFKA: two lines of figures (added over
# the direct call, added over Kafka alone), saved for the table.
row() {
    local k out=("$1" "$2")
    for k in p50 p95 p99 p999; do
        out+=("$(pct "$k" "$4")" "$(pct "$k" "$3")" "$(pct "$k" "$5")")
    done
    echo "${out[*]} $(sed -n 's/.* lost=\([0-9]*\).*/\1/p' <<<"$4")" >>"$TMP/rows"
    awk '{ printf "latency %s at %d/s: added p50 %.1f ms, p95 %.1f, p99 %.1f, p99.9 %.1f (fleet p99 %.1f, direct p99 %.1f; lost %d)\n",
           $1, $2, $3 - $4, $6 - $7, $9 - $10, $12 - $13, $9, $10, $15
           printf "latency %s at %d/s over kafka-only: added p50 %.1f ms, p95 %.1f, p99 %.1f, p99.9 %.1f (kafka-only p50 %.1f, p95 %.1f, p99 %.1f, p99.9 %.1f)\n",
           $1, $2, $3 - $5, $6 - $8, $9 - $11, $12 - $14, $5, $8, $11, $14 }' \
        <<<"$(tail -n 1 "$TMP/rows")"
}

main() {
    local name props rate n direct fl ko parts c0 ko_topic=lat.$RUN.kafka-only
    [ -z "${BENCH_LATENCY_LOGS:-}" ] || mkdir -p "$BENCH_LATENCY_LOGS"
    start_kafka_redis bench-latency kascade-router kascade-worker \
        kascade-modelsim kascade
    start_sim
    # The Kafka-only baseline's topic: as many partitions as the fleet's.
    parts=$(sed -n 's/.*"partitions": *\([0-9]*\).*/\1/p' "$CONFIG" | head -n 1)
    KASCADE_STATE_DIR="$TMP/kafka" "$ROOT/deploy/local/kafka.sh" topic \
        "$ko_topic" "$parts" >/dev/null 2>&1 || die "cannot create $ko_topic"
    echo "bench: latency, 0 ms model, rates $RATES tasks/s for ${SECS} s each," \
        "$(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), Kafka at $BOOT"
    warm_broker "$ko_topic"
    while read -r name props; do
        [ -n "$name" ] || continue
        say "setting $name ($props)"
        fleet "$name" "$props"
        # Warm-up, not counted: the producers' ids, the group's first
        # fetches and the broker's caches settle.
        "$BIN/bench-latency" -b "$BOOT" --tasks "${PREFIX}tasks" \
            --results "${PREFIX}results" -r 200 -n 400 >/dev/null ||
            die "$name: the warm-up tasks did not all come back"
        for rate in $RATES; do
            n=$((rate * SECS))
            # Calls lost to the 30 s timeout (a machine too loaded for
            # the rate) are said, and the percentiles of the rest kept.
            direct=$("$BIN/bench-latency" --http "$SIM/v1" -r "$rate" -n "$n") ||
                say "direct calls at $rate/s: some lost: $direct"
            ko=$("$BIN/bench-latency" -b "$BOOT" --tasks "$ko_topic" \
                --results "$ko_topic" -r "$rate" -n "$n") ||
                die "Kafka alone at $rate/s: records lost: $ko"
            c0=$(cpu_now)
            # BENCH_LATENCY_LOGS=DIR: the fleet run's per-task dump too.
            fl=$(BENCH_LATENCY_DUMP=${BENCH_LATENCY_LOGS:+$BENCH_LATENCY_LOGS/dump.$name.$rate} \
                "$BIN/bench-latency" -b "$BOOT" --tasks "${PREFIX}tasks" \
                --results "${PREFIX}results" --tier "${PREFIX}tier.mid" \
                -r "$rate" -n "$n") ||
                die "$name at $rate/s: results lost: $fl"
            # Which process the rate costs: CPU seconds during the run.
            awk -v a="$c0" -v b="$(cpu_now)" -v w="$name at $rate/s" 'BEGIN {
                split(a, x, " "); split(b, y, " ")
                printf "cpu %s: router %.2f s, worker %.2f s, broker %.2f s, simulator %.2f s\n",
                    w, y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4] }'
            row "$name" "$rate" "$direct" "$fl" "$ko"
        done
        stop_fleet "$name"
    done <<<"$SETTINGS"
    echo
    echo "Added over the direct HTTP call (over Kafka alone in brackets), ms:"
    echo
    echo "| setting | tasks/s | added p50 | added p95 | added p99 | added p99.9 | fleet p99 | direct p99 | Kafka-only p99 |"
    echo "|---|---|---|---|---|---|---|---|---|"
    awk '{ printf "| %s | %d | %.1f (%.1f) | %.1f (%.1f) | %.1f (%.1f) | %.1f (%.1f) | %.1f | %.1f | %.1f |\n",
           $1, $2, $3 - $4, $3 - $5, $6 - $7, $6 - $8, $9 - $10, $9 - $11,
           $12 - $13, $12 - $14, $9, $10, $11 }' "$TMP/rows"
    say "done"
}

main
