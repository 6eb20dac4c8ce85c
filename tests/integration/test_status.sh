#!/usr/bin/env bash
# `kascade status` against a running fleet: the router and a worker per
# tier on model simulators answer N tasks (local and mid) and dead-letter
# K undecodable records; then status --json shows every lag at 0, at
# least one member in each group, the K DLQ entries of the last hour,
# results per minute > 0, each tier's spend equal to the sum of its
# Results' cost_usd and the circuits scraped from the workers' /metrics
# (and from a stand-in that reports open circuits, and one that is down);
# the human output has a line per tier; --watch stops cleanly on SIGINT;
# with frontier's worker stopped, records on its topic show as its lag;
# an unreachable Redis or Kafka fails promptly with status 1 and a clear
# line; --help needs no config.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
redis_port=${KASCADE_REDIS_URL##*:}
IT_HOOKS+=("redis-cli -p $redis_port --scan --pattern '${IT_PREFIX}*' |
    xargs -r redis-cli -p $redis_port DEL")
it_check "status --help works without a config file" \
    bash -c 'cd "$1" && "$2/kascade" status --help | grep -q -- "--watch"' \
    _ "$IT_DIR" "$KS_BIN"

it_kascade topics create >"$IT_DIR/topics.out"
URLS=()
for tier in local mid frontier; do
    it_sim "$tier" --model "sim-$tier"
    IT_X+=(-X "tiers.$tier.providers.0.base_url=$SIM_URL/v1")
done
for tier in local mid frontier; do
    port=$(it_free_port)
    URLS+=("http://127.0.0.1:$port")
    it_daemon "worker-$tier" kascade-worker --tier "$tier" -X "metrics.port=$port"
done
FRONTIER=$LAST_PID
it_daemon router kascade-router
sleep 3 # the groups have formed

N=20
K=3
for i in $(seq 1 $N); do
    type=$([ $((i % 2)) = 0 ] && echo classify_intent || echo summarise)
    printf 's%d\t{"id": "s%d", "type": "%s", "input": "parcel number %d"}\n' \
        "$i" "$i" "$type" "$i"
done | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
for i in $(seq 1 $K); do printf 'bad%d\tnot json %d\n' "$i" "$i"; done |
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "every task has a result" it_wait_count results $N 120
it_check "the bad records are dead-lettered" it_wait_count dlq $K 60
it_read results >"$IT_DIR/results.jsonl"

status_json() {
    it_kascade status --json --metrics "$(IFS=,; echo "${URLS[*]}")" \
        >"$IT_DIR/status.json" 2>>"$IT_DIR/status.log"
}
# The workers' and the router's commits follow their acks within a second
# or two (auto-commit): wait until every lag reads 0.
drained() {
    status_json && python3 - "$IT_DIR/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["router"]["tasks_lag"] == 0 and
         all(t["lag"] == 0 for t in s["tiers"]) else 1)
PY
}
deadline=$((SECONDS + 30))
until drained || [ $SECONDS -ge $deadline ]; do sleep 1; done
it_check "status --json exits 0 with every section read" status_json
check() { # check DESCRIPTION PYTHON-EXPRESSION over s (status), results
    it_check "$1" python3 - "$IT_DIR/status.json" "$IT_DIR/results.jsonl" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
results = [json.loads(l)["value"] for l in open(sys.argv[2])]
tier = {t["name"]: t for t in s["tiers"]}
ok = eval(sys.argv[3])
if not ok:
    print(json.dumps(s, indent=1), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
check "the three tiers are shown" 'list(tier) == ["local", "mid", "frontier"]'
check "every tier's lag is 0 once drained" \
    'all(t["lag"] == 0 for t in s["tiers"])'
check "the router's lag on tasks and escalations is 0" \
    's["router"]["tasks_lag"] == 0 and s["router"]["escalations_lag"] == 0'
check "each tier's group and the router's have a member" \
    'all(t["members"] >= 1 for t in s["tiers"]) and s["router"]["members"] >= 1'
check "the DLQ holds the $K bad records of the last hour" \
    "s['fleet']['dlq_last_hour'] == $K"
check "results per minute are counted" \
    "s['fleet']['results_per_min'] >= 1 and s['fleet']['escalations_per_min'] == 0"
check "tasks routed per minute to local and mid add up to $N" \
    "tier['local']['in_per_min'] + tier['mid']['in_per_min'] == $N"
check "each tier's spend is the sum of its Results' cost_usd" \
    'all(abs(t["budget"]["spent_usd"] -
             sum(r["cost_usd"] or 0 for r in results if r["tier"] == t["name"]))
         < 1e-6 * (1 + len(results)) for t in s["tiers"])'
check "mid spent something (priced), against its 20 USD limit" \
    'tier["mid"]["budget"]["spent_usd"] > 0 and tier["mid"]["budget"]["limit_usd"] == 20'
check "the share of the day elapsed is a fraction" '0 <= s["day_elapsed"] <= 1'
check "every circuit is closed, as the workers report" \
    'all(v == "closed" for t in s["tiers"] for v in t["circuits"].values())'
check "no section failed" 'all(v is None for v in s["errors"].values())'

# A stand-in worker whose /metrics reports mid's circuit open and local's
# half-open: status shows the worst state any worker reports.
mkdir -p "$IT_DIR/fake"
printf '%s\n' '# TYPE kascade_circuit_state gauge' \
    'kascade_circuit_state{tier="mid",provider="mid-model"} 1' \
    'kascade_circuit_state{tier="local",provider="smollm2-135m"} 2' \
    >"$IT_DIR/fake/metrics"
FAKE_PORT=$(it_free_port)
python3 -m http.server -b 127.0.0.1 -d "$IT_DIR/fake" "$FAKE_PORT" \
    >"$IT_DIR/fake.out" 2>&1 &
IT_PIDS+=($!)
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$FAKE_PORT/metrics" >/dev/null && break
    sleep 0.1
done
URLS+=("http://127.0.0.1:$FAKE_PORT/metrics")
it_check "status --json with the stand-in worker" status_json
check "mid's circuit is open, local's half-open, frontier's closed" \
    '(tier["mid"]["circuits"] == {"mid-model": "open"} and
      tier["local"]["circuits"] == {"smollm2-135m": "half-open"} and
      tier["frontier"]["circuits"] == {"frontier-model": "closed"})'
