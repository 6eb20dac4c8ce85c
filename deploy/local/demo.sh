#!/usr/bin/env bash
# deploy/local/demo.sh BUILD_DIR - the `make demo` job.
#
# Starts an embedded broker (`kascade devbroker`: librdkafka's mock cluster
# on loopback, memory only) unless KASCADE_BOOTSTRAP_SERVERS names a real
# one, a throwaway redis-server, one model simulator per tier (stand-ins
# for the models: no API key or model download is needed), the router and
# one worker per tier; submits deploy/examples/tasks.jsonl, waits for every
# result and prints the summary; then stops everything it started.
#
# The cascade on a real signal: the example tasks of type "math" are GSM8K
# questions (with their right answer in metadata.expected). Tier mid
# answers them with Mixtral-8x7B's recorded answers and tier frontier with
# GPT-4's (bench/data/routellm-gsm8k, replayed by the simulators). Before
# the fleet starts, `kascade train --kind verifier` learns from the other
# GSM8K questions when Mixtral's answer is right, `kascade tune` picks the
# math threshold on a held-out part (KASCADE_DEMO_TARGET, default top-3:
# within 3 points of the frontier tier; top-1 escalates more),
# and tier mid's worker scores each answer with that verifier itself
# (tiers[].verifier_models: the model file, and the config's
# answer_patterns for the final answer), as `kascade eval --verifier`
# scores the same outcome (test_verifier_parity), and escalates below the
# threshold. The summary prints the escalations and the saving against
# all-frontier, then the quality of the labelled tasks against the
# recorded frontier answers.
#
# Tier local runs on the real local model (deploy/local/llm.sh: llama.cpp
# with SmolLM2-135M) when its venv is already built, or when
# KASCADE_DEMO_LLM=1 asks for it (building it first: a few minutes); otherwise
# on a simulator too. KASCADE_DEMO_LLM=0 always uses the simulator.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-build/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
BIN="$BIN/bin"
CONFIG=${KASCADE_DEMO_CONFIG:-$ROOT/deploy/examples/kascade.json}
TASKS=${KASCADE_DEMO_TASKS:-$ROOT/deploy/examples/tasks.jsonl}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-demo.XXXXXX")
PIDS=()
X=()

say() { printf "\033[1m==> [%3ds] %s\033[0m\n" "$SECONDS" "$*" >&2; }

cleanup() {
    local i pid
    # Newest first: the fleet drains while its broker and models still run.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    KASCADE_REDIS_DIR="$TMP/redis" "$ROOT/deploy/local/redis.sh" stop \
        >/dev/null 2>&1 || true
    KASCADE_LLM_DIR="$TMP/llm" "$ROOT/deploy/local/llm.sh" stop \
        >/dev/null 2>&1 || true
    [ -n "${KASCADE_DEMO_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_line() { # wait_for_line FILE PATTERN: up to 10 s
    for _ in $(seq 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "demo: timed out waiting for '$2' in $1" >&2
    return 1
}

start_broker() {
    if [ -n "${KASCADE_BOOTSTRAP_SERVERS:-}" ]; then
        say "Kafka: $KASCADE_BOOTSTRAP_SERVERS (from KASCADE_BOOTSTRAP_SERVERS)"
        "$BIN/kascade" -c "$CONFIG" topics create >/dev/null
        return
    fi
    "$BIN/kascade" -c "$CONFIG" devbroker --ready-file "$TMP/broker" \
        >/dev/null 2>"$TMP/devbroker.log" &
    PIDS+=($!)
    wait_for_line "$TMP/broker" .
    KASCADE_BOOTSTRAP_SERVERS=$(cat "$TMP/broker")
    export KASCADE_BOOTSTRAP_SERVERS
    # The mock broker answers a fetch only when its wait is over, not when
    # data arrives: a short wait keeps each hop's latency realistic.
    X+=(-X kafka.fetch.wait.max.ms=10)
    say "Kafka: embedded broker on $KASCADE_BOOTSTRAP_SERVERS (memory only)"
}

# use_llm: should tier local run on the real model?
use_llm() {
    case "${KASCADE_DEMO_LLM:-}" in
    1) return 0 ;;
    0) return 1 ;;
    esac
    "$ROOT/deploy/local/llm.sh" ready 2>/dev/null
}

