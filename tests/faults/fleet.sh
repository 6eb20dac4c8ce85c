# tests/faults/fleet.sh - the fault suite's fleet and faults (sourced by
# tests/faults/run.sh and tests/integration/test_faults_short.sh).
#
# A run (f_run) takes a scenario's fault list, starts two model simulators
# (tiers mid and frontier, 300-1000 ms latency), the router and
# F_WORKERS workers per tier, produces F_TASKS tasks, injects the faults
# until every task is accounted for (a Result or a DLQ entry) or
# F_DEADLINE_S passes, drains the fleet with SIGTERM, then hands the
# evidence to ledger.py, which prints the ledger row and the checks.
#
# Needs: KS_BIN (the build's bin dir), KASCADE_BOOTSTRAP_SERVERS,
# KASCADE_REDIS_URL, F_DIR (a scratch dir for logs and evidence). For the
# broker and Redis restarts: F_KAFKA_DIR / F_REDIS_DIR, the state dirs of
# deploy/local/kafka.sh and redis.sh.
#
# Processes: every daemon is a child of this shell, so `wait` gives its
# exit status. A daemon found dead that the suite did not kill is counted
# in F_DEATHS (with its status and log) and started again; daemons must
# exit 0 on the final SIGTERM.

F_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
F_CONFIG="$F_ROOT/deploy/examples/kascade.json"
F_TASKS=${F_TASKS:-20000}
F_WORKERS=${F_WORKERS:-2}
F_INFLIGHT=${F_INFLIGHT:-64}     # max_inflight of each worker
F_TIMEOUT_MS=${F_TIMEOUT_MS:-3000} # the providers' timeout_ms
F_DEADLINE_S=${F_DEADLINE_S:-900} # a run that takes longer has lost tasks
F_KILL_EVERY_S=${F_KILL_EVERY_S:-2}
F_SLEEP_EVERY_S=${F_SLEEP_EVERY_S:-3} # DEBUG SLEEP 0.5 this often
F_TIERS=(mid frontier)
# Prices in whole micro-dollars per token, so a call's cost is exact.
declare -A F_PRICE_IN=([mid]=1 [frontier]=3) F_PRICE_OUT=([mid]=4 [frontier]=15)

declare -A F_PID=() F_ARGS=() F_SIM=() F_SIM_PID=()
F_SLOTS=()
F_DEATHS=0
F_KILLS=0
declare -A F_KILLS_TIER=()

f_log() { printf '[faults %s +%ds] %s\n' "${F_SCENARIO:-}" "$SECONDS" "$*" >&2; }

# The config of this run: its own prefix, cheap exact prices, short
# timeouts so that faults resolve within the run, no escalation (each
# task is one call), budgets no run can spend.
f_config() { # f_config PREFIX
    F_X=(-X "topics.prefix=$1" -X "redis.prefix=$1"
         -X "drain_timeout_ms=10000"
         -X "budget.reservation_margin_ms=5000"
         -X "kafka.session.timeout.ms=6000"
         -X "kafka.heartbeat.interval.ms=1000"
         -X "tiers.local.escalate_below=0" -X "tiers.mid.escalate_below=0")
    local t
    for t in "${F_TIERS[@]}"; do
        F_X+=(-X "tiers.$t.prompt=Answer."
              -X "tiers.$t.max_inflight=$F_INFLIGHT"
              -X "tiers.$t.daily_budget_usd=100000"
              -X "tiers.$t.providers.0.price_in_per_mtok=${F_PRICE_IN[$t]}"
              -X "tiers.$t.providers.0.price_out_per_mtok=${F_PRICE_OUT[$t]}"
              -X "tiers.$t.providers.0.timeout_ms=$F_TIMEOUT_MS")
    done
}

f_kascade() { "$KS_BIN/kascade" -c "$F_CONFIG" "${F_X[@]}" "$@"; }

