#!/usr/bin/env bash
# `kascade eval -i OUTCOMES.jsonl`, offline: every figure of a hand-made
# outcomes file checked against a hand computation (tests/fixtures/eval/
# small.jsonl, worked out in tests/fixtures/eval/README.md), its SVG plots
# parsed, bad lines refused with their number, and a collapsed
# calibration visible: a constant confidence, and a router model whose
# Platt slope is 0, both rank as random and are flagged.
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
row() { # row REGEX: a line of the output matches (spaces squeezed)
    tr -s ' ' <"$IT_DIR/out.txt" | grep -qE -- "$1"
}

it_check "eval on the hand-made outcomes succeeds" \
    status_of 0 "$K" eval -i "$FIX/small.jsonl" --step 0.1 --svg-dir "$IT_DIR"
it_check "per tier: quality, cost, latency percentiles" \
    row "^ cheap 0.6000 0.001000 0.0100 500 1000 0.0%$"
it_check "the top tier's" row "^ top 0.8000 0.010000 0.1000 5000 10000 0.0%$"
it_check "per task type" row "^ math 5 0.4000 / 0.001000 0.8000 / 0.010000$"
it_check "the target is the top tier minus 1 point" said "quality target 0.7900"
it_check "verifier: CPT 20%/30%, APGR 0.85, cascade saves 60% at 30% up, routing 63%" \
    row "^ verifier 20.0% 30.0% 0.850 60.0% 30.0% 63.0%$"
it_check "random: CPT 50%/80%, APGR 0.5, never cheaper than all-top at the target" \
    row "^ random 50.0% 80.0% 0.500 -10.0% 100.0% 0.0%$"
it_check "oracle: CPT 10%/20%" row "^ oracle 10.0% 20.0% 1.100 70.0% 20.0% 72.0%$"
it_check "sweep: below 0.5 escalates 4 of 10, quality 0.8, 0.005 USD a task" \
    row "^ 0.50 40.0% 0.8000 0.005000 50.0%$"
it_check "sweep: below 0.3 escalates exactly the two under 0.3" \
    row "^ 0.30 20.0% 0.7000 0.003000 70.0%$"
it_check "reliability: the 0.9-1.0 bin holds two, both right" \
    row "^ 0.9-1.0 2 0.925 1.000$"
it_check "expected calibration error 0.275" said "expected calibration error 0.2750"
it_check "a constant confidence ranks exactly as random" \
    row "^ flat 50.0% 80.0% 0.500 -10.0% 100.0% 0.0%$"
it_check "and is flagged as collapsed" said "WARNING: flat is constant (0.7000 on every task)"

it_check "both plots parse as SVG with axes, units, ticks and a legend" \
    python3 - "$IT_DIR" <<'PY'
import sys
import xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
d = sys.argv[1]
def texts(root, cls=None):
    return [t.text for t in root.iter(ns + "text")
            if cls is None or t.get("class") == cls]
r = ET.parse(f"{d}/quality_cost.svg").getroot()
assert r.tag == ns + "svg", r.tag
assert r.find(ns + "title").text.startswith("Quality against cost")
assert texts(r, "xlabel") == ["cost (USD per 1,000 tasks)"], texts(r, "xlabel")
assert texts(r, "ylabel") == ["quality (% of tasks right)"]
assert len(texts(r, "xtick")) >= 4 and len(texts(r, "ytick")) >= 4
lines = r.findall(".//" + ns + "polyline")
assert len(lines) == 5, len(lines)  # verifier, flat, type prior, random, oracle
for p in lines:
    assert len(p.get("points").split()) >= 2
legend = [g for g in r.iter(ns + "g") if g.get("class") == "legend"][0]
names = [t.text for t in legend.iter(ns + "text")]
assert names == ["verifier (cascade)", "flat (cascade)",
                 "type prior (cascade)", "random (cascade)",
                 "oracle (cascade)", "all-cheap, all-top"], names
