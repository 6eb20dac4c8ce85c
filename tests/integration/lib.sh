# lib.sh - shared by the integration tests (sourced, not run).
#
# tests/run.sh starts one real Kafka broker and one real redis-server for
# the whole integration run and exports KASCADE_BOOTSTRAP_SERVERS,
# KASCADE_REDIS_URL, KS_BIN (the build's bin dir) and KS_TMP (a scratch
# dir). Each test uses its own topic prefix and starts its own daemons and
# model simulators; it_cleanup (run on exit) stops what the test started,
# even on failure, and fails the test if a sanitizer reported anything.

KS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KS_CONFIG="$KS_ROOT/deploy/examples/kascade.json"
IT_NAME=$(basename "$0" .sh)
IT_DIR=$(mktemp -d "${KS_TMP:-/tmp}/$IT_NAME.XXXXXX")
IT_PIDS=()
IT_HOOKS=() # commands it_cleanup runs after stopping the processes
IT_FAILED=0
IT_CHECKS=0

it_log() { printf '[%s +%ds] %s\n' "$IT_NAME" "$SECONDS" "$*" >&2; }

it_check() { # it_check DESCRIPTION COMMAND...: one assertion
    IT_CHECKS=$((IT_CHECKS + 1))
    if "${@:2}"; then
        it_log "ok: $1"
    else
        it_log "FAIL: $1"
        IT_FAILED=1
    fi
}

it_die() { it_log "FAIL: $*"; IT_FAILED=1; exit 1; }

it_sanitizer_clean() {
    ! grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' \
        "$IT_DIR"/*.log 2>/dev/null
}

it_cleanup() {
    local rc=$? pid hook
    if [ "$rc" != 0 ]; then
        it_log "FAIL: the test script stopped with status $rc"
        IT_FAILED=1
    elif [ "$IT_CHECKS" = 0 ]; then
        it_log "FAIL: the test made no check"
        IT_FAILED=1
    fi
    for pid in "${IT_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${IT_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for hook in "${IT_HOOKS[@]}"; do
        eval "$hook" >/dev/null 2>&1 || true
    done
    if ! it_sanitizer_clean >/dev/null; then
        it_log "FAIL: sanitizer reports in:"
        it_sanitizer_clean >&2 || true
        IT_FAILED=1
    fi
    if [ "$IT_FAILED" = 0 ]; then
        rm -rf "$IT_DIR"
        it_log "passed ($IT_CHECKS checks)"
        exit 0
    fi
    it_log "failed; logs kept in $IT_DIR"
    exit 1
}
trap it_cleanup EXIT

# The config with this test's prefix and ports, as -X arguments.
IT_PREFIX="it-$IT_NAME-$$."
IT_X=(-X "topics.prefix=$IT_PREFIX" -X "redis.prefix=$IT_PREFIX"
      -X "topics.partitions=4"
      -X "drain_timeout_ms=10000"
      -X "tiers.local.escalate_below=0" -X "tiers.mid.escalate_below=0")
# (the example config escalates unconfident answers; tests of escalation
# set their own thresholds after these)

it_sim() { # it_sim NAME [modelsim args...]: starts a simulator, sets SIM_URL
    local name=$1 out="$IT_DIR/sim-$1.out"
    shift
    "$KS_BIN/kascade-modelsim" --port 0 "$@" >"$out" 2>"$IT_DIR/sim-$name.log" &
    IT_PIDS+=($!)
    for _ in $(seq 100); do
        if grep -q "^listening on " "$out" 2>/dev/null; then
            SIM_URL=$(sed -n 's/^listening on //p' "$out" | head -n 1)
            return 0
        fi
        sleep 0.05
    done
    it_die "model simulator $name did not start"
}

it_own_redis() { # it_own_redis [redis-server args...]: a redis-server of
    # this test's own (to stop, restart or DEBUG SLEEP it); sets
    # REDIS_PORT, stopped at exit. Call it again to restart it.
    REDIS_PORT=${REDIS_PORT:-$(it_free_port)}
    [[ " ${IT_HOOKS[*]} " == *"-p $REDIS_PORT shutdown"* ]] ||
        IT_HOOKS+=("redis-cli -p $REDIS_PORT shutdown nosave")
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize yes --dir "$IT_DIR" \
        --pidfile "$IT_DIR/redis.pid" --logfile "$IT_DIR/redis-server.out" \
        "$@" >/dev/null
    for _ in $(seq 50); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    return 1
}

