#!/usr/bin/env bash
# bench/cascade.sh BUILD_DIR - the GSM8K cascade through the real fleet.
#
# For each seed: bench/gsm8k_prep.py splits the RouteLLM GSM8K outcomes
# (Mixtral-8x7B = tier cheap, GPT-4 = tier top; contaminated prompts
# dropped) into train (60%) and test (40%). On train: `kascade train
# --kind verifier` (tier cheap's answers, the GSM8K answer_pattern) and
# `kascade train --kind router` (the prompt score), cross-fitted: each of
# $CASCADE_FOLDS (8) folds is scored by models trained on the others, and
# `kascade tune --target $CASCADE_TARGET` picks the thresholds of three
# configs (verifier; prompt score; verifier + prompt score) on those
# out-of-fold scores; the models deployed are trained on all of train. Then the test split goes through the real router and workers on
# a real Kafka broker and redis-server, once per run:
#   all-cheap, all-top      every task on one tier
#   random                  tier cheap escalates a seeded random set of
#                           tasks, as many as the verifier run escalated
#   prompt score            the router's learned score sends tasks to top
#   verifier                tier cheap escalates below tune's threshold
#                           (tier top reads the cheap answer's final
#                           answer, escalate_context "final", the default;
#                           bench/cascade.json's answer_patterns.math)
#   verifier, top reads the answer's end   the same with
#                           escalate_context "answer", thresholds tuned
#                           for that price
#   verifier, top reads nothing   the same with escalate_context "none",
#                           thresholds tuned for that price
#   verifier in the worker  the worker computes the verifier's score
#                           itself (tiers.cheap.verifier_model)
#   verifier + prompt score both
# Each tier's kascade-modelsim replays the recorded answer of its model
# for the prompt (bench/modelsim --replay); the verifier's score of the
# cheap answer, computed by `kascade eval --verifier` (ks_verify_score,
# what a worker computes), reaches the worker as the answer's logprobs
# (the replay file's cheap_confidence column), and the worker compares it
# with escalate_below. Results are graded against the recorded
# correctness of the tier that answered; cost is what the Results say
# (the worker's own pricing of the simulator's token counts, list prices
# in bench/cascade.json). The oracle is computed offline.
#
# Environment: CASCADE_SEEDS ("1 2 3 4 5"), CASCADE_TARGET (top-1),
# CASCADE_OUT (a directory for the figures, the SVG and each seed's work
# directory; default build/cascade), CASCADE_FOLDS (8), CASCADE_DATA (bench/data/routellm-gsm8k), CASCADE_TIMEOUT
# (600 s a run), CASCADE_RUNS (a comma list of run names; default all),
# CASCADE_TRANSFER (1: tune --deploy-scores carries the thresholds onto
# the deployed verifier's scale; 0: as chosen on the fold scores).
# Needs Kafka and redis-server as the tests do
# (deploy/local/kafka.sh, redis.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:?usage: bench/cascade.sh BUILD_DIR}
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
BIN=$B/bin
K=$BIN/kascade
DATA=${CASCADE_DATA:-$ROOT/bench/data/routellm-gsm8k}
SEEDS=${CASCADE_SEEDS:-1 2 3 4 5}
TARGET=${CASCADE_TARGET:-top-1}
TIMEOUT=${CASCADE_TIMEOUT:-600}
BASE=$ROOT/bench/cascade.json
# GSM8K's final answer; an instance of the verifier's answer_pattern.
PATTERN='math=####\s*\$?(-?[0-9][0-9,]*(?:\.[0-9]+)?)'
FOLDS=${CASCADE_FOLDS:-8}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-cascade.XXXXXX")
OUT=${CASCADE_OUT:-$ROOT/build/cascade}
mkdir -p "$OUT"
TASKS=/dev/null
PIDS=()
source "$ROOT/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

for b in kascade kascade-router kascade-worker kascade-modelsim; do
    [ -x "$BIN/$b" ] || die "no $BIN/$b (run make first)"