r = ET.parse(f"{d}/reliability.svg").getroot()
assert texts(r, "xlabel") == ["predicted probability (bin mean)"]
legend = [g for g in r.iter(ns + "g") if g.get("class") == "legend"][0]
names = [t.text for t in legend.iter(ns + "text")]
assert names == ["perfect calibration", "verifier (ECE 0.275)",
                 "flat (ECE 0.100)"], names
dots = [c for g in r.iter(ns + "g") if g.get("class") == "series"
        for c in g.iter(ns + "circle")]
assert len(dots) == 9 + 1, len(dots)  # 9 verifier bins, 1 flat bin
PY

# Bad input: refused with the line number, never skipped.
printf '%s\n' "$(head -1 "$FIX/small.jsonl")" \
    '{"prompt": "p", "tiers": {"cheap": {"correct": 1, "cost_usd": 0}, "top": {"correct": true, "cost_usd": 0}}}' \
    >"$IT_DIR/bad.jsonl"
it_check "a tier without a boolean correct is refused" \
    status_of 1 "$K" eval -i "$IT_DIR/bad.jsonl"
it_check "with its line number" said "bad.jsonl:2: each tier needs \"correct\": true or false"
printf '%s\n' '{"prompt": "p", "tiers": {"cheap": {"correct": true, "usage": {"input_tokens": 1000000, "output_tokens": 1000000}}, "top": {"correct": true, "cost_usd": 1}}}' \
    >"$IT_DIR/noprice.jsonl"
it_check "a missing cost without a price is refused" \
    status_of 1 "$K" eval -i "$IT_DIR/noprice.jsonl"
it_check "saying so" said "noprice.jsonl:1: a tier has no cost_usd and no --price for it"
it_check "--price fills it in from the usage" \
    status_of 0 "$K" eval -i "$IT_DIR/noprice.jsonl" --price cheap=0.5:1.5
it_check "0.5 + 1.5 USD for a million tokens each way" row "^ cheap 1.0000 2.000000 2.0000"

# A real run's Results joined with the labels by id: t5 and t7 escalated
# to top, t9 has no Result, one Result has an id the labels lack.
python3 - "$IT_DIR/results.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in (1, 2, 3, 4, 5, 6, 7, 8, 10):
        up = i in (5, 7)
        path = [{"tier": "cheap"}] + ([{"tier": "top"}] if up else [])
        f.write(json.dumps({"id": f"t{i}", "status": "ok", "output": "x",
                            "tier": "top" if up else "cheap",
                            "cost_usd": 0.011 if up else 0.001,
                            "latency_ms": 100, "path": path}) + "\n")
    f.write(json.dumps({"id": "other", "tier": "cheap", "cost_usd": 1}) + "\n")
PY
it_check "eval --results grades a run by the labels of its ids" \
    status_of 0 "$K" eval -i "$FIX/small.jsonl" --results "$IT_DIR/results.jsonl"
it_check "10 results, 9 labelled" said "results.jsonl: 10 results, 9 with a labelled outcome (of 10)"
it_check "8 of 9 right, (7 x 0.001 + 2 x 0.011) / 9 a task, 2 of 9 escalated" \
    row "^ the run quality 0.8889, 0.003222 USD a task, 22.2% escalated, mean latency 100 ms$"
it_check "which tier answered" row "^ top answered 22.2%; alone: quality 0.8000, 0.010000 USD a task \(labels\)$"

# An escalated call reads the line with the cheap answer's final answer
# (escalate_context "final", the default): with the top tier's input
# price known, each escalation also pays 12 tokens of input; with
# "answer" (the end of the answer) 5 output tokens + 40; with "full"
# (every attempt and the escalation prompt) 5 + 80; with "none" nothing.
it_check "--price of the top tier prices the escalation's context" \
    status_of 0 "$K" eval -i "$FIX/small.jsonl" --step 0.1 --price top=1000:0
it_check "below 0.5: 4 escalations at 0.01 + 12 x 0.001 each" \
    row "^ 0.50 40.0% 0.8000 0.009800 2.0%$"
it_check "--escalate-context answer" \
    status_of 0 "$K" eval -i "$FIX/small.jsonl" --step 0.1 --price top=1000:0 \
    --escalate-context answer
