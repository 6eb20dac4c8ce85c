#!/usr/bin/env bash
# The "verifier" confidence source: tier local has a verifier model
# (kascade train --kind verifier on labelled outcomes) and the config's
# answer_pattern for type math. The simulator replays scripted answers (and
# logprobs, so the verifier's model combines both: confidence_source
# "combined" with confidence_parts logprob and verifier): one
# that follows the pattern and whose arithmetic recomputes is answered by
# tier local; one whose arithmetic is wrong
# and one with no final answer in the pattern are handed on as
# low_confidence. A model of another kind, or a missing one, stops the
# worker at start with the file and the reason. Then with samples 3 the
# same tier calls the simulator three times for a task and the verifier
# takes the agreement (1: the simulator repeats itself) as an input too:
# "combined" with parts logprob, agreement and verifier. Last, through the
# Anthropic dialect (no logprobs) the verifier is the only signal: source
# "verifier".
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PATTERN='####\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)'
python3 - "$IT_DIR/train.jsonl" "$IT_DIR/replay.csv" <<'PY'
import csv, json, random, sys
random.seed(11)
names = ["Ana", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"]
things = ["apples", "pens", "stamps", "coins", "cards", "shells"]

def task(i):
    n, m = random.randint(3, 90), random.randint(2, 60)
    who, what = random.choice(names), random.choice(things)
    # no running case number: the prompt's largest number would then grow
    # past anything seen in training for the tasks sent afterwards
    return (n, m, f"{who} has {n} {what} and gets {m} more. "
                  f"How many {what} does {who} have now?")

def answer(n, m, kind):
    s = n + m
    if kind == "right":
        return f"{n} + {m} = {s}\nSo the total is {s}.\n#### {s}"
    if kind == "bad_arith":
        return f"{n} + {m} = {s + 7}\nSo the total is {s + 7}.\n#### {s + 7}"
    return f"I think it is probably about {s}, maybe a little more."

with open(sys.argv[1], "w") as f:
    for i in range(400):
        n, m, prompt = task(i)
        kind = random.choice(["right", "right", "bad_arith", "no_final"])
        ok = kind == "right" if random.random() > 0.05 else kind != "right"
        # the signals a worker will have (logprobs, samples' agreement)
        # are in the outcomes: a model uses only what it was trained with
        f.write(json.dumps({"type": "math", "prompt": prompt, "tiers": {
            "local": {"answer": answer(n, m, kind), "correct": ok,
                      "logprobs": {"mean": -0.3},
                      "agreement": random.choice([1, 0.67])}}}) + "\n")
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["prompt", "local_response"])
    for i, kind in enumerate(["right", "bad_arith", "no_final"]):
        n, m, prompt = task(1000 + i)
        w.writerow([prompt, answer(n, m, kind)])
        with open(sys.argv[2] + ".%d" % i, "w") as t:
            t.write(json.dumps({"id": "v-%d" % i, "type": "math",
                                "input": prompt}))
PY
"$KS_BIN/kascade" train --kind verifier --tier local \
    --answer-pattern "math=$PATTERN" -i "$IT_DIR/train.jsonl" \
    -o "$IT_DIR/verifier.model" >"$IT_DIR/train.out" 2>&1 ||
    it_die "kascade train --kind verifier failed: $(cat "$IT_DIR/train.out")"