start_llm() { # tier local on llama.cpp; returns 1 to fall back to a simulator
    local url
    if ! "$ROOT/deploy/local/llm.sh" ready 2>/dev/null; then
        say "building the local model's venv first (once; a few minutes)"
        "$ROOT/deploy/local/llm.sh" prepare >/dev/null || return 1
    fi
    url=$(KASCADE_LLM_DIR="$TMP/llm" "$ROOT/deploy/local/llm.sh" start \
        2>"$TMP/llm.log") || {
        echo "demo: the local model did not start (see below); using the simulator" >&2
        tail -n 5 "$TMP/llm.log" >&2
        return 1
    }
    # One request at a time on 2 cores: a queued call must not time out.
    X+=(-X "tiers.local.providers.0.base_url=$url"
        -X "tiers.local.providers.0.model=smollm2-135m"
        -X "tiers.local.providers.0.timeout_ms=180000"
        -X "tiers.local.max_inflight=4")
    TIERS+=(local)
    say "models: tier local on the real local model (llama.cpp, SmolLM2-135M) at $url"
}

# prepare_cascade: the verifier, the math threshold ($MATH_BELOW) and the
# replay file ($TMP/replay.csv: every prompt of the task file, recorded
# answers for the GSM8K ones, a stand-in sentence for the others).
prepare_cascade() {
    local TARGET=${KASCADE_DEMO_TARGET:-top-3}
    local pattern='math=####\s*\$?(-?[0-9][0-9,]*(?:\.[0-9]+)?)' c=$TMP/cascade
    mkdir -p "$c"
    python3 - "$ROOT/bench/data/routellm-gsm8k" "$TASKS" "$c" "$CONFIG" <<'PY'
import csv, json, random, sys
data, tasks, out, config = sys.argv[1:]
# USD per token of each tier's first provider; tokens estimated as bytes / 4.
price = {t["name"]: (t["providers"][0].get("price_in_per_mtok", 0) / 1e6,
                     t["providers"][0].get("price_out_per_mtok", 0) / 1e6)
         for t in json.load(open(config))["tiers"]}
W, S = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
csv.field_size_limit(1 << 24)
bad = {json.loads(l)["eval_prompt"] for l in open(f"{data}/contaminated_prompts.jsonl") if l.strip()}
rec = {r["prompt"].strip(): r for r in csv.DictReader(open(f"{data}/gsm8k_responses.csv", encoding="utf-8", newline=""))}
prompts, demo = [], []
for line in open(tasks, encoding="utf-8"):
    try:
        t = json.loads(line)
    except ValueError:
        continue
    text = t.get("input") or (t.get("messages") or [{}])[-1].get("content")
    if isinstance(text, str):
        prompts.append(text)
        if t.get("type") == "math" and text.strip() in rec:
            demo.append(text.strip())
def tier(name, p, answer, right):
    tin, tout = -(-len(p.encode()) // 4), -(-len(answer.encode()) // 4)
    return {"answer": answer, "correct": right, "input_tokens": tin,
            "output_tokens": tout,
            "cost_usd": tin * price[name][0] + tout * price[name][1]}
def outcome(p):
    r = rec[p]
    return {"type": "math", "prompt": p, "tiers": {
        "mid": tier("mid", p, r[W + "_response"], r[W] == "True"),
        "frontier": tier("frontier", p, r[S + "_response"], r[S] == "True")}}
rest = [p for p in rec if p not in bad and p not in set(demo)]
random.Random(1).shuffle(rest)
cut = int(0.7 * len(rest))
for name, ps in (("fit", rest[:cut]), ("tune", rest[cut:]), ("demo", demo)):
    with open(f"{out}/{name}.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(outcome(p)) + "\n" for p in ps)
with open(f"{out}/prompts.json", "w", encoding="utf-8") as f:
    json.dump(prompts, f)
PY
    "$BIN/kascade" train --kind verifier --tier mid --answer-pattern "$pattern" \
        -i "$c/fit.jsonl" -o "$c/verifier.lrm" >"$c/train.log" 2>&1
    "$BIN/kascade" eval -i "$c/tune.jsonl" --verifier "$c/verifier.lrm" \
        --answer-pattern "$pattern" --write-outcomes "$c/tune_scored.jsonl" \
        >"$c/eval-tune.log" 2>&1
    "$BIN/kascade" tune -i "$c/tune_scored.jsonl" --source verifier \
        --target "$TARGET" -o "$c/fragment.json" >"$c/tune.log" 2>&1
    MATH_BELOW=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tiers"][0]["escalate_below"])' "$c/fragment.json")
    python3 - "$ROOT/bench/data/routellm-gsm8k" "$c" <<'PY'
import csv, json, sys
data, c = sys.argv[1:]
W, S = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
csv.field_size_limit(1 << 24)
rec = {r["prompt"].strip(): r for r in csv.DictReader(open(f"{data}/gsm8k_responses.csv", encoding="utf-8", newline=""))}
math = {json.loads(l)["prompt"].strip() for l in open(f"{c}/demo.jsonl", encoding="utf-8")}
with open(f"{c}/../replay.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["prompt", "mid_response", "mid_confidence", "frontier_response"])
    for p in dict.fromkeys(json.load(open(f"{c}/prompts.json"))):
        k = p.strip()
        if k in math:
            # No recorded confidence: the worker's verifier scores the answer.
            w.writerow([p, rec[k][W + "_response"], "", rec[k][S + "_response"]])
        else:
            words = " ".join(k.split()[:8])
            w.writerow([p, f"(simulated mid answer) {words} ...", "",
                        f"(simulated frontier answer) {words} ..."])
PY
    say "cascade: verifier trained on $(wc -l <"$c/fit.jsonl") GSM8K answers of Mixtral; math escalates from mid below $(printf %.3f "$MATH_BELOW") (kascade tune --target $TARGET)"
    # A copy of the config with the threshold and tier mid's verifier for
    # math (map entries are not -X overridable).
    python3 - "$CONFIG" "$TMP/kascade.json" "$MATH_BELOW" "$c/verifier.lrm" \
        "${pattern#math=}" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
for t in cfg["tiers"]:
    if t["name"] == "mid":
        t.setdefault("escalate_below_types", {})["math"] = float(sys.argv[3])
        t.setdefault("verifier_models", {})["math"] = sys.argv[4]
cfg.setdefault("answer_patterns", {})["math"] = sys.argv[5]
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PY
    CONFIG=$TMP/kascade.json
}

# report_quality: the labelled tasks' answers against metadata.expected,
# and what the frontier tier alone would have answered (recorded).
report_quality() {
    python3 - "$TASKS" "$TMP/results.jsonl" "$TMP/replay.csv" <<'PY'
import csv, json, re, sys
tasks, results, replay = sys.argv[1:]
num = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?")
def final(text):
    m = re.findall(r"####\s*\$?(" + num.pattern + ")", text or "")
    m = m or num.findall(text or "")
    return m[-1].replace(",", "").rstrip(".") if m else None
def same(a, b):
    try:
        return a is not None and float(a) == float(b)
    except ValueError:
        return a == b
label, prompt = {}, {}
for line in open(tasks, encoding="utf-8"):
    try:
        t = json.loads(line)
    except ValueError:
        continue
    exp = (t.get("metadata") or {}).get("expected")
    if exp is not None and "id" in t:
        label[t["id"]], prompt[t["id"]] = exp, (t.get("input") or "").strip()
if not label:
    sys.exit(0)
csv.field_size_limit(1 << 24)
top = {r["prompt"].strip(): r["frontier_response"] for r in csv.DictReader(open(replay, encoding="utf-8", newline=""))}
got = {}
for line in open(results, encoding="utf-8"):
    r = json.loads(line)
    if r.get("id") in label:
        got[r["id"]] = r
right = sum(same(final(got[i].get("output")), label[i]) for i in got)
esc = sum(len(got[i].get("path") or []) > 1 for i in got)
frontier = sum(same(final(top.get(prompt[i])), label[i]) for i in label)
print(f"\nquality on the {len(label)} labelled tasks: {right}/{len(label)} right "
      f"with the cascade ({esc} escalated from mid on the verifier's score), "
      f"{frontier}/{len(label)} for the frontier tier alone (its recorded answers)")
if len(got) < len(label):
    print(f"  ({len(label) - len(got)} labelled task(s) without a result)")
PY
}

start_models() {
    local tier latency
    for tier in $(python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(open(sys.argv[1]))["tiers"]))' "$CONFIG"); do
        case "$tier" in
        local)
            latency=40
            if use_llm && start_llm; then
                continue
            fi
            ;;
        mid) latency=150 ;;
        *) latency=400 ;;
        esac
        replay=()
        if [ "$tier" != local ] && [ -s "$TMP/replay.csv" ]; then
            replay=(--replay "$TMP/replay.csv" --replay-model "$tier")
        fi
        "$BIN/kascade-modelsim" --port 0 --latency-ms "$latency" \
            --jitter-ms $((latency / 2)) --model "sim-$tier" "${replay[@]}" \
            >"$TMP/sim-$tier.out" 2>"$TMP/sim-$tier.log" &
        PIDS+=($!)
        wait_for_line "$TMP/sim-$tier.out" '^listening on '
        X+=(-X "tiers.$tier.providers.0.base_url=$(sed -n 's/^listening on //p' "$TMP/sim-$tier.out")/v1"
            -X "tiers.$tier.providers.0.model=sim-$tier")
        TIERS+=("$tier")
        SIM_TIERS+=("$tier")
    done
    say "models: simulator for ${SIM_TIERS[*]}, stand-ins for the real models"
    if [ "${SIM_TIERS[0]:-}" = local ] && [ "${KASCADE_DEMO_LLM:-}" != 0 ]; then
        say "(KASCADE_DEMO_LLM=1 runs tier local on the real local model; its first build takes a few minutes)"
    fi
}