f_sim() { # f_sim TIER SEED [modelsim args...]: starts the tier's simulator
    local tier=$1 seed=$2 out="$F_DIR/sim-$1.out"
    shift 2
    # Latency uniform in [300, 1000] ms, so faults land mid-call; a
    # "timeout" answers 2 x timeout_ms late.
    "$KS_BIN/kascade-modelsim" --port 0 --latency-ms 300 --jitter-ms 700 \
        --hang-ms $((2 * F_TIMEOUT_MS)) --seed "$seed" --model "$tier-model" \
        --max-connections 4096 "$@" >"$out" 2>"$F_DIR/sim-$tier.log" &
    F_SIM_PID[$tier]=$!
    local _
    for _ in $(seq 200); do
        if grep -q "^listening on " "$out" 2>/dev/null; then
            F_SIM[$tier]=$(sed -n 's/^listening on //p' "$out" | head -n 1)
            F_X+=(-X "tiers.$tier.providers.0.base_url=${F_SIM[$tier]}/v1")
            return 0
        fi
        sleep 0.05
    done
    f_log "FAIL: model simulator $tier did not start"
    return 1
}

f_slot_start() { # f_slot_start SLOT: (re)starts the slot's daemon
    local slot=$1
    # shellcheck disable=SC2086 # F_ARGS holds words
    "$KS_BIN/"${F_ARGS[$slot]} -c "$F_CONFIG" "${F_X[@]}" \
        >>"$F_DIR/$slot.log" 2>&1 &
    F_PID[$slot]=$!
}

f_slot_add() { # f_slot_add SLOT BINARY [ARGS...]
    F_SLOTS+=("$1")
    F_ARGS[$1]="${*:2}"
    f_slot_start "$1"
}

f_fleet_start() {
    local t i
    f_slot_add router kascade-router
    for t in "${F_TIERS[@]}"; do
        for i in $(seq "$F_WORKERS"); do
            f_slot_add "worker-$t-$i" kascade-worker --tier "$t"
        done
    done
}

# A daemon that stopped without being killed is a failure: count it, keep
# its status, start it again so the run goes on.
f_supervise() {
    local slot pid rc
    for slot in "${F_SLOTS[@]}"; do
        pid=${F_PID[$slot]}
        kill -0 "$pid" 2>/dev/null && continue
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
        F_DEATHS=$((F_DEATHS + 1))
        f_log "FAIL: $slot (pid $pid) died on its own with status $rc; log:"
        tail -n 5 "$F_DIR/$slot.log" >&2
        echo "$slot pid $pid status $rc" >>"$F_DIR/deaths"
        f_slot_start "$slot"
    done
}

