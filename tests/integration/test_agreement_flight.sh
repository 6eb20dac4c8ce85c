#!/usr/bin/env bash
# Agreement without the provider's "n": tier mid with samples 3 and no
# supports_n starts a task's 3 calls at once, in flight together, under
# one reservation of the 3 calls' worst case:
# 1. against kascade-modelsim with a 400 ms latency, one task: the
#    simulator sees 3 requests in flight at once (/stats inflight_peak),
#    the Result carries the usage of the 3 calls (the simulator's bill)
#    and their cost at the tier's prices, the tier's Redis budget spent
#    is the Results' cost and no reservation is left open; under the
#    provider's rpm each of the 3 calls counts (3 admissions in the
#    fleet's rate window);
# 2. the same against a simulator whose second request gets a 500: the
#    other two answers are kept (and charged), the failed one is asked
#    again (4 requests, 3 billed), the Result has 3 answers and the
#    charges are the 3 billed calls'; the first turn reserved 3 calls'
#    worst case, the second 1 call's;
# 3. the same with the second request hanging past the provider's timeout
#    (1.5 s): it was sent, so it is charged one call's worst case, on top
#    of the other calls' usage (spent = Results' cost + one worst case);
# 4. a worker stopped (drain timeout 1 s) while a task's 3 calls hang in
#    the simulator: the 3 are cancelled and each is charged at one call's
#    worst case (3 of them: the turn's whole reservation), nothing is left
#    reserved, and the sanitizer sees no leaked call.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

METRICS=$(it_free_port)
PRICE_IN=100  # micro-USD per input token (USD per Mtok)
PRICE_OUT=400 # micro-USD per output token
IT_X+=(-X "tiers.mid.samples=3"
       -X "tiers.mid.escalate_below=0"
       -X "tiers.mid.max_inflight=8"
       -X "tiers.mid.providers.0.price_in_per_mtok=$PRICE_IN"
       -X "tiers.mid.providers.0.price_out_per_mtok=$PRICE_OUT"
       -X "tiers.mid.providers.0.circuit_failures=1000"
       -X "metrics.port=$METRICS")
it_kascade topics create >"$IT_DIR/topics.out"

