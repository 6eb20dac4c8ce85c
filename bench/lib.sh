# bench/lib.sh - shell functions shared by bench/run.sh and bench/worker.sh.
# Sourced, not run; defines functions only (no traps, no side effects).
#
# Provides: say, die (progress and failure on stderr), alive, stop_pid,
# track, untrack (processes the script started), cleanup (for the EXIT
# trap: stops the tracked processes, Kafka and Redis, removes $TMP),
# free_port, now_ms, field, calc, proc_usage, broker_cpu, start_kafka_redis
# and wait_sum.
#
# Expects these variables of the sourcing script: ROOT (the checkout), BIN
# (the build's bin dir), TMP (its temp dir: Kafka's state in $TMP/kafka,
# Redis's in $TMP/redis), TASKS (the task file), TIMEOUT (seconds),
# PIDS (an array, initially empty) and BOOT (set by start_kafka_redis).

say() { printf 'bench [%3ds]: %s\n' "$SECONDS" "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop_pid PID: TERM, wait up to 40 s (the process under test drains), then
# KILL.
stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null || return 0
    for ((i = 0; i < 400; i++)); do
        alive "$1" || break
        sleep 0.1
    done
    if alive "$1"; then
        say "process $1 did not stop; killing it"
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null
}

track() { PIDS+=("$1"); }
untrack() { # untrack PID: it has exited and been waited for
    local i
    for i in "${!PIDS[@]}"; do
        [ "${PIDS[i]}" != "$1" ] || unset 'PIDS[i]'
    done
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid" || true
    done
    KASCADE_STATE_DIR="$TMP/kafka" "$ROOT/deploy/local/kafka.sh" stop \
        >/dev/null 2>&1 || true
    KASCADE_REDIS_DIR="$TMP/redis" "$ROOT/deploy/local/redis.sh" stop \
        >/dev/null 2>&1 || true
    rm -rf "$TMP"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

now_ms() { date +%s%3N; }

# field KEY FILE: the value of KEY=VALUE in FILE's "wait:" line.
field() { sed -n "s/^wait:.* $1=\([^ ]*\).*/\1/p" "$2"; }

# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# proc_usage PID: "CPU_SECONDS PEAK_RSS_KB RSS_KB" of a running process.
proc_usage() {
    local stat mem
    stat=$(cat "/proc/$1/stat") || return 1
    mem=$(awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print h, r }' \
        "/proc/$1/status") || return 1
    stat=${stat##*) }
    # utime and stime are fields 14 and 15 of stat, 12 and 13 after "comm)".
    awk -v s="$stat" -v mem="$mem" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { split(s, f, " "); printf "%.2f %s\n", (f[12] + f[13]) / hz, mem }'
}

# broker_cpu: CPU seconds the broker has used so far.
broker_cpu() {
    local u
    u=$(proc_usage "$(cat "$TMP/kafka/kafka.pid")") || die "cannot read the broker's /proc"
    echo "${u%% *}"
}

# start_kafka_redis BINARY...: checks that $BIN holds each BINARY and that
# $TASKS is there, then starts Kafka and Redis on free ports under $TMP;
# sets BOOT and exports KASCADE_BOOTSTRAP_SERVERS and KASCADE_REDIS_URL.
start_kafka_redis() {
    local b
    for b in "$@"; do
        [ -x "$BIN/$b" ] || die "no $BIN/$b (run make first)"
    done
    [ -s "$TASKS" ] || die "no task file $TASKS"
    say "starting Kafka and Redis in $TMP"
    BOOT=$(KASCADE_KAFKA_PORT=$(free_port) KASCADE_STATE_DIR="$TMP/kafka" \
        "$ROOT/deploy/local/kafka.sh" start) || die "Kafka did not start"
    KASCADE_REDIS_URL=$(KASCADE_REDIS_DIR="$TMP/redis" \
        "$ROOT/deploy/local/redis.sh" start) || die "Redis did not start"
    export KASCADE_BOOTSTRAP_SERVERS=$BOOT KASCADE_REDIS_URL
}

# wait_sum NAME COUNT TOPICS T0 PID: waits for COUNT records on TOPICS,
# counted from T0; fails if PID dies first. Leaves the figures in
# $TMP/NAME.wait.
wait_sum() {
    "$BIN/bench-pipe" -b "$BOOT" --wait-sum "$2" --topics "$3" --since "$4" \
        --timeout "$TIMEOUT" >"$TMP/$1.wait" &
    local waiter=$! grace=100 status=0
    track "$waiter"
    # The process under test may exit by itself once done, maybe before the
    # next sample: after it is gone the waiter gets 5 s more.
    while alive "$waiter" && ((grace > 0)); do
        alive "$5" || grace=$((grace - 1))
        sleep 0.05
    done
    if alive "$waiter"; then
        stop_pid "$waiter" || true
        untrack "$waiter"
        die "$1: the process under test exited before $2 records (see above)"
    fi
    wait "$waiter" || status=$?
    untrack "$waiter"
    [ "$status" = 0 ] || die "$1: did not reach $2 within ${TIMEOUT}s"
}
