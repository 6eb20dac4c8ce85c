#!/usr/bin/env bash
# bench/cpt.sh BUILD_DIR - the learned difficulty score on real model
# outcomes: RouteLLM's GSM8K answers of Mixtral-8x7B (weak) and GPT-4
# (strong), contaminated prompts dropped, split 60/40 with a fixed seed
# (bench/gsm8k_prep.py); `kascade train --kind router` on the 60%, then
# `kascade eval` on the 40%: accuracy against the share of strong-model
# calls, CPT(50%), CPT(80%) and APGR, against random routing.
#
# Environment: CPT_DATA (default bench/data/routellm-gsm8k, the in-repo
# copy), CPT_SEED (1: split, training, random
# orders), CPT_EPOCHS (10), CPT_BITS (18), CPT_TRAIN_SHARE (0.6), CPT_KEEP
# (a directory to keep the JSONL files and the model in).
# Offline: no broker, no Redis. Figures to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/cpt.sh BUILD_DIR}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
KASCADE=$BUILD/bin/kascade
DATA=${CPT_DATA:-$ROOT/bench/data/routellm-gsm8k}
[ -f "$DATA/gsm8k_responses.csv" ] ||
    { echo "FAILED: no gsm8k_responses.csv (set CPT_DATA)" >&2; exit 1; }
[ -x "$KASCADE" ] || { echo "FAILED: $KASCADE not built" >&2; exit 1; }
SEED=${CPT_SEED:-1}

if [ -n "${CPT_KEEP:-}" ]; then
    WORK=$CPT_KEEP
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi

python3 "$ROOT/bench/gsm8k_prep.py" --data "$DATA" --out "$WORK" \
    --seed "$SEED" --train-share "${CPT_TRAIN_SHARE:-0.6}"
echo "== kascade train --kind router (seed $SEED)"
"$KASCADE" train --kind router -i "$WORK/train.jsonl" -o "$WORK/router.lrm" \
    --seed "$SEED" --epochs "${CPT_EPOCHS:-10}" --bits "${CPT_BITS:-18}"
echo "== kascade eval --kind router"
"$KASCADE" eval --kind router --model "$WORK/router.lrm" \
    -i "$WORK/test.jsonl" --seed "$SEED"