redis_port=${KASCADE_REDIS_URL##*:}
key="${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:mid"
field() { redis-cli -p "$redis_port" HGET "$key" "$1"; }
stat() { # stat URL FIELD: a number from the simulator's /stats
    curl -sf "$1/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$2"
}
poll_start() { # polls the tier's `reserved` every 20 ms into reserved.log
    while :; do field reserved; sleep 0.02; done >"$IT_DIR/reserved.log" &
    POLL_PID=$!
    IT_PIDS+=("$POLL_PID")
}
poll_seen() { # stops the poll; prints the distinct values > 0, smallest first
    kill "$POLL_PID" 2>/dev/null || true
    wait "$POLL_PID" 2>/dev/null || true
    grep -E '^[1-9][0-9]*$' "$IT_DIR/reserved.log" | sort -n -u | tr '\n' ' '
}

# result ID SIM: the Result of task ID is ok, source agreement with
# confidence 1, its usage is the simulator's bill and its cost the bill
# at the tier's prices
result() {
    it_read results >"$IT_DIR/results.jsonl"
    curl -sf "$2/stats" >"$IT_DIR/stats.json"
    python3 - "$1" "$IT_DIR/results.jsonl" "$IT_DIR/stats.json" \
        "$PRICE_IN" "$PRICE_OUT" <<'PY'
import decimal, json, sys
rid, pin, pout = sys.argv[1], int(sys.argv[4]), int(sys.argv[5])
res = [json.loads(l)["value"] for l in open(sys.argv[2])]
res = [r for r in res if r.get("id") == rid]
bill = json.load(open(sys.argv[3]))["billed"]
bad = []
if len(res) != 1:
    bad.append("%d Results for %s" % (len(res), rid))
else:
    r = res[0]
    u = r.get("usage") or {}
    cost = int(decimal.Decimal(str(r.get("cost_usd"))) * 1000000)
    want = bill["input_tokens"] * pin + bill["output_tokens"] * pout
    if r.get("status") != "ok" or r.get("confidence_source") != "agreement" \
            or r.get("confidence") != 1:
        bad.append("status/source/confidence %r/%r/%r" % (
            r.get("status"), r.get("confidence_source"), r.get("confidence")))
    if bill["calls"] != 3:
        bad.append("the simulator billed %d calls, want 3" % bill["calls"])
    if (u.get("input_tokens"), u.get("output_tokens")) != \
            (bill["input_tokens"], bill["output_tokens"]):
        bad.append("usage %r is not the 3 calls' bill %r" % (u, bill))
    if cost != want:
        bad.append("cost %d micro-USD, want %d (3 calls at the prices)" % (cost, want))
    print("%s: usage %r, cost %d micro-USD, bill %r" % (rid, u, cost, bill),
          file=sys.stderr)
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}

spent_is_cost() { # the tier's spent is the sum of the Results' costs
    it_read results >"$IT_DIR/results.jsonl"
    local want
    want=$(it_cost_micro "$IT_DIR/results.jsonl")
    it_log "spent $(field spent), Results' cost $want micro-USD"
    test "$(field spent)" = "$want"
}

calls() { # calls STATUS: the worker's kascade_requests_total of tier mid
    it_metric "$METRICS" "^kascade_requests_total[{]tier=\"mid\",.*status=\"$1\""
}

# worker_on N SIM_URL [-X k=v]...: worker-N of tier mid calling the
# simulator at SIM_URL, assigned; sets WPID
worker_on() {
    local n=$1 url=$2
    shift 2
    it_daemon "worker-$n" kascade-worker --tier mid \
        -X "tiers.mid.providers.0.base_url=$url/v1" "$@"
    WPID=$LAST_PID
    it_check "worker $n is assigned" it_wait_assigned "worker-$n"
}

# 1. three calls in flight at once
it_sim mid --latency-ms 400
SIM1=$SIM_URL
worker_on 1 "$SIM1" -X "tiers.mid.providers.0.rpm=1000"
poll_start
it_send_tier mid fl 1 '{"max_output_tokens":8}'
it_check "the Result arrives" it_wait_count results 1 60
seen=($(poll_seen))
it_log "reserved: ${seen[*]} micro-USD"
it_check "one reservation for the 3 calls in flight" test "${#seen[@]}" -eq 1
worst3=${seen[0]:-0}
sleep 1 # the settle goes out with the next loop turn
it_check "simulator: 3 requests for the task" test "$(stat "$SIM1" '["requests"]')" -eq 3
it_check "simulator: the 3 were in flight at once (inflight_peak)" \
    test "$(stat "$SIM1" '["inflight_peak"]')" -ge 3
it_check "the Result: 3 answers agree; usage and cost are the 3 calls'" \
    result fl-1 "$SIM1"
it_check "Redis spent is the Results' cost" spent_is_cost
it_check "no reservation is left open" test "$(field reserved)" = 0
it_check "the worker counts 3 ok calls" test "$(calls ok)" -eq 3
it_check "rpm: the 3 calls are 3 admissions in the rate window" \
    test "$(redis-cli -p "$redis_port" ZCARD "${IT_PREFIX}rate:{mid:0}")" -eq 3
it_check "worker 1 stops cleanly" it_stop "$WPID"

# 2. one of the 3 calls gets a 500: asked again, the others kept
it_sim mid-500 --latency-ms 400 --fault-schedule 1-2:500
SIM2=$SIM_URL
worker_on 2 "$SIM2"
poll_start
it_send_tier mid fail 1 '{"max_output_tokens":8}'
it_check "the Result arrives" it_wait_count results 2 60
seen=($(poll_seen))
it_log "reserved: ${seen[*]} micro-USD"
it_check "turn 1 reserved the 3 calls' worst case, turn 2 one call's" \
    test "${#seen[@]}" -eq 2 -a "${seen[1]:-0}" -eq "$worst3" \
    -a "$((${seen[0]:-0} * 3))" -eq "$worst3"
worst1=${seen[0]:-0} # one call's worst case
sleep 1
it_check "simulator: 4 requests (one 500, asked again)" \
    test "$(stat "$SIM2" '["requests"]')" -eq 4
it_check "simulator: one 500" test "$(stat "$SIM2" '["errors"]["500"]')" -eq 1
it_check "simulator: the first 3 were in flight at once" \
    test "$(stat "$SIM2" '["inflight_peak"]')" -ge 3
it_check "the Result: 3 answers agree; usage and cost are the 3 billed calls'" \
    result fail-1 "$SIM2"
it_check "Redis spent is the Results' cost" spent_is_cost
it_check "no reservation is left open" test "$(field reserved)" = 0
it_check "the worker counts 3 ok calls and one 500" \
    test "$(calls ok)" -eq 3 -a "$(calls retry)" -eq 1
it_check "worker 2 stops cleanly" it_stop "$WPID"

# 3. one of the 3 calls times out: one call's worst case, the rest usage
it_sim mid-hang1 --latency-ms 400 --fault-schedule 1-2:hang --hang-ms 5000
SIM4=$SIM_URL
spent0=$(field spent)
worker_on 4 "$SIM4" -X "tiers.mid.providers.0.timeout_ms=1500"
it_send_tier mid slow 1 '{"max_output_tokens":8}'
it_check "the Result arrives" it_wait_count results 3 60
sleep 1
it_check "the Result: 3 answers agree; usage and cost are the 3 answered calls'" \
    result slow-1 "$SIM4"
it_read results >"$IT_DIR/results.jsonl"
cost4=$(python3 -c 'import decimal,json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)["value"]
    if r["id"] == "slow-1": print(int(decimal.Decimal(str(r["cost_usd"])) * 1000000))' \
    "$IT_DIR/results.jsonl")
it_log "spent $spent0 -> $(field spent); Result cost $cost4, one call's worst case $worst1"
it_check "spent: the answered calls' usage plus one worst case for the timeout" \
    test "$(($(field spent) - spent0))" -eq "$((cost4 + worst1))"
it_check "no reservation is left open" test "$(field reserved)" = 0
it_check "the worker counts 3 ok calls and one timeout" \
    test "$(calls ok)" -eq 3 -a "$(calls timeout)" -eq 1
it_check "worker 4 stops cleanly" it_stop "$WPID"

# 4. stopped while the 3 calls hang: cancelled, charged at worst case
it_sim mid-hang --latency-ms 30000
SIM3=$SIM_URL
spent0=$(field spent)
worker_on 3 "$SIM3" -X "drain_timeout_ms=1000"
it_send_tier mid hang 1 '{"max_output_tokens":8}'
inflight3() {
    for _ in $(seq 100); do
        [ "$(stat "$SIM3" '["inflight"]')" -eq 3 ] && return 0
        sleep 0.1
    done
    return 1
}
it_check "the task's 3 calls are in flight" inflight3
it_stop "$WPID" || true # its status says a job was abandoned
it_check "worker 3 abandoned the task at the drain deadline" \
    grep -q 'drain deadline: abandoned 1 job' "$IT_DIR/worker-3.log"
sleep 1
it_log "spent $spent0 -> $(field spent); one call's worst case $worst1"
it_check "the 3 cancelled calls are charged their worst case each" \
    test "$(($(field spent) - spent0))" -eq "$((3 * worst1))"
it_check "no reservation is left open" test "$(field reserved)" = 0
it_check "no Result for the cancelled task" test "$(it_count results)" -eq 3