done
[ -f "$DATA/gsm8k_responses.csv" ] || die "no $DATA/gsm8k_responses.csv"
TASKS=$ROOT/bench/cascade.json # start_kafka_redis checks it exists
start_kafka_redis
: >"$OUT/runs.jsonl"

# sim NAME COLUMN: a simulator replaying COLUMN of $W/replay.csv; sets URL.
# Logs go to $L (the run's log prefix).
sim() {
    # The file exists before the simulator's shell opens it: the loop
    # below may read first.
    : >"$L-sim-$1.out"
    "$BIN/kascade-modelsim" --port 0 --replay "$W/replay.csv" \
        --replay-model "$2" --model "sim-$1" >"$L-sim-$1.out" \
        2>"$L-sim-$1.log" &
    track $!
    URL=
    for _ in $(seq 1200); do
        # The whole line, port and all (read once it is there: an empty
        # read stopped a run on the loaded machine).
        URL=$(sed -n 's|^listening on \(http://[^ ]*:[0-9][0-9]*\)$|\1|p' "$L-sim-$1.out")
        [ -z "$URL" ] || break
        alive "$!" || die "simulator $1 did not start (see $L-sim-$1.log)"
        sleep 0.05
    done
    [ -n "$URL" ] || die "simulator $1 did not start in 30 s (see $L-sim-$1.log)"
    URL=$URL/v1
}

# fleet RUN CONFIG CHEAP_COLUMN [-X k=v]...: one run of the test split,
# graded into $OUT/runs.jsonl. A run whose Results include failed ones
# (a provider's circuit opened: the simulators stall on this shared
# machine now and then) is said and kept aside ($W/log-RUN-tryN-*), and
# run again, at most 3 times in all.
fleet() {
    local try line
    for try in 1 2 3; do
        L="$W/log-${1// /-}-try$try"
        fleet_once "$try" "$@"
        line=$(cat "$L-grade.json")
        if ! grep -q '"failed"' <<<"$line" || [ "$try" = 3 ]; then
            printf '%s\n' "$line" | tee -a "$OUT/runs.jsonl"
            return 0
        fi
        say "seed $SEED: $1: failed Results ($line); logs $L-*; again"
        printf '%s\n' "$line" >>"$OUT/runs-failed.jsonl"
    done
}