it_check "below 0.5: 4 escalations at 0.01 + 45 x 0.001 each" \
    row "^ 0.50 40.0% 0.8000 0.023000 -130.0%$"
it_check "--escalate-context full" \
    status_of 0 "$K" eval -i "$FIX/small.jsonl" --step 0.1 --price top=1000:0 \
    --escalate-context full
it_check "below 0.5: 4 escalations at 0.01 + 85 x 0.001 each" \
    row "^ 0.50 40.0% 0.8000 0.039000 -290.0%$"
it_check "--escalate-context none" \
    status_of 0 "$K" eval -i "$FIX/small.jsonl" --step 0.1 --price top=1000:0 \
    --escalate-context none
it_check "below 0.5: 4 escalations at 0.01" \
    row "^ 0.50 40.0% 0.8000 0.005000 50.0%$"

# A router model whose calibration collapsed (Platt slope 0): its
# calibrated score is one constant, so the router cannot tell tasks apart.
python3 - "$IT_DIR" <<'PY'
import json, random, sys
d = sys.argv[1]
rnd = random.Random(5)
easy = ["where is my order", "track my parcel", "my order is late"]
hard = ["prove the theorem", "derive the integral", "prove the lemma"]
def text(pool):
    return " ".join(rnd.sample(pool, 2)) + " " + str(rnd.randint(1, 99))
with open(f"{d}/train.jsonl", "w") as f:
    for _ in range(100):
        f.write(json.dumps({"input": text(easy), "label": 0}) + "\n")
        f.write(json.dumps({"input": text(hard), "label": 1}) + "\n")
with open(f"{d}/test.jsonl", "w") as f, open(f"{d}/out.jsonl", "w") as g:
    for i in range(50):
        for pool, weak in ((easy, True), (hard, False)):
            t = text(pool)
            f.write(json.dumps({"input": t, "weak_correct": weak,
                                "strong_correct": True}) + "\n")
            g.write(json.dumps({"prompt": t, "tiers": {
                "cheap": {"correct": weak, "cost_usd": 0.001},
                "top": {"correct": True, "cost_usd": 0.01}}}) + "\n")
PY
it_check "train a router model" \
    status_of 0 "$K" train --kind router -i "$IT_DIR/train.jsonl" -o "$IT_DIR/r.lrm" --bits 14
it_check "its calibrated score ranks the toy set perfectly" \
    status_of 0 "$K" eval --kind router --model "$IT_DIR/r.lrm" -i "$IT_DIR/test.jsonl"
it_check "as well as the oracle (CPT 25%/40%, APGR 0.75)" row "^ learned score 25.0% 40.0% 0.750$"
python3 - "$IT_DIR/r.lrm" "$IT_DIR/flat.lrm" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
at = 8 + 5 * 4 + 2 * (4 + 1)  # header, then the labels "0" and "1"
a, c = struct.unpack_from("<dd", b, at)
assert a > 0, a
struct.pack_into("<d", b, at, 0.0)  # platt_a = 0: a collapsed fit
h = 0xcbf29ce484222325
for x in b[:-8]:
    h = ((h ^ x) * 0x100000001b3) & 0xffffffffffffffff
struct.pack_into("<Q", b, len(b) - 8, h)
open(sys.argv[2], "wb").write(b)
PY
it_check "eval --kind router on the collapsed model succeeds" \
    status_of 0 "$K" eval --kind router --model "$IT_DIR/flat.lrm" -i "$IT_DIR/test.jsonl"
it_check "it says the calibrated score is constant" \
    said "WARNING: the calibrated score is constant"
it_check "and its curve is random's (APGR 0.5, not the margin's)" \
    row "^ learned score 50.0% 80.0% 0.500$"
it_check "eval -i OUTCOMES --score-model ranks by the calibrated score too" \
    status_of 0 "$K" eval -i "$IT_DIR/out.jsonl" --score-model "$IT_DIR/flat.lrm"
