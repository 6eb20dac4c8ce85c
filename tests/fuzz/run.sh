#!/usr/bin/env bash
# tests/fuzz/run.sh FUZZ_BUILD_DIR [TARGET...]
#
# Runs each libFuzzer target FUZZ_BUILD_DIR/bin/fuzz_<name> (all of them
# when no TARGET is named) for FUZZ_SECONDS (default 60), one at a time,
# starting from the seed corpus tests/fuzz/corpus/<name>/ (read only) and
# adding what it finds to FUZZ_BUILD_DIR/corpus/<name>/. A crash, leak,
# sanitizer report, timeout (-timeout) or memory blow-up (-rss_limit_mb,
# -malloc_limit_mb) fails the target and leaves the input in
# FUZZ_BUILD_DIR/crashes/<name>/, whose path is printed; the log is
# FUZZ_BUILD_DIR/logs/<name>.log. Reproduce with
# `FUZZ_BUILD_DIR/bin/fuzz_<name> PATH`. Ends with one "N passed, N failed"
# line; exits non-zero if any target failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: tests/fuzz/run.sh FUZZ_BUILD_DIR [TARGET...]}
shift
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SECONDS_EACH=${FUZZ_SECONDS:-60}

# Longest input per target: the codec targets' limits (tests/fuzz/fuzz.h)
# cap a message at 12 KiB, so a bit more reaches the too_large path.
max_len() {
    case "$1" in
    lr) echo 8192 ;; # the seeds are 1.5-2.3 KiB (--bits 8)
    *) echo 16384 ;;
    esac
}

# The JSON targets share a dictionary of JSON tokens and the keys and
# values of the seeds (tests/fuzz/seeds.py writes it).
dict_of() {
    case "$1" in
    task_pb | lr) ;;
    *) echo "-dict=$ROOT/tests/fuzz/json.dict" ;;
    esac
}

export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${FUZZ_UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for t in "$ROOT"/tests/fuzz/fuzz_*.c; do
        t=$(basename "$t" .c)
        targets+=("${t#fuzz_}")
    done
fi

passed=0
failed=0
failed_names=()
for name in "${targets[@]}"; do
    bin="$BUILD/bin/fuzz_$name"
    seeds="$ROOT/tests/fuzz/corpus/$name"
    work="$BUILD/corpus/$name"
    crashes="$BUILD/crashes/$name"
    log="$BUILD/logs/$name.log"
    mkdir -p "$work" "$crashes" "$BUILD/logs"
    echo "== fuzz: $name (${SECONDS_EACH} s)"
    if [ ! -x "$bin" ]; then
        echo "   no $bin (run make fuzz-build first)" >&2
        rc=1
    else
        "$bin" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$name")" \
            -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
            -print_final_stats=1 -artifact_prefix="$crashes/" \
            $(dict_of "$name") \
            "$work" "$seeds" >"$log" 2>&1
        rc=$?
        grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" |
            sed 's/^/   /'
    fi
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        [ -f "$log" ] && grep -E 'ERROR|SUMMARY|runtime error|^==[0-9]+==' \
            "$log" | head -5 | sed 's/^/   /'
        [ -f "$log" ] &&
            sed -n 's/.*Test unit written to \(.*\)$/   crashing input: \1/p' \
                "$log"
        echo "   log: $log"
    fi
done

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "fuzz failed: ${failed_names[*]}"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
