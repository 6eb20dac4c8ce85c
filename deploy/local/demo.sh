#!/usr/bin/env bash
# deploy/local/demo.sh BUILD_DIR - the `make demo` job.
#
# Starts an embedded broker (`kascade devbroker`: librdkafka's mock cluster
# on loopback, memory only) unless KASCADE_BOOTSTRAP_SERVERS names a real
# one, a throwaway redis-server, one model simulator per tier (stand-ins
# for the models: no API key or model download is needed), the router and
# one worker per tier; submits deploy/examples/tasks.jsonl, waits for every
# result and prints the summary; then stops everything it started.
#
# Tier local runs on the real local model (deploy/local/llm.sh: llama.cpp
# with SmolLM2-135M) when its venv is already built, or when
# KASCADE_DEMO_LLM=1 asks for it (building it first: a few minutes); otherwise
# on a simulator too. KASCADE_DEMO_LLM=0 always uses the simulator.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-build/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
BIN="$BIN/bin"
CONFIG=${KASCADE_DEMO_CONFIG:-$ROOT/deploy/examples/kascade.json}
TASKS=${KASCADE_DEMO_TASKS:-$ROOT/deploy/examples/tasks.jsonl}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-demo.XXXXXX")
PIDS=()
X=()

say() { printf "\033[1m==> [%3ds] %s\033[0m\n" "$SECONDS" "$*" >&2; }

cleanup() {
    local i pid
    # Newest first: the fleet drains while its broker and models still run.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    KASCADE_REDIS_DIR="$TMP/redis" "$ROOT/deploy/local/redis.sh" stop \
        >/dev/null 2>&1 || true
    KASCADE_LLM_DIR="$TMP/llm" "$ROOT/deploy/local/llm.sh" stop \
        >/dev/null 2>&1 || true
    [ -n "${KASCADE_DEMO_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_line() { # wait_for_line FILE PATTERN: up to 10 s
    for _ in $(seq 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "demo: timed out waiting for '$2' in $1" >&2
    return 1
}

start_broker() {
    if [ -n "${KASCADE_BOOTSTRAP_SERVERS:-}" ]; then
        say "Kafka: $KASCADE_BOOTSTRAP_SERVERS (from KASCADE_BOOTSTRAP_SERVERS)"
        "$BIN/kascade" -c "$CONFIG" topics create >/dev/null
        return
    fi
    "$BIN/kascade" -c "$CONFIG" devbroker --ready-file "$TMP/broker" \
        >/dev/null 2>"$TMP/devbroker.log" &
    PIDS+=($!)
    wait_for_line "$TMP/broker" .
    KASCADE_BOOTSTRAP_SERVERS=$(cat "$TMP/broker")
    export KASCADE_BOOTSTRAP_SERVERS
    # The mock broker answers a fetch only when its wait is over, not when
    # data arrives: a short wait keeps each hop's latency realistic.
    X+=(-X kafka.fetch.wait.max.ms=10)
    say "Kafka: embedded broker on $KASCADE_BOOTSTRAP_SERVERS (memory only)"
}

# use_llm: should tier local run on the real model?
use_llm() {
    case "${KASCADE_DEMO_LLM:-}" in
    1) return 0 ;;
    0) return 1 ;;
    esac
    "$ROOT/deploy/local/llm.sh" ready 2>/dev/null
}

start_llm() { # tier local on llama.cpp; returns 1 to fall back to a simulator
    local url
    if ! "$ROOT/deploy/local/llm.sh" ready 2>/dev/null; then
        say "building the local model's venv first (once; a few minutes)"
        "$ROOT/deploy/local/llm.sh" prepare >/dev/null || return 1
    fi
    url=$(KASCADE_LLM_DIR="$TMP/llm" "$ROOT/deploy/local/llm.sh" start \
        2>"$TMP/llm.log") || {
        echo "demo: the local model did not start (see below); using the simulator" >&2
        tail -n 5 "$TMP/llm.log" >&2
        return 1
    }
    # One request at a time on 2 cores: a queued call must not time out.
    X+=(-X "tiers.local.providers.0.base_url=$url"
        -X "tiers.local.providers.0.model=smollm2-135m"
        -X "tiers.local.providers.0.timeout_ms=180000"
        -X "tiers.local.max_inflight=4")
    TIERS+=(local)
    say "models: tier local on the real local model (llama.cpp, SmolLM2-135M) at $url"
}

start_models() {
    local tier latency
    for tier in $(python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(open(sys.argv[1]))["tiers"]))' "$CONFIG"); do
        case "$tier" in
        local)
            latency=40
            if use_llm && start_llm; then
                continue
            fi
            ;;
        mid) latency=150 ;;
        *) latency=400 ;;
        esac
        "$BIN/kascade-modelsim" --port 0 --latency-ms "$latency" \
            --jitter-ms $((latency / 2)) --model "sim-$tier" \
            >"$TMP/sim-$tier.out" 2>"$TMP/sim-$tier.log" &
        PIDS+=($!)
        wait_for_line "$TMP/sim-$tier.out" '^listening on '
        X+=(-X "tiers.$tier.providers.0.base_url=$(sed -n 's/^listening on //p' "$TMP/sim-$tier.out")/v1"
            -X "tiers.$tier.providers.0.model=sim-$tier")
        TIERS+=("$tier")
        SIM_TIERS+=("$tier")
    done
    say "models: simulator for ${SIM_TIERS[*]}, stand-ins for the real models"
    if [ "${SIM_TIERS[0]:-}" = local ] && [ "${KASCADE_DEMO_LLM:-}" != 0 ]; then
        say "(KASCADE_DEMO_LLM=1 runs tier local on the real local model; its first build takes a few minutes)"
    fi
}

TIERS=()
SIM_TIERS=()
start_broker
KASCADE_REDIS_URL=$(KASCADE_REDIS_DIR="$TMP/redis" "$ROOT/deploy/local/redis.sh" start 2>/dev/null)
export KASCADE_REDIS_URL
say "Redis: $KASCADE_REDIS_URL"
start_models

"$BIN/kascade-router" -c "$CONFIG" "${X[@]}" 2>"$TMP/router.log" &
PIDS+=($!)
for tier in "${TIERS[@]}"; do
    "$BIN/kascade-worker" -c "$CONFIG" "${X[@]}" --tier "$tier" \
        2>"$TMP/worker-$tier.log" &
    PIDS+=($!)
done
# Submit once every consumer has its partitions, so the latency figures
# measure the fleet and not the first group join.
# (Named, not globbed: a log file may not exist yet.)
LOGS=("$TMP/router.log")
for tier in "${TIERS[@]}"; do
    LOGS+=("$TMP/worker-$tier.log")
done
for log in "${LOGS[@]}"; do
    for _ in $(seq 300); do
        grep -q 'assigned [1-9]' "$log" 2>/dev/null && break
        sleep 0.1
    done
done
say "fleet: router + one worker per tier; submitting $(wc -l <"$TASKS") tasks"

status=0
"$BIN/kascade" -c "$CONFIG" "${X[@]}" submit "$TASKS" --wait --timeout 300 \
    -o "$TMP/results.jsonl" || status=$?
if grep -q '"status":"ok"' "$TMP/results.jsonl" 2>/dev/null; then
    say "one result:"
    head -n 1 "$TMP/results.jsonl" | cut -c 1-300 >&2
fi
if [ $status -ne 0 ]; then
    echo "demo: the run did not complete; daemon logs:" >&2
    tail -n 20 "$TMP"/*.log >&2
fi
say "stopping everything"
exit $status
