#!/usr/bin/env bash
# `kascade tune`, offline: the thresholds it chooses on a hand-made
# outcomes file (tests/fixtures/eval/small.jsonl, worked out in its
# README.md), per task type when the data supports it, the fragment and
# the merged config it writes, `tune --check` predicting that config's
# quality and cost, and the errors: an unreachable target, a bad target.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

K="$KS_BIN/kascade"
FIX="$(cd "$(dirname "$0")/../fixtures/eval" && pwd)"
LOG="$IT_DIR/cli.log"
status_of() { # status_of EXPECTED COMMAND...: the command exits with EXPECTED
    local rc=0
    "${@:2}" >"$IT_DIR/out.txt" 2>"$IT_DIR/err.txt" || rc=$?
    cat "$IT_DIR/out.txt" "$IT_DIR/err.txt" >>"$LOG"
    [ "$rc" = "$1" ] || { it_log "exit status $rc, expected $1: ${*:2}"; cat "$IT_DIR/err.txt" >&2; return 1; }
}
said() { grep -q -- "$1" "$IT_DIR/out.txt" "$IT_DIR/err.txt"; }
row() { tr -s ' ' <"$IT_DIR/out.txt" | grep -qE -- "$1"; }
json_is() { # json_is FILE PYTHON-EXPR EXPECTED: d is the file's JSON
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); sys.exit(0 if v == json.loads(sys.argv[3]) else print(v) or 1)' "$@"
}

it_check "tune --target top-1 succeeds" \
    status_of 0 "$K" tune -i "$FIX/small.jsonl" --target top-1 --source verifier \
    --bootstrap 200 -o "$IT_DIR/frag.json"
it_check "the target is all-top minus 1 point" said "target 0.7900"
it_check "it escalates below 0.35 (t9 t8 t7; halfway to t6)" row "^ escalate_below 0.35$"
it_check "quality 0.8 at 0.004 USD a task, 30% up" \
    row "^on the training outcomes: quality 0.8000, 0.004000 USD a task, 30.0% sent up$"
it_check "with a bootstrap interval" row "^ quality 0.8000 \[0\.[0-9]+, [01]\.[0-9]+\]"
it_check "the saving against all-top: 60%" row "^ saving 60.0% "
it_check "the fragment has the tier's threshold and nothing per type" \
    json_is "$IT_DIR/frag.json" 'd' '{"tiers": [{"name": "cheap", "escalate_below": 0.35}]}'

# Escalated calls priced as the fleet pays them: the top tier's call plus
# what it reads of the cheap answer (5 tokens here) at its input price
# (--price top=1000:0, 0.001 USD a token): escalate_context "none" reads
# nothing (0.001 + 0.3 x 0.01), "final" (the default) a 12-token line
# with the final answer (+ 0.3 x 0.012), "answer" the answer and 40
# tokens of note (+ 0.3 x 0.045), "full" the answer and 80 tokens of
# escalation prompt (+ 0.3 x 0.085).
tune_priced() { # tune_priced MODE|default USD
    local x=()
    [ "$1" = default ] || x=(--escalate-context "$1")
    status_of 0 "$K" tune -i "$FIX/small.jsonl" --target top-1 \
        --source verifier --bootstrap 50 --price top=1000:0 "${x[@]}" &&
        row "^on the training outcomes: quality 0.8000, $2 USD a task, 30.0% sent up$"
}
it_check "escalate_context none: 0.004 USD a task" tune_priced none 0.004000
it_check "answer: 0.0175" tune_priced answer 0.017500
it_check "final: 0.0076" tune_priced final 0.007600
it_check "the default is final" tune_priced default 0.007600
it_check "full: 0.0295" tune_priced full 0.029500
it_check "dearer than all-top: said" said "this cascade costs more than the top tier alone"
it_check "a bad --escalate-context is refused" \
    status_of 2 "$K" tune -i "$FIX/small.jsonl" --target top-1 --escalate-context some

# The cheapest threshold meeting the target can lie off the concave
# envelope of the cost/quality curve (a flat stretch, then gains): tasks
# f1, f2 gain nothing by escalating, f3-f5 one right answer each. Target
# 0.8 needs one: escalate f1-f3 (below 0.35), not all five.
python3 - "$IT_DIR/flat.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(10):
        cheap_right = i not in (2, 3, 4)
        f.write(json.dumps({"id": "f%d" % (i + 1), "type": "math",
            "prompt": "flat %d" % i, "tiers": {
            "cheap": {"answer": "a", "correct": cheap_right, "cost_usd": 0.001,
                      "confidence": {"verifier": round(0.1 * (i + 1), 2)}},
            "top": {"answer": "b", "correct": True, "cost_usd": 0.01}}}) + "\n")
PY
it_check "tune on a flat stretch" \
    status_of 0 "$K" tune -i "$IT_DIR/flat.jsonl" --target 0.8 --source verifier --bootstrap 50