URLS+=("http://127.0.0.1:1")
metrics_rc=0
status_json || metrics_rc=$?
it_check "a worker that cannot be scraped: status 1, said in errors" \
    test "$metrics_rc" = 1 -a "$(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["errors"]["metrics"] is not None)' \
        "$IT_DIR/status.json")" = True
it_check "and on stderr" grep -q "^kascade: status: metrics: http://127.0.0.1:1/metrics" \
    "$IT_DIR/status.log"

it_kascade status >"$IT_DIR/status.txt" 2>>"$IT_DIR/status.log"
for tier in local mid frontier; do
    it_check "the human output has a line for $tier" \
        grep -q "^$tier  " "$IT_DIR/status.txt"
done
it_check "without --metrics circuits say n/a" \
    grep -q "n/a (pass --metrics)" "$IT_DIR/status.txt"

watch_rc=0
timeout -s INT --preserve-status 5 "$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" \
    status --watch 1 >"$IT_DIR/watch.txt" 2>>"$IT_DIR/status.log" || watch_rc=$?
it_check "--watch redraws until SIGINT, then exits 0" \
    test "$watch_rc" = 0 -a "$(grep -c '^kascade status' "$IT_DIR/watch.txt")" -ge 2

# With frontier's worker gone, records put on its topic are its backlog.
it_check "frontier's worker stops" it_stop "$FRONTIER"
for i in 1 2 3 4; do printf 'f%d\t{}\n' "$i"; done |
    kcat -b "$B" -P -t "${IT_PREFIX}tier.frontier" -K $'\t'
URLS=("${URLS[@]:0:2}")
it_check "status --json without frontier's worker" status_json
check "frontier shows a lag of 4 and no member" \
    'tier["frontier"]["lag"] == 4 and tier["frontier"]["members"] == 0'

fails_promptly() { # fails_promptly WHAT PATTERN -X key=value
    local start=$SECONDS rc=0
    timeout 30 "$KS_BIN/kascade" -c "$KS_CONFIG" "${IT_X[@]}" "${@:3}" \
        status >"$IT_DIR/down-$1.txt" 2>"$IT_DIR/down-$1.err" || rc=$?
    [ "$rc" = 1 ] && [ $((SECONDS - start)) -le 15 ] &&
        grep -q "$2" "$IT_DIR/down-$1.err" ||
        { it_log "status $rc after $((SECONDS - start)) s:"; cat "$IT_DIR/down-$1.err" >&2; return 1; }
}
it_check "Redis unreachable: status 1 promptly, with a clear line" \
    fails_promptly redis "^kascade: status: redis: cannot reach Redis at redis://127.0.0.1:1" \
    -X redis.url=redis://127.0.0.1:1
it_check "Kafka unreachable: status 1 promptly, with a clear line" \
    fails_promptly kafka "^kascade: status: kafka: cannot reach Kafka at 127.0.0.1:1" \
    -X kafka.bootstrap.servers=127.0.0.1:1
