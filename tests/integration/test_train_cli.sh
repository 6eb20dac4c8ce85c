#!/usr/bin/env bash
# `kascade train` and `kascade eval`, offline (no broker, no Redis): a
# router and a triage model trained from JSONL, bad lines refused with
# their line number, eval ranking a toy test set better than random
# routing, and a corrupt or wrong-kind model refused with a reason.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

K="$KS_BIN/kascade"
LOG="$IT_DIR/cli.log"
status_of() { # status_of EXPECTED COMMAND...: the command exits with EXPECTED
    local rc=0
    "${@:2}" >"$IT_DIR/out.txt" 2>"$IT_DIR/err.txt" || rc=$?
    cat "$IT_DIR/out.txt" "$IT_DIR/err.txt" >>"$LOG"
    [ "$rc" = "$1" ] || { it_log "exit status $rc, expected $1: ${*:2}"; cat "$IT_DIR/err.txt" >&2; return 1; }
}
said() { grep -q -- "$1" "$IT_DIR/out.txt" "$IT_DIR/err.txt"; }

# Orders are easy for the weak model, proofs are not.
python3 - "$IT_DIR" <<'PY'
import json, random, sys
d = sys.argv[1]
rnd = random.Random(5)
easy = ["where is my order", "track my parcel", "my order is late",
        "cancel my order", "the parcel has not arrived", "order status"]
hard = ["prove the theorem", "derive the integral", "prove the lemma",
        "show the series converges", "prove it by induction", "bound the prime"]
def text(pool):
    return " ".join(rnd.sample(pool, 2)) + " " + str(rnd.randint(1, 99))
with open(f"{d}/train.jsonl", "w") as f:
    for _ in range(100):
        f.write(json.dumps({"input": text(easy), "label": 0}) + "\n")
        f.write(json.dumps({"input": text(hard), "label": 1}) + "\n")
    f.write("\n")  # blank lines are skipped
with open(f"{d}/test.jsonl", "w") as f:
    for _ in range(50):
        f.write(json.dumps({"input": text(easy), "weak_correct": True,
                            "strong_correct": True}) + "\n")
        f.write(json.dumps({"input": text(hard), "weak_correct": False,
                            "strong_correct": True}) + "\n")
with open(f"{d}/triage.jsonl", "w") as f:
    for _ in range(60):
        f.write(json.dumps({"input": text(easy), "label": "orders"}) + "\n")
        f.write(json.dumps({"input": text(hard), "label": "maths"}) + "\n")
with open(f"{d}/triage_test.jsonl", "w") as f:
    for _ in range(10):
        f.write(json.dumps({"input": text(easy), "label": "orders"}) + "\n")
        f.write(json.dumps({"input": text(hard), "label": "maths"}) + "\n")
    f.write(json.dumps({"input": "refund please", "label": "billing"}) + "\n")
with open(f"{d}/badlabel.jsonl", "w") as f:
    f.write('{"input": "a", "label": 0}\n{"input": "b", "label": 1}\n')
    f.write('{"input": "c", "label": "x"}\n')
with open(f"{d}/notjson.jsonl", "w") as f:
    f.write('{"input": "a", "label": 0}\nnot json\n')
with open(f"{d}/badtest.jsonl", "w") as f:
    f.write('{"input": "a", "weak_correct": true, "strong_correct": true}\n')
    f.write('{"input": "b", "weak_correct": 1, "strong_correct": true}\n')
PY

it_check "train --kind router succeeds" \
    status_of 0 "$K" train --kind router -i "$IT_DIR/train.jsonl" -o "$IT_DIR/r.lrm" --bits 14
it_check "it reports 200 examples, 40 held out" said "200 examples (160 trained on, 40 held out)"
it_check "it prints the held-out accuracy (1.0 on a separable set)" said "held-out accuracy       1.0000"
it_check "it prints a 10-bin calibration table" \
    test "$(grep -c '^  0\.[0-9]-[01]\.[0-9]' "$IT_DIR/out.txt")" = 10
it_check "the model file exists" test -s "$IT_DIR/r.lrm"

it_check "the same seed writes the same model" \
    status_of 0 "$K" train --kind router -i "$IT_DIR/train.jsonl" -o "$IT_DIR/r2.lrm" --bits 14
it_check "byte for byte" cmp -s "$IT_DIR/r.lrm" "$IT_DIR/r2.lrm"

it_check "a bad label stops training" \
    status_of 1 "$K" train --kind router -i "$IT_DIR/badlabel.jsonl" -o "$IT_DIR/bad.lrm"