fleet_once() {
    local try=$1 run=$2 cfg=$3 col=$4 prefix pids=() log s
    shift 4
    prefix="kc-$SEED-${run// /-}-$try-$$."
    prefix=${prefix//+/p}
    prefix=${prefix//[^A-Za-z0-9._-]/} # a topic name's characters
    sim cheap "$col"
    local cheap_url=$URL
    pids+=("${PIDS[-1]}")
    sim top top
    pids+=("${PIDS[-1]}")
    local x=(-X "topics.prefix=$prefix" -X "redis.prefix=$prefix"
        -X "tiers.cheap.providers.0.base_url=$cheap_url"
        -X "tiers.top.providers.0.base_url=$URL" "$@")
    "$K" -c "$cfg" "${x[@]}" topics create >/dev/null
    "$BIN/kascade-router" -c "$cfg" "${x[@]}" 2>"$L-router.log" &
    track $!
    pids+=($!)
    for tier in cheap top; do
        "$BIN/kascade-worker" -c "$cfg" "${x[@]}" --tier "$tier" \
            2>"$L-worker-$tier.log" &
        track $!
        pids+=($!)
    done
    for log in "$L-router.log" "$L-worker-cheap.log" "$L-worker-top.log"; do
        for _ in $(seq 600); do
            grep -q 'assigned [1-9]' "$log" 2>/dev/null && break
            sleep 0.1
        done
    done
    say "seed $SEED: $run"
    # A topic just created may not have its leader yet when submit reads
    # the DLQ's offsets: try again (tasks are idempotent by id).
    for s in 1 2 3 4; do
        "$K" -c "$cfg" "${x[@]}" submit "$W/tasks.jsonl" --wait \
            --timeout "$TIMEOUT" -o "$W/results-${run// /-}.jsonl" \
            >"$W/submit-${run// /-}.txt" 2>"$W/submit-${run// /-}.err" && break
        [ "$s" != 4 ] || die "$run: submit failed (see $W/submit-${run// /-}.err)"
        say "$run: submit failed ($(tail -n 1 "$W/submit-${run// /-}.err")); again"
        sleep 2
    done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[i]}"
        untrack "${pids[i]}"
    done
    python3 "$ROOT/bench/cascade.py" grade "$W/scored_test.jsonl" \
        "$W/results-${run// /-}.jsonl" "$run" "$SEED" >"$L-grade.json"
}

# threshold FILE KEY: a number from a tuned config.
threshold() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=sys.argv[2]
v = d["routing"].get("score_threshold") if k == "router" else \
    [t for t in d["tiers"] if t["name"] == "cheap"][0]["escalate_below"]
print(v)' "$1" "$2"
}

for SEED in $SEEDS; do
    W=$OUT/work/seed-$SEED # kept: models, configs, results, logs
    rm -rf "$W"
    mkdir -p "$W"
    python3 "$ROOT/bench/gsm8k_prep.py" --data "$DATA" --out "$W" \
        --seed "$SEED" --train-share 0.6 2>>"$W/prep.log"
    # Cross-fitting on the training split: each fold is scored by models
    # trained on the other folds, so tune sees scores like the test's.
    python3 "$ROOT/bench/cascade.py" folds "$W/outcomes_train.jsonl" "$FOLDS" "$W"
    say "seed $SEED: training the verifier and the prompt score ($FOLDS folds, then all)"
    train_pair() { # train_pair OUTCOMES ROUTER_LABELS NAME
        "$K" train --kind verifier --tier cheap --answer-pattern "$PATTERN" \
            -i "$1" -o "$W/$3-verifier.lrm" --seed "$SEED" \
            >"$W/train-$3-verifier.txt" 2>&1 || die "train verifier $3 (see $W)"
        "$K" train --kind router -i "$2" -o "$W/$3-router.lrm" \
            --seed "$SEED" >"$W/train-$3-router.txt" 2>&1 || die "train router $3"
    }
    score() { # score OUTCOMES NAME OUT
        "$K" eval -i "$1" --verifier "$W/$2-verifier.lrm" \
            --answer-pattern "$PATTERN" --score-model "$W/$2-router.lrm" \
            --write-outcomes "$3" --svg-dir "$W" >"$W/eval-$2.txt" 2>&1 ||
            die "eval $2 (see $W/eval-$2.txt)"
    }
    : >"$W/scored_tune.jsonl"
    for ((f = 0; f < FOLDS; f++)); do
        train_pair "$W/fold${f}_fit.jsonl" "$W/fold${f}_router.jsonl" "fold$f"
        score "$W/fold${f}_held.jsonl" "fold$f" "$W/scored_fold$f.jsonl"
        cat "$W/scored_fold$f.jsonl" >>"$W/scored_tune.jsonl"
    done
    train_pair "$W/outcomes_train.jsonl" "$W/router_all.jsonl" all
    score "$W/outcomes_test.jsonl" all "$W/scored_test.jsonl"
    cp "$W/all-verifier.lrm" "$W/verifier.lrm"
    cp "$W/all-router.lrm" "$W/router.lrm"
    mv "$W/eval-all.txt" "$W/eval-test.txt"
    cp "$W/eval-test.txt" "$OUT/eval-test-seed$SEED.txt"
    [ "$SEED" != "${SEEDS%% *}" ] || cp "$W"/quality_cost.svg "$W"/reliability.svg "$OUT/"
    # The deployed verifier scores on another scale than the fold models
    # tune chooses with: tune carries each escalate_below over as the
    # share it sends up (--deploy-scores), onto the deployed model's scores
    # of the test split's cheap answers with their labels removed (as a
    # deployment would score a sample of its traffic's cheap answers).
    # CASCADE_TRANSFER=0 writes the thresholds as chosen (the old way).
    python3 -c 'import json,sys
with open(sys.argv[2], "w") as out:
    for l in open(sys.argv[1]):
        d = json.loads(l)
        for t in d["tiers"].values():
            t.pop("correct", None)
        out.write(json.dumps(d) + "\n")' "$W/scored_test.jsonl" "$W/unlabelled_test.jsonl"
    DEPLOY=(--deploy-scores "$W/unlabelled_test.jsonl")
    [ "${CASCADE_TRANSFER:-1}" != 0 ] || DEPLOY=()
    tune() { # tune NAME SOURCE [--score-model M]
        local name=$1 src=$2
        shift 2
        # --price: cost_usd is in the outcomes; the top tier's input price
        # prices what an escalated call reads of the cheap answer (as the
        # top tier's escalate_context says: --escalate-context).
        "$K" tune -i "$W/scored_tune.jsonl" --test "$W/scored_test.jsonl" \
            --target "$TARGET" --source "$src" "$@" --config "$BASE" \
            --price top=10:30 "${DEPLOY[@]}" \
            --write-config "$W/cfg-$name.json" >"$W/tune-$name.txt" 2>&1 ||
            die "tune $name (see $W/tune-$name.txt)"
        cp "$W/tune-$name.txt" "$OUT/tune-$name-seed$SEED.txt"
    }
    tune verifier verifier --escalate-context final
    tune verifier-answer verifier --escalate-context answer
    tune verifier-none verifier --escalate-context none
    tune router none --score-model "$W/router.lrm"
    tune both verifier --score-model "$W/router.lrm"
    python3 "$ROOT/bench/cascade.py" tasks "$W/scored_test.jsonl" "$W/tasks.jsonl"
    python3 "$ROOT/bench/cascade.py" offline "$W/scored_test.jsonl" "$SEED" |
        tee -a "$OUT/runs.jsonl"
    # Random escalation at the share the verifier's config escalates on test.
    share=$(sed -n 's/^ *sent up *\([0-9.]*\)%.*/\1/p' "$W/tune-verifier.txt")
    python3 "$ROOT/bench/cascade.py" replay "$W/scored_test.jsonl" \
        "$W/replay.csv" --random-share "$(awk "BEGIN { print $share / 100 }")" \
        --seed "$SEED"

    wants() { [ -z "${CASCADE_RUNS:-}" ] || [[ ",$CASCADE_RUNS," == *",$1,"* ]]; }
    ! wants all-cheap || fleet all-cheap "$BASE" cheap -X tiers.cheap.escalate_below=0
    ! wants all-top || fleet all-top "$BASE" cheap -X routing.task_types.math=top \
        -X routing.default_tier=top
    ! wants random || fleet random "$BASE" cheaprand -X tiers.cheap.escalate_below=0.5
    ! wants "prompt score" || fleet "prompt score" "$W/cfg-router.json" cheap \
        -X tiers.cheap.escalate_below=0
    ! wants verifier || fleet verifier "$W/cfg-verifier.json" cheap
    # The same verifier, tuned and run with tier top reading the end of the
    # cheap answer (escalate_context answer, about 100 tokens more a call).
    ! wants "verifier, top reads the answer's end" ||
        fleet "verifier, top reads the answer's end" \
            "$W/cfg-verifier-answer.json" cheap \
            -X tiers.top.escalate_context=answer
    # The same verifier, tuned and run with tier top reading only the task
    # (escalate_context none): an escalated call costs a direct one.
    ! wants "verifier, top reads nothing" ||
        fleet "verifier, top reads nothing" "$W/cfg-verifier-none.json" cheap \
            -X tiers.top.escalate_context=none
    ! wants "verifier + prompt score" ||
        fleet "verifier + prompt score" "$W/cfg-both.json" cheap
    # The worker's own verifier source (tiers[].verifier_model): the
    # simulator's logprobs are its stand-in values then, and the worker
    # combines them with the verifier (source "combined").
    ! wants "verifier in the worker" ||
        fleet "verifier in the worker" "$W/cfg-verifier.json" cheapplain \
            -X "tiers.cheap.verifier_model=$W/verifier.lrm"
done

python3 "$ROOT/bench/cascade.py" table "$OUT/runs.jsonl" --svg "$OUT/cascade.svg" |
    tee "$OUT/table.md"
say "figures in $OUT (runs.jsonl, table.md, cascade.svg, eval and tune output)"