it_check "escalates below 0.35: 30% up, 0.8 at 0.004" \
    row "^on the training outcomes: quality 0.8000, 0.004000 USD a task, 30.0% sent up$"

it_check "tune --target 0.9 with one threshold" \
    status_of 0 "$K" tune -i "$FIX/small.jsonl" --target 0.9 --source verifier --bootstrap 50
it_check "escalates below 0.55: 50% up, 0.006 a task" \
    row "^on the training outcomes: quality 0.9000, 0.006000 USD a task, 50.0% sent up$"

printf '%s\n' '{"kafka": {"bootstrap.servers": "x:9092"},' \
    '"tiers": [{"name": "cheap", "escalate_below": 0.1, "providers": []},' \
    '{"name": "top", "providers": []}]}' >"$IT_DIR/base.json"
it_check "tune --target 0.9 --min-per-type 5: per type" \
    status_of 0 "$K" tune -i "$FIX/small.jsonl" --target 0.9 --source verifier \
    --min-per-type 5 --bootstrap 50 -o "$IT_DIR/frag2.json" \
    --config "$IT_DIR/base.json" --write-config "$IT_DIR/tuned.json"
it_check "math below 0.6, text below 0.3" \
    json_is "$IT_DIR/frag2.json" 'd["tiers"][0]["escalate_below_types"]' '{"math": 0.6, "text": 0.3}'
it_check "the tier's own threshold is the larger, 0.6" \
    json_is "$IT_DIR/frag2.json" 'd["tiers"][0]["escalate_below"]' '0.6'
it_check "cheaper than one threshold: 0.005 a task, 40% up" \
    row "^on the training outcomes: quality 0.9000, 0.005000 USD a task, 40.0% sent up$"
it_check "the merged config keeps the base's other keys" \
    json_is "$IT_DIR/tuned.json" '[d["kafka"], d["tiers"][1]]' '[{"bootstrap.servers": "x:9092"}, {"name": "top", "providers": []}]'
it_check "and has the thresholds" \
    json_is "$IT_DIR/tuned.json" 'd["tiers"][0]["escalate_below_types"]' '{"math": 0.6, "text": 0.3}'

it_check "tune --check predicts the tuned config" \
    status_of 0 "$K" tune --check "$IT_DIR/tuned.json" -i "$FIX/small.jsonl" --source verifier \
    --bootstrap 50 --target 0.9
it_check "quality 0.9, target met" row "^ quality 0.9000 .* target 0.9000: met\)$"
it_check "0.005 USD a task" row "^ usd per task 0.005000 "
it_check "40% up" row "^ sent up 40.0% "
it_check "tune --check on the base config" \
    status_of 0 "$K" tune --check "$IT_DIR/base.json" -i "$FIX/small.jsonl" --source verifier \
    --bootstrap 50 --target 0.9
it_check "below 0.1 escalates nothing: quality 0.6, not met" row "^ quality 0.6000 .* NOT met\)$"

it_check "an unreachable target is an error" \
    status_of 1 "$K" tune -i "$FIX/small.jsonl" --target 0.95 --source verifier
it_check "saying so" said "no thresholds reach 0.9500"
it_check "a malformed target is a usage error" \
    status_of 2 "$K" tune -i "$FIX/small.jsonl" --target top-x --source verifier
it_check "--source none with no router model escalates nothing" \
    status_of 1 "$K" tune -i "$FIX/small.jsonl" --target top-1 --source none
it_check "so top-1 cannot be reached" said "no thresholds reach 0.7900"
it_check "a source the file lacks is an error" \
    status_of 1 "$K" tune -i "$FIX/small.jsonl" --target top-1 --source logprob
it_check "naming it" said "no confidence source named logprob"

# tune keeps a confidence the file already has (cross-fitted scores) even
# when given a verifier model: the hand-made scores decide, as before.
printf '%s\n' '{"type": "math", "prompt": "1 + 1?", "tiers": {"cheap": {"answer": "#### 2", "correct": true}, "top": {"answer": "2", "correct": true}}}' \
    '{"type": "math", "prompt": "2 + 2?", "tiers": {"cheap": {"answer": "#### 5", "correct": false}, "top": {"answer": "4", "correct": true}}}' \
    >"$IT_DIR/vtrain.jsonl"
for _ in $(seq 20); do cat "$IT_DIR/vtrain.jsonl"; done >"$IT_DIR/vtrain40.jsonl"
it_check "a verifier model to pass" \
    status_of 0 "$K" train --kind verifier --tier cheap -i "$IT_DIR/vtrain40.jsonl" -o "$IT_DIR/v.lrm"
it_check "tune with --verifier on a file that has verifier scores" \
    status_of 0 "$K" tune -i "$FIX/small.jsonl" --target top-1 --verifier "$IT_DIR/v.lrm" \
    --bootstrap 50 -o "$IT_DIR/frag3.json"
it_check "chooses from the file's scores: escalate below 0.35" \
    json_is "$IT_DIR/frag3.json" 'd["tiers"][0]["escalate_below"]' '0.35'