it_check "with its line number" said "badlabel.jsonl:3: \"label\" must be 0 or 1"
it_check "and writes no model" test ! -e "$IT_DIR/bad.lrm"
it_check "a line that is not JSON stops training" \
    status_of 1 "$K" train --kind router -i "$IT_DIR/notjson.jsonl" -o "$IT_DIR/bad.lrm"
it_check "with its line number" said "notjson.jsonl:2: not a JSON object"
it_check "a missing input file is an error" \
    status_of 1 "$K" train --kind router -i "$IT_DIR/nope.jsonl" -o "$IT_DIR/bad.lrm"
it_check "an unknown kind is a usage error" \
    status_of 2 "$K" train --kind ranker -i "$IT_DIR/train.jsonl" -o "$IT_DIR/bad.lrm"
it_check "--bits out of range is a usage error" \
    status_of 2 "$K" train --kind router -i "$IT_DIR/train.jsonl" -o "$IT_DIR/bad.lrm" --bits 40

it_check "eval ranks the test set" \
    status_of 0 "$K" eval --kind router --model "$IT_DIR/r.lrm" -i "$IT_DIR/test.jsonl"
it_check "weak 0.5, strong 1.0" said "weak model alone 0.5000, strong model alone 1.0000"
cpt50() { awk -v who="$1" '$0 ~ "^  "who { print $(NF-2) + 0 }' "$IT_DIR/out.txt"; }
learned=$(cpt50 "learned score")
random=$(cpt50 "random \\(mean curve\\)")
it_log "CPT(50%): learned $learned%, random $random%"
it_check "the learned score needs 25% strong calls for CPT(50%)" test "$learned" = 25
it_check "random routing needs about 50%" awk -v r="$random" 'BEGIN { exit !(r >= 45 && r <= 55) }'

it_check "a bad test line stops eval" \
    status_of 1 "$K" eval --kind router --model "$IT_DIR/r.lrm" -i "$IT_DIR/badtest.jsonl"
it_check "with its line number" said "badtest.jsonl:2: \"weak_correct\""

it_check "train --kind triage succeeds" \
    status_of 0 "$K" train --kind triage -i "$IT_DIR/triage.jsonl" -o "$IT_DIR/t.lrm" --bits 12
it_check "it reports the temperature" said "temperature"
it_check "eval --kind triage scores a labelled set" \
    status_of 0 "$K" eval --kind triage --model "$IT_DIR/t.lrm" -i "$IT_DIR/triage_test.jsonl"
it_check "20 of 21 right, the 21st has a label the model does not know" \
    said "21 test examples, 2 labels in the model; accuracy 0.9524 (1 with a label the model does not know)"
it_check "with the share kept at each escalation threshold" \
    test "$(grep -cE '^ +0\.[0-9] +[0-9.]+% ' "$IT_DIR/out.txt")" = 10
it_check "eval --kind triage refuses a router model" \
    status_of 1 "$K" eval --kind triage --model "$IT_DIR/r.lrm" -i "$IT_DIR/triage_test.jsonl"
it_check "saying so" said "is a router model, not a triage one"
it_check "eval --kind router refuses a triage model" \
    status_of 1 "$K" eval --kind router --model "$IT_DIR/t.lrm" -i "$IT_DIR/test.jsonl"
it_check "saying so" said "is a triage model"

cp "$IT_DIR/r.lrm" "$IT_DIR/corrupt.lrm"
printf '\x7f' | dd of="$IT_DIR/corrupt.lrm" bs=1 seek=100 conv=notrunc status=none
it_check "eval refuses a corrupt model" \
    status_of 1 "$K" eval --kind router --model "$IT_DIR/corrupt.lrm" -i "$IT_DIR/test.jsonl"
it_check "with a reason" said "corrupt.lrm: weight vector 0: weight .* is out of order"
cp "$IT_DIR/r.lrm" "$IT_DIR/corrupt.lrm"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 0xff
open(sys.argv[1], "wb").write(b)' "$IT_DIR/corrupt.lrm"
it_check "eval refuses a model whose checksum is off" \
    status_of 1 "$K" eval --kind router --model "$IT_DIR/corrupt.lrm" -i "$IT_DIR/test.jsonl"
it_check "with a reason" said "corrupt.lrm: checksum mismatch"
head -c 50 "$IT_DIR/r.lrm" >"$IT_DIR/short.lrm"
it_check "eval refuses a truncated model" \
    status_of 1 "$K" eval --kind router --model "$IT_DIR/short.lrm" -i "$IT_DIR/test.jsonl"
it_check "with a reason" said "short.lrm: truncated at byte"
it_check "train and eval need no config file" \
    status_of 0 env KASCADE_CONFIG=/nonexistent "$K" train --kind router \
    -i "$IT_DIR/train.jsonl" -o "$IT_DIR/r3.lrm" --bits 10