it_check "router score row is random's" row "^ router score 50.0% 80.0% 0.500 "
it_check "and flagged" said "WARNING: router score is constant"
it_check "the sound model, by contrast" \
    status_of 0 "$K" eval -i "$IT_DIR/out.jsonl" --score-model "$IT_DIR/r.lrm"
it_check "ranks as the oracle" row "^ router score 25.0% 40.0% 0.750 "

# A router model with the type prior: the texts say nothing, the type says
# everything; eval must score the task (text and type) as the router does.
python3 - "$IT_DIR" <<'PY'
import json, random, sys
d = sys.argv[1]
rnd = random.Random(7)
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
def text():
    return " ".join(rnd.sample(words, 3)) + " " + str(rnd.randint(1, 999))
with open(f"{d}/typed_train.jsonl", "w") as f:
    for _ in range(150):
        f.write(json.dumps({"input": text(), "type": "easy", "label": 0}) + "\n")
        f.write(json.dumps({"input": text(), "type": "hard", "label": 1}) + "\n")
with open(f"{d}/typed_out.jsonl", "w") as f:
    for _ in range(50):
        for ty, weak in (("easy", True), ("hard", False)):
            f.write(json.dumps({"type": ty, "prompt": text(), "tiers": {
                "cheap": {"correct": weak, "cost_usd": 0.001},
                "top": {"correct": True, "cost_usd": 0.01}}}) + "\n")
PY
it_check "train a router model that learns from the type" \
    status_of 0 "$K" train --kind router -i "$IT_DIR/typed_train.jsonl" -o "$IT_DIR/typed.lrm" --bits 14
it_check "eval scores each task with its type: the oracle's curve" \
    status_of 0 "$K" eval -i "$IT_DIR/typed_out.jsonl" --score-model "$IT_DIR/typed.lrm"
it_check "router score CPT 25%/40%, APGR 0.75" row "^ router score 25.0% 40.0% 0.750 "
it_check "the type prior alone is a baseline row: here it says everything" \
    row "^ type prior 25.0% 40.0% 0.750 "
it_check "one type: no type prior row (it would be random's)" \
    status_of 0 "$K" eval -i "$IT_DIR/out.jsonl"
it_check "no type prior row with one type" sh -c '! grep -q "type prior" "$1"' _ "$IT_DIR/out.txt"

# The verifier as a source: trained on GSM8K outcomes (bench/gsm8k_prep.py),
# scoring the cheap answers of the test split as the worker would.
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
PATTERN='math=####\s*\$?(-?[0-9][0-9,]*(?:\.[0-9]+)?)'
python3 "$ROOT_DIR/bench/gsm8k_prep.py" --out "$IT_DIR/gsm8k" --seed 1 2>>"$LOG"
it_check "train a verifier on the GSM8K training outcomes" \
    status_of 0 "$K" train --kind verifier --tier cheap --answer-pattern "$PATTERN" \
    -i "$IT_DIR/gsm8k/outcomes_train.jsonl" -o "$IT_DIR/v.lrm"
it_check "eval --verifier scores the test split" \
    status_of 0 "$K" eval -i "$IT_DIR/gsm8k/outcomes_test.jsonl" --verifier "$IT_DIR/v.lrm" \
    --answer-pattern "$PATTERN" --write-outcomes "$IT_DIR/gsm8k/scored.jsonl"
it_check "its curve beats random clearly (APGR over 0.7, CPT(50%) under 25%)" \
    python3 -c 'import re,sys
for l in open(sys.argv[1]):
    m = re.match(r"\s+verifier\s+([0-9.]+)%\s+\S+\s+([0-9.]+)", l)
    if m:
        sys.exit(0 if float(m.group(1)) < 25 and float(m.group(2)) > 0.7 else 1)
sys.exit(1)' "$IT_DIR/out.txt"
it_check "--write-outcomes adds every cheap answer's verifier score" \
    python3 -c 'import json,sys
n = 0
for l in open(sys.argv[1]):
    c = json.loads(l)["tiers"]["cheap"]["confidence"]["verifier"]
    assert 0 <= c <= 1
    n += 1
assert n == 523, n' "$IT_DIR/gsm8k/scored.jsonl"
