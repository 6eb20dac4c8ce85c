#!/usr/bin/env bash
# Train/serve parity of the verifier: the worker's own verifier score of an
# answer (tiers[].verifier_model, learn/verify.h via workers/verifier.c)
# must equal `kascade eval --verifier`'s score of the same (task, answer)
# from the labelled outcomes (ks_verify_score), which is what `kascade
# tune` chooses escalate_below on. A verifier is trained on the GSM8K
# outcomes (bench/data, Mixtral as tier local's answers); 40 held-out
# answers are replayed by the simulator (which, like an OpenAI-compatible
# provider, adds logprobs, a finish reason and its own token counts) to a
# worker that escalates everything, and each Escalation's confidence is
# compared with eval's score.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DATA=$KS_ROOT/bench/data/routellm-gsm8k
[ -f "$DATA/gsm8k_responses.csv" ] || it_die "no $DATA/gsm8k_responses.csv"
PATTERN='####\s*\$?(-?[0-9][0-9,]*(?:\.[0-9]+)?)'
python3 "$KS_ROOT/bench/gsm8k_prep.py" --data "$DATA" --out "$IT_DIR" \
    --seed 3 --train-share 0.6 2>/dev/null
# tier "cheap" of the outcomes is tier "local" here
sed 's/"cheap":/"local":/' "$IT_DIR/outcomes_train.jsonl" >"$IT_DIR/train.jsonl"
head -n 40 "$IT_DIR/outcomes_test.jsonl" |
    sed 's/"cheap":/"local":/' >"$IT_DIR/test.jsonl"
"$KS_BIN/kascade" train --kind verifier --tier local \
    --answer-pattern "math=$PATTERN" -i "$IT_DIR/train.jsonl" \
    -o "$IT_DIR/verifier.lrm" --seed 3 >"$IT_DIR/train.out" 2>&1 ||
    it_die "kascade train --kind verifier failed: $(cat "$IT_DIR/train.out")"
"$KS_BIN/kascade" eval -i "$IT_DIR/test.jsonl" --verifier "$IT_DIR/verifier.lrm" \
    --verifier-tier local --answer-pattern "math=$PATTERN" \
    --write-outcomes "$IT_DIR/scored.jsonl" --svg-dir "$IT_DIR" \
    >"$IT_DIR/eval.out" 2>&1 || it_die "kascade eval failed: $(cat "$IT_DIR/eval.out")"
python3 - "$IT_DIR/scored.jsonl" "$IT_DIR/replay.csv" "$IT_DIR/tasks.txt" <<'PY'
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["prompt", "local_response"])
    for r in rows:
        w.writerow([r["prompt"], r["tiers"]["local"]["answer"]])
with open(sys.argv[3], "w") as f:
    for r in rows:
        f.write("%s\t%s\n" % (r["id"], json.dumps(
            {"id": r["id"], "type": r["type"], "input": r["prompt"]})))
PY

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --replay "$IT_DIR/replay.csv" --replay-model local
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.local.verifier_model=$IT_DIR/verifier.lrm"
       -X "tiers.local.escalate_below=1"
       -X "answer_patterns.math=$PATTERN")
it_daemon worker-local kascade-worker --tier local
kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t' \
    <"$IT_DIR/tasks.txt"
it_check "every answer is handed on (escalate_below 1)" \
    it_wait_count escalations 40 120
parity() {
    it_read escalations | python3 -c '
import json, sys
want = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    want[r["id"]] = r["tiers"]["local"]["confidence"]["verifier"]
got = {}
for l in sys.stdin:
    e = json.loads(l)["value"]
    got[e["id"]] = e["confidence"]
bad = [(i, round(want[i], 4), round(got.get(i, -1), 4)) for i in want
       if abs(want[i] - got.get(i, -1)) > 1e-6]
print("%d of %d scores differ (id, eval, worker): %s" % (
    len(bad), len(want), bad[:8]))
sys.exit(1 if bad else 0)' "$IT_DIR/scored.jsonl"
}
it_check "the worker scores each answer as kascade eval --verifier does" parity
