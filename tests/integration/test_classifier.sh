#!/usr/bin/env bash
# The "classifier" provider: tier local answers classify tasks in
# process with a triage model trained by `kascade train --kind triage`:
# the label is the output, its calibrated probability the confidence
# (source "classifier"), no HTTP call and no cost. A label the model is
# unsure of (below escalate_below) is handed on instead. A
# model file that is missing or of the wrong kind stops start-up with the
# file and the reason.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

python3 - "$IT_DIR/train.jsonl" <<'PY'
import json, random, sys
random.seed(7)
words = {"billing": ["charged", "invoice", "refund", "payment", "card"],
         "shipping": ["parcel", "delivery", "courier", "tracking", "shipped"],
         "account": ["password", "login", "username", "locked", "profile"]}
filler = ["my", "the", "please", "help", "today", "again", "was", "is"]
with open(sys.argv[1], "w") as f:
    for i in range(600):
        label = list(words)[i % 3]
        text = " ".join(random.sample(words[label], 2) + random.sample(filler, 3))
        if random.random() < 0.1:  # label noise: calibration has work to do
            label = random.choice(list(words))
        f.write(json.dumps({"input": text, "label": label}) + "\n")
PY
"$KS_BIN/kascade" train --kind triage -i "$IT_DIR/train.jsonl" \
    -o "$IT_DIR/triage.model" >"$IT_DIR/train.out" 2>&1 ||
    it_die "kascade train failed: $(cat "$IT_DIR/train.out")"
"$KS_BIN/kascade" train --kind router -i <(
    python3 -c 'import json
for i in range(200): print(json.dumps({"input": "x %d" % i, "label": i % 2}))') \
    -o "$IT_DIR/router.model" >/dev/null 2>&1 || it_die "router model"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --confidence 0.9
MID_URL=$SIM_URL
IT_X+=(-X "tiers.local.providers.0.kind=classifier"
       -X "tiers.local.providers.0.model_file=$IT_DIR/triage.model"
       -X "tiers.local.escalate_below=0.8"
       -X "tiers.mid.providers.0.base_url=$MID_URL/v1")

bad_start() { # bad_start FILE WORD: the worker refuses to start, naming why
    ! "$KS_BIN/kascade-worker" -c "$KS_CONFIG" "${IT_X[@]}" --tier local \
        -X "tiers.local.providers.0.model_file=$1" >"$IT_DIR/bad.out" 2>&1 &&
        grep -q "model_file $1: .*$2" "$IT_DIR/bad.out"
}
it_check "a missing model file stops start-up" bad_start "$IT_DIR/nope" ""
it_check "a router model is refused for a classifier" \
    bad_start "$IT_DIR/router.model" "not a triage"

it_daemon worker-local kascade-worker --tier local
{
    printf 'c-1\t{"id":"c-1","type":"classify_intent","input":"I was charged twice, refund my card"}\n'
    printf 'c-2\t{"id":"c-2","type":"classify_intent","input":"where is my parcel, tracking says shipped"}\n'
    printf 'c-3\t{"id":"c-3","type":"classify_intent","input":"locked out, password reset for my login"}\n'
} | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t'
printf 'u-1\t{"id":"u-1","type":"classify_intent","input":"refund the parcel invoice delivery"}\n' |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t'
wait_four() {
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        [ $(($(it_count results) + $(it_count escalations))) -ge 4 ] && return 0
        sleep 1
    done
    return 1
}
it_check "every task is answered or handed on" wait_four
check() {
    python3 - "$1" "$2" <<'PY'
import json, sys
want = {"c-1": "billing", "c-2": "shipping", "c-3": "account"}
res = {r["id"]: r for r in (json.loads(l)["value"] for l in open(sys.argv[1]))}
esc = {e["id"]: e for e in (json.loads(l)["value"] for l in open(sys.argv[2]))}
print("answered", {i: (r["output"], round(r["confidence"], 3)) for i, r in res.items()},
      "handed on", {i: round(e["confidence"], 3) for i, e in esc.items()})
ok = set(res) | set(esc) == set(want) | {"u-1"} and not set(res) & set(esc)
ok = ok and res and "u-1" in esc
for i, r in res.items():
    ok = ok and r["output"] == want.get(i) and r["confidence"] >= 0.8 and \
        r["confidence_source"] == "classifier" and r["cost_usd"] == 0 and \
        r["tier"] == "local"
for e in esc.values():
    ok = ok and e["confidence"] < 0.8 and e["reason"] == "low_confidence" \
        and e["from_tier"] == "local"
sys.exit(0 if ok else 1)
PY
}
it_read results >"$IT_DIR/results.jsonl"
it_read escalations >"$IT_DIR/esc.jsonl"
it_check "confident labels answered (source classifier, no cost), the rest handed on" \
    check "$IT_DIR/results.jsonl" "$IT_DIR/esc.jsonl"
it_check "no HTTP call was made for the classifier tier" \
    test "$(it_sim_requests "$MID_URL")" -eq 0
