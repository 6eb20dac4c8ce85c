#!/usr/bin/env bash
# The learned score in the router: a model from `kascade train --kind
# router` (routing.score_model) sends tasks it scores at or above
# routing.score_threshold one tier up (kascade-reason: score). SIGHUP
# loads a new model file; a corrupt one is refused and the old model
# stays; a triage model, or a missing file, stops start-up with the key.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
K="$KS_BIN/kascade"
CFG="$IT_DIR/kascade.json"
python3 - "$IT_DIR" <<'PY'
import json, random, sys
d = sys.argv[1]
rnd = random.Random(7)
easy = ["where is my order", "track my parcel", "my order is late",
        "cancel my order", "the parcel has not arrived", "order status"]
hard = ["prove the theorem", "derive the integral", "prove the lemma",
        "show the series converges", "prove it by induction", "bound the prime"]
def text(pool):
    return " ".join(rnd.sample(pool, 2)) + " " + str(rnd.randint(1, 99))
for name, flip in (("hard", False), ("easy", True)):
    with open(f"{d}/{name}.jsonl", "w") as f:
        for _ in range(100):
            f.write(json.dumps({"input": text(easy), "label": int(flip)}) + "\n")
            f.write(json.dumps({"input": text(hard), "label": int(not flip)}) + "\n")
with open(f"{d}/triage.jsonl", "w") as f:
    for _ in range(60):
        f.write(json.dumps({"input": text(easy), "label": "orders"}) + "\n")
        f.write(json.dumps({"input": text(hard), "label": "maths"}) + "\n")
PY
"$K" train --kind router -i "$IT_DIR/hard.jsonl" -o "$IT_DIR/hard.lrm" --bits 14 >"$IT_DIR/train.out" 2>&1
"$K" train --kind router -i "$IT_DIR/easy.jsonl" -o "$IT_DIR/easy.lrm" --bits 14 >>"$IT_DIR/train.out" 2>&1
"$K" train --kind triage -i "$IT_DIR/triage.jsonl" -o "$IT_DIR/triage.lrm" --bits 14 >>"$IT_DIR/train.out" 2>&1
cp "$IT_DIR/hard.lrm" "$IT_DIR/model.lrm"
python3 - "$KS_ROOT/deploy/examples/kascade.json" "$CFG" "$IT_DIR/model.lrm" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["routing"]["score_model"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
KS_CONFIG=$CFG
submit() { # submit ID TEXT
    printf '%s\t{"id": "%s", "type": "classify_intent", "input": "%s"}\n' "$1" "$1" "$2" |
        kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
}
hdr() { # hdr TOPIC ID HEADER
    it_read "$1" | python3 -c '
import json, sys
m = [json.loads(l) for l in sys.stdin]
m = [r for r in m if r["key"] == sys.argv[1]]
print(m[-1]["headers"].get(sys.argv[2], "") if m else "missing")' "$2" "$3"
}
hup_and_wait() { # hup_and_wait LOG-PATTERN
    local before
    before=$(grep -c "$1" "$IT_DIR/router.log" || true)
    kill -HUP "$ROUTER"
    for _ in $(seq 50); do
        [ "$(grep -c "$1" "$IT_DIR/router.log" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    return 1
}

it_kascade topics create >"$IT_DIR/topics.out"
it_daemon router kascade-router
ROUTER=$LAST_PID
submit s1 "where is my order 12"
submit s2 "prove the theorem by induction 31"
it_check "an easy task stays on local" it_wait_count tier.local 1 30
it_check "a hard task goes one tier up" it_wait_count tier.mid 1 30
it_check "by the score" test "$(hdr tier.mid s2 kascade-reason)" = score
it_check "and the easy one by the table" test "$(hdr tier.local s1 kascade-reason)" = task_type

cp "$IT_DIR/easy.lrm" "$IT_DIR/model.lrm"
it_check "SIGHUP loads the new model" hup_and_wait "reloaded:"
submit s3 "where is my order 12"
submit s4 "prove the theorem by induction 31"
it_check "now the easy text goes up" it_wait_count tier.mid 2 30
it_check "and the hard one stays" it_wait_count tier.local 2 30
it_check "s3 by the score" test "$(hdr tier.mid s3 kascade-reason)" = score

head -c 100 "$IT_DIR/easy.lrm" >"$IT_DIR/model.lrm"
it_check "a corrupt model is refused on SIGHUP" hup_and_wait "reload failed"
it_check "naming the key" grep -q "key 'routing.score_model'" "$IT_DIR/router.log"
submit s5 "where is my order 12"
it_check "the old model stays in use" it_wait_count tier.mid 3 30
it_check "router exits 0 on SIGTERM" it_stop "$ROUTER"

rc=0
"$KS_BIN/kascade-router" -c "$CFG" "${IT_X[@]}" -X "routing.score_model=$IT_DIR/triage.lrm" \
    >"$IT_DIR/triage-start.log" 2>&1 || rc=$?
it_check "a triage model stops start-up" test "$rc" -ne 0
it_check "with the key and the reason" \
    grep -q "key 'routing.score_model': .*triage model" "$IT_DIR/triage-start.log"
rc=0
"$KS_BIN/kascade-router" -c "$CFG" "${IT_X[@]}" -X "routing.score_model=$IT_DIR/none.lrm" \
    >"$IT_DIR/missing-start.log" 2>&1 || rc=$?
it_check "a missing model file stops start-up" test "$rc" -ne 0