"$KS_BIN/kascade" train --kind router -i <(
    python3 -c 'import json
for i in range(200): print(json.dumps({"input": "x %d" % i, "label": i % 2}))') \
    -o "$IT_DIR/router.model" >/dev/null 2>&1 || it_die "router model"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --replay "$IT_DIR/replay.csv" --replay-model local
LOCAL_URL=$SIM_URL
IT_X+=(-X "tiers.local.providers.0.base_url=$LOCAL_URL/v1"
       -X "tiers.local.verifier_model=$IT_DIR/verifier.model"
       -X "tiers.local.escalate_below=0.5"
       -X "answer_patterns.math=$PATTERN")

bad_start() { # bad_start FILE WORD: the worker refuses to start, naming why
    ! "$KS_BIN/kascade-worker" -c "$KS_CONFIG" "${IT_X[@]}" --tier local \
        -X "tiers.local.verifier_model=$1" >"$IT_DIR/bad.out" 2>&1 &&
        grep -q "verifier model $1: .*$2" "$IT_DIR/bad.out"
}
it_check "a missing verifier model stops start-up" bad_start "$IT_DIR/nope" ""
it_check "a router model is refused as a verifier" \
    bad_start "$IT_DIR/router.model" "not a verifier"

it_daemon worker-local kascade-worker --tier local
for i in 0 1 2; do
    printf 'v-%d\t%s\n' "$i" "$(cat "$IT_DIR/replay.csv.$i")"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t'
wait_three() {
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        [ $(($(it_count results) + $(it_count escalations))) -ge 3 ] && return 0
        sleep 1
    done
    return 1
}
it_check "every task is answered or handed on" wait_three
check() {
    python3 - "$1" "$2" <<'PY'
import json, sys
res = {r["id"]: r for r in (json.loads(l)["value"] for l in open(sys.argv[1]))}
esc = {e["id"]: e for e in (json.loads(l)["value"] for l in open(sys.argv[2]))}
print("answered", {i: (r["confidence_source"], round(r["confidence"], 3))
                   for i, r in res.items()},
      "handed on", {i: (e["reason"], round(e["confidence"], 3))
                    for i, e in esc.items()})
ok = set(res) == {"v-0"} and set(esc) == {"v-1", "v-2"}
r = res.get("v-0", {})
# the simulator gives logprobs too: the verifier's model combines them
parts = r.get("confidence_parts", {})
ok = ok and r["confidence_source"] == "combined" and \
    set(parts) == {"logprob", "verifier"} and \
    all(0 <= v <= 1 for v in parts.values()) and \
    r["confidence"] >= 0.5 and r["tier"] == "local"
for e in esc.values():
    ok = ok and e["confidence"] < 0.5 and e["reason"] == "low_confidence" \
        and e["from_tier"] == "local"
sys.exit(0 if ok else 1)
PY
}
it_read results >"$IT_DIR/results.jsonl"
it_read escalations >"$IT_DIR/esc.jsonl"
it_check "the checked answer is kept (combined: logprob + verifier), the failing ones handed on" \
    check "$IT_DIR/results.jsonl" "$IT_DIR/esc.jsonl"
it_check "every task was one call to tier local's model" \
    test "$(it_sim_requests "$LOCAL_URL")" -eq 3

it_stop "$LAST_PID" || true
it_daemon worker-local2 kascade-worker --tier local -X tiers.local.samples=3
printf 'v-3\t%s\n' "$(sed 's/"v-0"/"v-3"/' "$IT_DIR/replay.csv.0")" |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t'
it_check "the sampled task is answered" it_wait_count results 2 60
check_samples() {
    it_read results | python3 -c '
import json, sys
r = [json.loads(l)["value"] for l in sys.stdin]
r = [x for x in r if x["id"] == "v-3"]
print(r and (r[0]["confidence_source"], r[0].get("confidence_parts")))
ok = len(r) == 1 and r[0]["confidence_source"] == "combined" and \
    set(r[0]["confidence_parts"]) == {"logprob", "agreement", "verifier"} and \
    r[0]["confidence_parts"]["agreement"] == 1 and r[0]["confidence"] >= 0.5
sys.exit(0 if ok else 1)'
}
it_check "three samples: combined with parts logprob, agreement, verifier" \
    check_samples
it_check "three more calls to tier local's model" \
    test "$(it_sim_requests "$LOCAL_URL")" -eq 6

# A provider without logprobs (the Anthropic dialect): the verifier is the
# only signal, source "verifier", no parts.
it_stop "$LAST_PID" || true
export IT_VERIFIER_KEY=sim-key
it_daemon worker-local3 kascade-worker --tier local \
    -X tiers.local.providers.0.kind=anthropic \
    -X tiers.local.providers.0.api_key_env=IT_VERIFIER_KEY
printf 'v-4\t%s\n' "$(sed 's/"v-0"/"v-4"/' "$IT_DIR/replay.csv.0")" |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t'
it_check "the Anthropic-dialect task is answered" it_wait_count results 3 60
check_alone() {
    it_read results | python3 -c '
import json, sys
r = [json.loads(l)["value"] for l in sys.stdin]
r = [x for x in r if x["id"] == "v-4"]
print(r and (r[0]["confidence_source"], r[0]["confidence"], r[0].get("confidence_parts")))
ok = len(r) == 1 and r[0]["confidence_source"] == "verifier" and \
    "confidence_parts" not in r[0] and r[0]["confidence"] >= 0.5
sys.exit(0 if ok else 1)'
}
it_check "no logprobs: source verifier, no parts" check_alone