TIERS=()
SIM_TIERS=()
start_broker
KASCADE_REDIS_URL=$(KASCADE_REDIS_DIR="$TMP/redis" "$ROOT/deploy/local/redis.sh" start 2>/dev/null)
export KASCADE_REDIS_URL
say "Redis: $KASCADE_REDIS_URL"
if grep -q '"type": "math"' "$TASKS"; then
    prepare_cascade
fi
start_models

"$BIN/kascade-router" -c "$CONFIG" "${X[@]}" 2>"$TMP/router.log" &
PIDS+=($!)
for tier in "${TIERS[@]}"; do
    "$BIN/kascade-worker" -c "$CONFIG" "${X[@]}" --tier "$tier" \
        2>"$TMP/worker-$tier.log" &
    PIDS+=($!)
done
# Submit once every consumer has its partitions, so the latency figures
# measure the fleet and not the first group join.
# (Named, not globbed: a log file may not exist yet.)
LOGS=("$TMP/router.log")
for tier in "${TIERS[@]}"; do
    LOGS+=("$TMP/worker-$tier.log")
done
for log in "${LOGS[@]}"; do
    for _ in $(seq 300); do
        grep -q 'assigned [1-9]' "$log" 2>/dev/null && break
        sleep 0.1
    done
done
say "fleet: router + one worker per tier; submitting $(wc -l <"$TASKS") tasks"

status=0
"$BIN/kascade" -c "$CONFIG" "${X[@]}" submit "$TASKS" --wait --timeout 300 \
    -o "$TMP/results.jsonl" | tee "$TMP/summary.txt" || status=${PIPESTATUS[0]}
# The example file has two deliberately bad lines: submit exits 1 for the
# rejected one; the run is complete when no task is missing.
if [ "$status" = 1 ] && grep -q '^kascade summary' "$TMP/summary.txt" &&
    ! grep -q 'missing:' "$TMP/summary.txt"; then
    status=0
fi
if grep -q '"status":"ok"' "$TMP/results.jsonl" 2>/dev/null; then
    say "one result:"
    head -n 1 "$TMP/results.jsonl" | cut -c 1-300 >&2
fi
if [ $status -eq 0 ]; then
    report_quality
fi
if [ $status -ne 0 ]; then
    echo "demo: the run did not complete; daemon logs:" >&2
    tail -n 20 "$TMP"/*.log >&2
fi
say "stopping everything"
exit $status
