#!/usr/bin/env bash
# Circuit breakers: a tier with two providers whose first one fails every
# call (500).
# - mid (one call at a time, circuit_failures 3, a 10-minute cool-down):
#   the first three tasks try the failing provider, fall back to the
#   second and end ok; the circuit then opens and every later task goes
#   straight to the second provider: the failing one saw exactly 3 calls
#   for 20 tasks; kascade_circuit_state is 1 for it, 0 for the other.
# - frontier (circuit_failures 2, a 3 s cool-down): after the cool-down
#   the circuit goes half-open, lets a probe through, the probe fails and
#   the circuit opens again (its log says so), and the tasks still end ok.
# - local (one provider only, failing, circuit_failures 2, a 5 s
#   cool-down, no retries): two calls fail and open the circuit; the other
#   tasks wait for the cool-down, one of them probes, the probe fails, and
#   the rest end at once like tasks whose providers are exhausted, without
#   another call: 3 calls. Local is not the top tier, so each is handed on
#   (reason provider_failure) and answered by mid; no DLQ entry.
# Every task has exactly one Result.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_sim mid-a --fail 500:1
MID_A=$SIM_URL
it_sim mid-b
MID_B=$SIM_URL
it_sim front-a --fail 500:1
FRONT_A=$SIM_URL
it_sim front-b
FRONT_B=$SIM_URL
it_sim local-a --fail 500:1
LOCAL_A=$SIM_URL

# Two providers per tier: a config of this test's own.
python3 - "$KS_CONFIG" "$IT_DIR/kascade.json" "$MID_A" "$MID_B" \
    "$FRONT_A" "$FRONT_B" "$LOCAL_A" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
tiers = {t["name"]: t for t in cfg["tiers"]}
def two(tier, a, b, failures, cooldown):
    first = dict(tier["providers"][0], base_url=a + "/v1",
                 model=tier["name"] + "-a", max_retries=0,
                 circuit_failures=failures, circuit_cooldown_ms=cooldown)
    second = dict(tier["providers"][0], base_url=b + "/v1",
                  model=tier["name"] + "-b")
    tier["providers"] = [first, second]
    tier["max_inflight"] = 1
two(tiers["mid"], sys.argv[3], sys.argv[4], 3, 600000)
two(tiers["frontier"], sys.argv[5], sys.argv[6], 2, 3000)
tiers["local"]["providers"][0].update(
    base_url=sys.argv[7] + "/v1", model="local-a", max_retries=0,
    circuit_failures=2, circuit_cooldown_ms=5000)
tiers["local"]["max_inflight"] = 1
json.dump(cfg, open(sys.argv[2], "w"), indent=1)
PY
KS_CONFIG=$IT_DIR/kascade.json
it_kascade topics create >"$IT_DIR/topics.out"

MID_METRICS=$(it_free_port)
it_daemon router kascade-router
it_daemon worker-mid kascade-worker --tier mid -X "metrics.port=$MID_METRICS"
it_daemon worker-frontier kascade-worker --tier frontier
it_daemon worker-local kascade-worker --tier local

submit() { # submit PREFIX TYPE FROM TO
    for i in $(seq "$3" "$4"); do
        printf '%s-%d\t{"id":"%s-%d","type":"%s","input":"task %d"}\n' \
            "$1" "$i" "$1" "$i" "$2" "$i"
    done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'
}

submit m answer 1 20
submit f review 1 5
submit l classify_intent 1 6
it_check "31 results arrive" it_wait_count results 31 120
it_check "the mid circuit opened after 3 failed calls: 3 calls for 20 tasks" \
    test "$(it_sim_requests "$MID_A")" -eq 3
it_check "the second mid provider answered every task (20, and 6 from local)" \
    test "$(it_sim_requests "$MID_B")" -eq 26
it_check "kascade_circuit_state is 1 (open) for mid-a" \
    test "$(it_metric "$MID_METRICS" '^kascade_circuit_state[{]tier="mid",provider="mid-a"')" = 1
it_check "kascade_circuit_state is 0 (closed) for mid-b" \
    test "$(it_metric "$MID_METRICS" '^kascade_circuit_state[{]tier="mid",provider="mid-b"')" = 0
it_check "the worker logged the circuit opening" \
    grep -q 'circuit of tier mid provider 0 (mid-a): closed -> open' \
        "$IT_DIR/worker-mid.log"
front_a=$(it_sim_requests "$FRONT_A")
it_check "the frontier circuit opened after 2 failed calls" test "$front_a" -eq 2

# Past the frontier cool-down: one probe goes to the failing provider.
sleep 4
submit f review 6 10
submit m answer 21 30
it_check "46 results arrive" it_wait_count results 46 120
it_check "the lone local provider got 2 calls and 1 probe" \
    test "$(it_sim_requests "$LOCAL_A")" -eq 3
it_check "the open mid circuit kept every new task away from mid-a" \
    test "$(it_sim_requests "$MID_A")" -eq 3
it_check "the half-open frontier circuit let a probe through" \
    test "$(it_sim_requests "$FRONT_A")" -gt "$front_a"
it_check "the failed probe opened the circuit again" \
    grep -q 'frontier-a): half-open -> open' "$IT_DIR/worker-frontier.log"

sleep 1
it_read results >"$IT_DIR/results.jsonl"
it_read dlq >"$IT_DIR/dlq.jsonl"
check() {
    python3 - "$IT_DIR/results.jsonl" "$IT_DIR/dlq.jsonl" <<'PY'
import collections, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
dlq = [json.loads(l) for l in open(sys.argv[2])]
ids = collections.Counter(r["id"] for r in res)
by = collections.Counter((r["id"][0], r["status"], r["model"]) for r in res)
want = {("m", "ok", "mid-b"): 30, ("f", "ok", "frontier-b"): 10,
        ("l", "ok", "mid-b"): 6}
handed = sum(r["id"][0] == "l" and r["path"][0]["tier"] == "local" and
             r["path"][0]["reason"] == "provider_failure" for r in res)
ok = len(ids) == 46 and max(ids.values()) == 1 and dict(by) == want and \
    handed == 6 and not dlq
print(len(ids), ids.most_common(1), dict(by), handed, len(dlq))
sys.exit(0 if ok else 1)
PY
}
it_check "every task has exactly one Result: ok from the second provider, or handed on from local" check
