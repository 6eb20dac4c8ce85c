#!/usr/bin/env bash
# bench/decide.sh BUILD_DIR - instructions per routing decision.
#
# Runs bench-decide (bench/decide.c) under valgrind's callgrind with
# collection switched on only inside one decision (decode included,
# Kafka excluded) and divides the instructions by the decisions made.
# Three cases, each against the same run's baseline (cJSON parsing and
# freeing the same bytes, bench-decide --parse-only):
#   small   the first task of deploy/examples/tasks.jsonl (164 bytes),
#           the example config;
#   rules   a 32 KiB task under four routing rules (a pattern, keywords,
#           a pattern that never matches and scans the whole
#           routing.rules_max_scan_bytes, a risk domain);
#   score   the small task with a learned router model (kascade train
#           --kind router on the GSM8K outcomes, seed 1).
# Needs valgrind (in Debian; `make bench` installs it). Figures go to
# stdout as one line per case, progress to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/decide.sh BUILD_DIR}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN=$BUILD/bin
N=${BENCH_DECIDE_N:-2000}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-decide.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say() { printf 'decide: %s\n' "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

command -v valgrind >/dev/null || die "valgrind is not installed"
for b in bench-decide kascade; do
    [ -x "$BIN/$b" ] || die "no $BIN/$b (run make first)"
done

head -n 1 "$ROOT/deploy/examples/tasks.jsonl" >"$TMP/small.json"
python3 - "$ROOT/deploy/examples/kascade.json" "$TMP" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
out = sys.argv[2]
cfg["routing"]["rules"] = [
    {"name": "refund", "pattern": "refund(ed|s)? (of|for) \\$[0-9]+", "min_tier": "mid"},
    {"name": "escalate-words", "keywords": ["lawsuit", "chargeback", "fraud"], "min_tier": "frontier"},
    {"name": "never", "pattern": "zq[0-9]{3}xv", "min_tier": "frontier"},
    {"name": "contract", "pattern": "(?i)terminat(e|ion) clause", "min_tier": "mid"},
]
json.dump(cfg, open(out + "/rules.json", "w"))
words = ("the customer writes that the invoice for last month shows a line "
         "they do not recognise and asks for a refund of $40 ").split()
text, i = [], 0
while len(" ".join(text)) < 32 * 1024 - 200:
    text.append(words[i % len(words)])
    i += 1
task = {"id": "big-1", "type": "answer", "tenant": "acme",
        "input": " ".join(text), "hints": {"max_output_tokens": 64}}
json.dump(task, open(out + "/big.json", "w"))
EOF

say "training a router model on the GSM8K outcomes (seed 1)"
python3 "$ROOT/bench/gsm8k_prep.py" --data "$ROOT/bench/data/routellm-gsm8k" \
    --out "$TMP/gsm8k" --seed 1 --train-share 0.6 >/dev/null
"$BIN/kascade" train --kind router -i "$TMP/gsm8k/train.jsonl" \
    -o "$TMP/router.lrm" --seed 1 >/dev/null 2>&1 || die "kascade train failed"

# instructions FN ARGS...: Ir inside FN per call of it.
instructions() {
    local fn=$1 out="$TMP/cg.out"
    shift
    rm -f "$out"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        --toggle-collect="$fn" "$BIN/bench-decide" -n "$N" "$@" \
        >"$TMP/run.log" 2>"$TMP/vg.log" || {
        cat "$TMP/run.log" "$TMP/vg.log" >&2
        die "bench-decide $* failed"
    }
    awk -v n="$N" '/^summary:|^totals:/ { printf "%.0f", $2 / n; exit }' "$out"
}

# measure CASE CONFIG TASK [MODEL]
measure() {
    local name=$1 cfg=$2 task=$3 model=${4:-} base dec tier
    say "$name: baseline (cJSON parse + free), then the decision, $N each"
    base=$(instructions parse_one --parse-only -c "$cfg" -t "$task")
    dec=$(instructions decide_one -c "$cfg" -t "$task" ${model:+-m "$model"})
    tier=$(sed -n 's/.*tier=\([^ ]*\).*/\1/p' "$TMP/run.log")
    printf 'decide %-6s bytes=%-6s tier=%-8s instr/decision=%-7s baseline=%-7s ratio=%s\n' \
        "$name" "$(wc -c <"$task")" "$tier" "$dec" "$base" \
        "$(awk -v a="$dec" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
}

measure small "$ROOT/deploy/examples/kascade.json" "$TMP/small.json"
measure rules "$TMP/rules.json" "$TMP/big.json"
measure score "$ROOT/deploy/examples/kascade.json" "$TMP/small.json" "$TMP/router.lrm"