it_wait_assigned() { # it_wait_assigned LOGNAME: its daemon has partitions
    for _ in $(seq 300); do
        grep -q 'assigned [1-9]' "$IT_DIR/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

it_local_model() { # starts the real local model (deploy/local/llm.sh);
    # sets LLM_URL, stopped at exit
    local llm="$KS_ROOT/deploy/local/llm.sh"
    export KASCADE_LLM_DIR="$IT_DIR/llm"
    IT_HOOKS+=("'$llm' stop")
    "$llm" ready || it_log "the model server's venv is not built yet: building it (slow)"
    LLM_URL=$("$llm" start 2>"$IT_DIR/llm-start.log") || {
        cat "$IT_DIR/llm-start.log" >&2
        it_die "deploy/local/llm.sh start failed"
    }
    it_log "local model at $LLM_URL"
}

it_cost_micro() { # it_cost_micro RESULTS.jsonl: the sum of the Results'
    # cost_usd in micro-dollars (each Result must be ok)
    python3 - "$1" <<'PY'
import decimal, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
bad = [r.get("status") for r in res if r.get("status") != "ok"]
assert not bad, bad[:5]
print(int(sum(decimal.Decimal(str(r["cost_usd"])) for r in res) * 1000000))
PY
}

it_send_tier() { # it_send_tier TIER ID_PREFIX N [HINTS_JSON [PARTITION]]: N
    # tasks "<prefix>-<i>" (type answer, input "question <i>") onto tier
    # TIER's topic, as the router would write them; with PARTITION, all
    # into that partition (one batch, so a worker takes them in one turn)
    local hints="" part=()
    [ -z "${4:-}" ] || hints=",\"hints\":$4"
    [ -z "${5:-}" ] || part=(-p "$5")
    for i in $(seq "$3"); do
        printf '%s-%d\t{"id":"%s-%d","type":"answer","input":"question %d"%s}\n' \
            "$2" "$i" "$2" "$i" "$i" "$hints"
    done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.$1" \
        "${part[@]}" -K $'\t'
}

it_budget_field() { # it_budget_field TIER FIELD: a number of tier TIER's
    # budget hash for today (spent, reserved, expired_micro...); 0 when unset
    local v
    v=$(redis-cli -p "${KASCADE_REDIS_URL##*:}" HGET \
        "${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:$1" "$2")
    echo "${v:-0}"
}

it_wait_calls() { # it_wait_calls URL N: until the simulator saw more than
    # N requests (10 s at most)
    for _ in $(seq 100); do
        [ "$(it_sim_requests "$1")" -gt "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

it_stall_redis() { # it_stall_redis TIMES SECONDS GAP: DEBUG SLEEP SECONDS
    # on it_own_redis's server TIMES times, GAP s apart; prints how many
    local n=0
    for ((k = 0; k < $1; k++)); do
        [ "$(redis-cli -p "$REDIS_PORT" debug sleep "$2")" = OK ] && n=$((n + 1))
        sleep "$3"
    done
    echo "$n"
}

it_sim_requests() { # it_sim_requests URL: chat requests the simulator saw
    curl -sf "$1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}

it_kascade() { "$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" "$@"; }

it_daemon() { # it_daemon LOGNAME BINARY ARGS...: starts a daemon; sets LAST_PID
    # IT_WRAP (a command and its options, split on spaces; e.g. "valgrind
    # -q --log-file=%s.vg"): the daemon runs under it, each %s its log's
    # path without .log. Off by default; for a hand run: IT_WRAP=... IT_ONLY=...
    # tests/run.sh build/release integration.
    local log="$IT_DIR/$1.log" wrap=()
    [ -z "${IT_WRAP:-}" ] || read -r -a wrap <<<"${IT_WRAP//%s/$IT_DIR/$1}"
    shift
    "${wrap[@]}" "$KS_BIN/$1" -c "$KS_CONFIG" "${IT_X[@]}" "${@:2}" >>"$log" 2>&1 &
    LAST_PID=$!
    IT_PIDS+=($LAST_PID)
}

it_stop() { # it_stop PID: SIGTERM and wait; returns the exit status
    kill -TERM "$1" 2>/dev/null || return 1
    local rc=0
    wait "$1" || rc=$?
    return $rc
}

it_read() { # it_read TOPIC-SUFFIX: the topic's messages as JSON lines
    python3 "$KS_ROOT/tests/integration/kafkatool.py" read \
        "$KASCADE_BOOTSTRAP_SERVERS" "$IT_PREFIX$1"
}

it_count() { it_read "$1" | wc -l; }

it_wait_count() { # it_wait_count TOPIC-SUFFIX N SECONDS
    local deadline=$((SECONDS + $3)) n=0
    while [ $SECONDS -lt $deadline ]; do
        n=$(it_count "$1")
        [ "$n" -ge "$2" ] && return 0
        sleep 1
    done
    it_log "$1 has $n message(s), expected $2"
    return 1
}

it_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

it_metric() { # it_metric PORT REGEX: sum of the matching series' values
    curl -sf "http://127.0.0.1:$1/metrics" |
        awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $2 } END { print s + 0 }'
}
