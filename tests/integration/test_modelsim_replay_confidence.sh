#!/usr/bin/env bash
# kascade-modelsim --replay with a COLUMN_confidence column (what
# bench/cascade.sh replays a verifier's scores with): a recorded
# confidence c makes every token's logprob ln(c), so the worker's mean
# token probability is c; an empty field leaves the usual per-token
# values; a value outside [0,1] stops start-up with exit status 2.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

python3 - "$IT_DIR" <<'PY'
import csv, sys
d = sys.argv[1]
with open(f"{d}/replay.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["prompt", "m_response", "m_confidence"])
    w.writerow(["What is 2 + 2?", "2 + 2 = 4\n#### 4", "0.25"])
    w.writerow(["What is 3 + 3?", "3 + 3 = 6\n#### 6", ""])
with open(f"{d}/bad.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["prompt", "m_response", "m_confidence"])
    w.writerow(["What is 2 + 2?", "4", "1.5"])
PY

ask() { # ask PROMPT: the chat reply, with logprobs
    curl -sf "$SIM_URL/v1/chat/completions" -H 'content-type: application/json' \
        -d "{\"model\": \"m\", \"logprobs\": true, \"messages\": [{\"role\": \"user\", \"content\": \"$1\"}]}"
}
# lp_check REPLY EXPECT: every token's logprob is ln(EXPECT), or, with
# EXPECT "default", within the simulator's usual [-0.6, -0.01]
lp_check() {
    python3 -c '
import json, math, sys
r = json.loads(sys.argv[1])
lps = [t["logprob"] for t in r["choices"][0]["logprobs"]["content"]]
assert lps, "no logprobs"
if sys.argv[2] == "default":
    assert all(-0.6 - 1e-9 <= x <= -0.01 + 1e-9 for x in lps), lps
else:
    want = math.log(float(sys.argv[2]))
    assert all(abs(x - want) < 1e-6 for x in lps), (lps, want)
    assert abs(sum(math.exp(x) for x in lps) / len(lps) - float(sys.argv[2])) < 1e-6
' "$1" "$2"
}

it_sim replay --replay "$IT_DIR/replay.csv" --replay-model m
it_check "a recorded answer with a confidence is replayed" \
    test "$(ask 'What is 2 + 2?' | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])')" = "$(printf '2 + 2 = 4\n#### 4')"
it_check "its logprobs carry the recorded 0.25" lp_check "$(ask 'What is 2 + 2?')" 0.25
it_check "an empty confidence leaves the usual logprobs" lp_check "$(ask 'What is 3 + 3?')" default

rc=0
timeout 10 "$KS_BIN/kascade-modelsim" --port 0 --replay "$IT_DIR/bad.csv" --replay-model m \
    >"$IT_DIR/bad.out" 2>"$IT_DIR/bad.err" || rc=$?
it_check "a confidence outside [0,1] stops start-up with status 2" test "$rc" = 2
it_check "naming the row" grep -q "row 1 (line [0-9]*): the confidence must be a number in \[0,1\] or empty" "$IT_DIR/bad.err"