f_kill_random() { # SIGKILL of a random router or worker, restarted at once
    local slot=${F_SLOTS[RANDOM % ${#F_SLOTS[@]}]} pid tier
    f_supervise # a death before the kill is not the kill's
    pid=${F_PID[$slot]}
    tier=${slot#worker-}
    tier=${tier%-*}
    [ "$slot" = router ] && tier=router
    # Right before the kill, for the ledger's bound: the tier's budget
    # reservations (every worker's: at least the victim's, which are
    # charged at their worst case once they expire) and its calls in
    # flight at the simulator.
    [ "$tier" != router ] && echo "$tier $(f_reserved "$tier") $(f_stats "$tier" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["inflight"])' \
        2>/dev/null || echo "?")" >>"$F_DIR/kill-inflight"
    kill -KILL "$pid" 2>/dev/null || return 0
    wait "$pid" 2>/dev/null || true
    F_KILLS=$((F_KILLS + 1))
    F_KILLS_TIER[$tier]=$((${F_KILLS_TIER[$tier]:-0} + 1))
    echo "$SECONDS $slot $pid" >>"$F_DIR/kills"
    f_slot_start "$slot"
}

f_fleet_stop() { # SIGTERM drains; a non-zero status is a death
    local slot pid rc
    for slot in "${F_SLOTS[@]}"; do
        kill -TERM "${F_PID[$slot]}" 2>/dev/null || true
    done
    for slot in "${F_SLOTS[@]}"; do
        pid=${F_PID[$slot]}
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
        if [ "$rc" != 0 ]; then
            F_DEATHS=$((F_DEATHS + 1))
            f_log "FAIL: $slot (pid $pid) exited with status $rc on SIGTERM"
            echo "$slot pid $pid status $rc at drain" >>"$F_DIR/deaths"
        fi
    done
    F_SLOTS=()
}

f_sims_stop() {
    local t
    for t in "${!F_SIM_PID[@]}"; do
        kill -TERM "${F_SIM_PID[$t]}" 2>/dev/null || true
        wait "${F_SIM_PID[$t]}" 2>/dev/null || true
    done
    F_SIM_PID=()
}

f_produce() { # f_produce PREFIX N: N tasks, 70% answer (mid), 30% review
    python3 - "$1" "$2" <<'EOF' >"$F_DIR/tasks.tsv"
import json, sys
p, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    tid = "f-%d" % i
    kind = "review" if i % 10 < 3 else "answer"
    words = " ".join("w%d" % ((i * 7 + k) % 97) for k in range(i % 23))
    task = {"id": tid, "type": kind, "tenant": "t%d" % (i % 5),
            "input": "question %d about %s" % (i, words),
            "hints": {"max_output_tokens": 64}}
    print("%s\t%s" % (tid, json.dumps(task)))
EOF
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${1}tasks" -K $'\t' \
        <"$F_DIR/tasks.tsv"
}

f_keys() { # f_keys TOPIC: the message keys of a topic, one a line
    timeout 120 kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -C -t "$1" -o beginning \
        -e -q -f '%k\n' 2>/dev/null
}

f_msgs() { # f_msgs TOPIC: messages in the topic (end offsets, summed)
    local b=$KASCADE_BOOTSTRAP_SERVERS n p args=()
    n=$(timeout 10 kcat -b "$b" -L -t "$1" 2>/dev/null | grep -c ' partition ')
    for ((p = 0; p < ${n:-0}; p++)); do args+=(-t "$1:$p:-1"); done
    [ ${#args[@]} -gt 0 ] || { echo 0; return; }
    timeout 10 kcat -b "$b" -Q "${args[@]}" 2>/dev/null |
        awk '/ offset / { s += $NF } END { print s + 0 }'
}

f_accounted() { # task ids with a Result or a DLQ entry
    { f_keys "${F_PREFIX}results"; f_keys "${F_PREFIX}dlq"; } | sort -u |
        grep -c '^f-' || true
}

# --- Broker and Redis -------------------------------------------------

f_broker_pid() { cat "$F_KAFKA_DIR/kafka.pid" 2>/dev/null; }

f_broker_up() {
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -L -m 3 >/dev/null 2>&1
}

# Stops the broker (SIGTERM, a clean shutdown) for F_BROKER_DOWN_S and
# starts it again with the same command line: same data dir, same port.
f_broker_restart() {
    local pid cmd=() _
    pid=$(f_broker_pid) || { f_log "FAIL: no broker pid"; return 1; }
    mapfile -d '' cmd <"/proc/$pid/cmdline"
    f_log "broker: stopping pid $pid for ${F_BROKER_DOWN_S:-10} s"
    kill -TERM "$pid"
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    sleep "${F_BROKER_DOWN_S:-10}"
    # shellcheck disable=SC2016 # $$ and $1 are for the inner bash
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-relaunch \
        "$F_KAFKA_DIR/kafka.pid" "${cmd[@]}" \
        </dev/null >>"$F_KAFKA_DIR/kafka.out" 2>&1 9>&- &
    disown
    for _ in $(seq 120); do f_broker_up && break; sleep 0.5; done
    f_broker_up || { f_log "FAIL: the broker did not come back"; return 1; }
    f_log "broker: back (pid $(f_broker_pid))"
    echo "broker" >>"$F_DIR/restarts"
}

f_redis_port() { echo "${KASCADE_REDIS_URL##*:}"; }
f_redis() { timeout 10 redis-cli -p "$(f_redis_port)" "$@"; }

# Restarts deploy/local/redis.sh's server with the suite's settings: an
# append-only file (budgets survive a restart) and DEBUG allowed from
# loopback (Redis 7 refuses DEBUG SLEEP otherwise, and the setting cannot
# be changed at run time). Same port, same dir. A clean SHUTDOWN writes
# the file; the new server loads it.
f_redis_restart() {
    local pid cmd=() _ info
    pid=$(cat "$F_REDIS_DIR/redis.pid" 2>/dev/null) ||
        { f_log "FAIL: no redis pid"; return 1; }
    # (redis-server rewrites its own argv: start it by name)
    cmd=(redis-server "$F_REDIS_DIR/redis.conf" --appendonly yes
         --enable-debug-command local)
    # An initial AOF rewrite in progress makes SHUTDOWN refuse.
    for _ in $(seq 100); do
        info=$(f_redis info persistence 2>/dev/null) || break
        grep -q 'aof_rewrite_in_progress:1' <<<"$info" || break
        sleep 0.1
    done
    f_log "redis: restarting pid $pid"
    f_redis shutdown >/dev/null 2>&1 || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    "${cmd[@]}" >/dev/null
    for _ in $(seq 100); do
        [ "$(f_redis ping 2>/dev/null)" = PONG ] && break
        sleep 0.1
    done
    [ "$(f_redis ping 2>/dev/null)" = PONG ] ||
        { f_log "FAIL: redis did not come back"; return 1; }
    f_log "redis: back (pid $(cat "$F_REDIS_DIR/redis.pid"))"
    echo "redis" >>"$F_DIR/restarts"
}

# --- One run ------------------------------------------------------------

f_spent_json() { # today's budgets as JSON (kascade budget show --json)
    f_kascade budget show --json --day "$F_DAY"
}

f_reserved() { # f_reserved TIER: the tier's reserved micro-dollars, or ?
    f_spent_json 2>/dev/null | python3 -c 'import json,sys
print(sum(round(b["reserved_usd"]*1e6) for b in json.load(sys.stdin)["budgets"]
          if b["kind"]=="tier" and b["name"]==sys.argv[1]))' "$1" 2>/dev/null ||
        echo "?"
}

f_stats() { # f_stats TIER: the simulator's /stats
    curl -sf -m 10 "${F_SIM[$1]}/stats"
}

# f_run SCENARIO FAULTS...: one run; faults among kill, broker, redis,
# sleep, providers. Writes $F_DIR/SCENARIO/ledger.json; returns ledger.py's
# verdict.
f_run() {
    local scenario=$1 faults=" ${*:2} " t next_kill next_sleep n=0 start
    local fired_broker=0 fired_redis=0 done_at=0 last_check=0 fail_spec=
    local last_exact=0
    F_SCENARIO=$scenario
    F_PREFIX="faults-$scenario-$$-$RANDOM."
    local base=$F_DIR
    F_DIR="$base/$scenario"
    mkdir -p "$F_DIR"
    F_DEATHS=0 F_KILLS=0 F_KILLS_TIER=() F_SIM=() F_SLOTS=()
    F_DAY=$(date -u +%Y%m%d)
    f_config "$F_PREFIX"
    case "$faults" in *" providers "*)
        fail_spec="--fail timeout:0.01,truncated:0.01,huge:0.005,rst:0.01" ;;
    *" timeout "*) fail_spec="--fail timeout:0.02" ;;
    esac
    # shellcheck disable=SC2086 # fail_spec holds words
    f_sim mid 11 $fail_spec && f_sim frontier 12 $fail_spec || return 1
    f_kascade topics create >"$F_DIR/topics.out" 2>&1 ||
        { f_log "FAIL: topics create"; cat "$F_DIR/topics.out" >&2; return 1; }
    f_fleet_start
    start=$SECONDS
    f_produce "$F_PREFIX" "$F_TASKS"
    f_log "$F_TASKS tasks produced; faults:$faults"
    next_kill=$((SECONDS + F_KILL_EVERY_S))
    next_sleep=$((SECONDS + F_SLEEP_EVERY_S))
    while [ $((SECONDS - start)) -lt "$F_DEADLINE_S" ]; do
        sleep 0.5
        f_supervise
        if [[ $faults == *" kill "* && $SECONDS -ge $next_kill ]]; then
            f_kill_random
            next_kill=$((SECONDS + F_KILL_EVERY_S))
        fi
        if [[ $faults == *" sleep "* && $SECONDS -ge $next_sleep ]]; then
            f_redis debug sleep 0.5 >>"$F_DIR/sleeps" 2>&1 &
            next_sleep=$((SECONDS + F_SLEEP_EVERY_S))
        fi
        if [[ $faults == *" broker "* && $fired_broker = 0 &&
              $((SECONDS - start)) -ge 8 ]]; then
            fired_broker=1
            f_broker_restart || F_DEATHS=$((F_DEATHS + 1))
        fi
        if [[ $faults == *" redis "* && $fired_redis = 0 &&
              $((SECONDS - start)) -ge 6 ]]; then
            fired_redis=1
            f_redis_restart || F_DEATHS=$((F_DEATHS + 1))
        fi
        [ $((SECONDS - last_check)) -lt 5 ] && continue
        last_check=$SECONDS
        # Cheap: messages on results and DLQ (duplicates included); the
        # exact count of distinct ids reads both topics whole, so only
        # once the cheap one says it may be done, and at most every 30 s.
        n=$(($(f_msgs "${F_PREFIX}results") + $(f_msgs "${F_PREFIX}dlq")))
        f_log "$n result and DLQ messages for $F_TASKS tasks; $F_KILLS kills"
        [ "$n" -ge "$F_TASKS" ] || continue
        [ $((SECONDS - last_exact)) -ge 30 ] || continue
        last_exact=$SECONDS
        n=$(f_accounted)
        f_log "$n of $F_TASKS tasks accounted for"
        if [ "$n" -ge "$F_TASKS" ]; then
            done_at=$((SECONDS - start))
            break
        fi
    done
    f_wait_sleeps
    f_settle_wait
    f_fleet_stop
    f_ledger "$scenario" "$faults" "$done_at" "$((SECONDS - start))"
    local rc=$?
    f_sims_stop
    F_DIR=$base
    return $rc
}

# Background DEBUG SLEEPs are the only other jobs: wait for them.
f_wait_sleeps() {
    local j keep s
    for j in $(jobs -p); do
        keep=0
        for s in "${F_SLOTS[@]}"; do [ "${F_PID[$s]}" = "$j" ] && keep=1; done
        for s in "${!F_SIM_PID[@]}"; do [ "${F_SIM_PID[$s]}" = "$j" ] && keep=1; done
        [ $keep = 1 ] || wait "$j" 2>/dev/null || true
    done
}

# The killed workers' reservations expire after timeout_ms plus
# budget.reservation_margin_ms; give the fleet that long (and a bit) to
# charge them, while it is still running, before reading the budget.
f_settle_wait() {
    local deadline=$((SECONDS + (F_TIMEOUT_MS + 5000) / 1000 * 2 + 10)) r
    while [ $SECONDS -lt $deadline ]; do
        r=$(f_spent_json 2>/dev/null | python3 -c 'import json,sys
d=json.load(sys.stdin)
print(sum(round(b["reserved_usd"]*1e6) for b in d["budgets"] if b["kind"]=="tier"))' 2>/dev/null) || r=?
        [ "$r" = 0 ] && return 0
        sleep 1
    done
    f_log "reservations still held after the wait: $r micro-dollars"
}

f_ledger() { # f_ledger SCENARIO FAULTS DONE_AT ELAPSED
    local t
    f_keys "${F_PREFIX}results" >"$F_DIR/result-keys"
    timeout 120 kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -C -t "${F_PREFIX}dlq" \
        -o beginning -e -q -f '%k\t%h\n' >"$F_DIR/dlq" 2>/dev/null || true
    f_spent_json >"$F_DIR/budget.json" 2>"$F_DIR/budget.err" || true
    for t in "${F_TIERS[@]}"; do
        f_stats "$t" >"$F_DIR/stats-$t.json" || echo '{}' >"$F_DIR/stats-$t.json"
    done
    cat "$F_DIR"/worker-*.log "$F_DIR"/router.log 2>/dev/null |
        grep -E 'AddressSanitizer|LeakSanitizer|runtime error:' \
            >"$F_DIR/sanitizer" || true
    python3 "$F_ROOT/tests/faults/ledger.py" \
        --scenario "$1" --faults "$2" --dir "$F_DIR" --tasks "$F_TASKS" \
        --kills "$F_KILLS" --kills-mid "${F_KILLS_TIER[mid]:-0}" \
        --kills-frontier "${F_KILLS_TIER[frontier]:-0}" \
        --kills-router "${F_KILLS_TIER[router]:-0}" \
        --deaths "$F_DEATHS" --inflight "$F_INFLIGHT" \
        --price mid:"${F_PRICE_IN[mid]}":"${F_PRICE_OUT[mid]}" \
        --price frontier:"${F_PRICE_IN[frontier]}":"${F_PRICE_OUT[frontier]}" \
        --done-at "$3" --elapsed "$4" ${F_LEDGER_OUT:+--append "$F_LEDGER_OUT"}
}
