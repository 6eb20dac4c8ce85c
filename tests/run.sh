#!/usr/bin/env bash
# tests/run.sh BUILD_DIR [unit|integration|fuzz|all|memcheck]
#
# Runs the cmocka unit test binaries of BUILD_DIR, then the integration
# tests against a real Apache Kafka broker (deploy/local/kafka.sh) and a
# real redis-server (deploy/local/redis.sh) that this script starts and
# always stops, then each libFuzzer target of build/fuzz (`make
# fuzz-build`) for FUZZ_SECONDS (here 10 unless set). Ends with one "N
# passed, N failed" line; exits non-zero if anything failed.
#
# memcheck (not part of all): each unit test binary of BUILD_DIR, which
# must be a build without sanitizers (build/release), under valgrind's
# memcheck: a read of uninitialised memory, an invalid access or a bad
# free fails it. That is what ASan does not see; leaks are left to the
# ASan build. `make test` runs it after the sanitizer suite.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: tests/run.sh BUILD_DIR [unit|integration|fuzz|all|memcheck]}
WHAT=${2:-all}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
passed=0
failed=0
failed_names=()

# Sanitizer builds: fail on the first report, and find leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

record() { # record NAME STATUS
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("$1")
    fi
}

# each_unit LABEL PREFIX [RUNNER...]: every unit test binary of BUILD run
# (from the repository root) through RUNNER, one result each, named
# PREFIX<binary>; none at all is a failure (PREFIXunit-binaries).
each_unit() {
    local label=$1 prefix=$2 t rc found=0
    shift 2
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        found=1
        echo "== $label: $(basename "$t")"
        (cd "$ROOT" && "$@" "$t")
        rc=$? # before any other expansion resets $?
        record "$prefix$(basename "$t")" $rc
    done
    if [ $found = 0 ]; then
        echo "no unit test binaries in $BUILD/tests (run make first)" >&2
        record "${prefix}unit-binaries" 1
    fi
}

run_unit() {
    each_unit unit ""
    echo "== lint: layers"
    python3 "$ROOT/tests/lint/layers.py" "$BUILD"
    record lint-layers $?
    echo "== lint: config keys"
    python3 "$ROOT/tests/lint/config_keys.py"
    record lint-config-keys $?
    # Deployment files (deploy/): checked against their tools, no broker.
    for t in "$ROOT"/tests/deploy/test_*.sh; do
        [ -e "$t" ] || continue
        echo "== deploy: $(basename "$t" .sh)"
        bash "$t" "$BUILD"
        rc=$? # before the name's command substitution resets $?
        record "deploy-$(basename "$t" .sh)" $rc
    done
}

STACK_TMP=
stop_stack() {
    [ -n "$STACK_TMP" ] || return 0
    KASCADE_STATE_DIR="$STACK_TMP/kafka" "$ROOT/deploy/local/kafka.sh" stop \
        >/dev/null 2>&1 || true
    KASCADE_REDIS_DIR="$STACK_TMP/redis" "$ROOT/deploy/local/redis.sh" stop \
        >/dev/null 2>&1 || true
    rm -rf "$STACK_TMP"
}

run_integration() {
    local t rc start
    prepare_llm
    STACK_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-it.XXXXXX")
    trap stop_stack EXIT
    start=$SECONDS
    # A fresh broker on a free port, never one a developer left running.
    KASCADE_BOOTSTRAP_SERVERS=$(KASCADE_KAFKA_PORT=$(free_port) \
        KASCADE_STATE_DIR="$STACK_TMP/kafka" "$ROOT/deploy/local/kafka.sh" start) ||
        { record kafka-start 1; return; }
    KASCADE_REDIS_URL=$(KASCADE_REDIS_DIR="$STACK_TMP/redis" \
        "$ROOT/deploy/local/redis.sh" start) || { record redis-start 1; return; }
    export KASCADE_BOOTSTRAP_SERVERS KASCADE_REDIS_URL
    # Test dirs live apart from the stack's, so a failed test's logs
    # survive the stack's removal.
    KS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-it-logs.XXXXXX")
    export KS_BIN="$BUILD/bin" KS_TMP
    echo "== integration: Kafka $KASCADE_BOOTSTRAP_SERVERS, Redis" \
        "$KASCADE_REDIS_URL (up in $((SECONDS - start)) s)"
    # IT_ONLY=NAME runs tests/integration/test_NAME.sh alone (a glob).
    for t in "$ROOT"/tests/integration/test_${IT_ONLY:-*}.sh; do
        echo "== integration: $(basename "$t" .sh)"
        start=$SECONDS
        timeout 600 bash "$t"
        rc=$?
        record "$(basename "$t" .sh)" $rc
        echo "   ($((SECONDS - start)) s)"
    done
    stop_stack
    STACK_TMP=
    rmdir "$KS_TMP" 2>/dev/null || echo "logs of failed tests: $KS_TMP"
}

# memcheck_one BINARY: BINARY under memcheck; its output only when it fails.
memcheck_one() {
    local rc
    valgrind -q --error-exitcode=99 --leak-check=no --track-origins=yes \
        "$1" >"$BUILD/memcheck.out" 2>&1
    rc=$?
    if [ $rc != 0 ]; then
        cat "$BUILD/memcheck.out"
        echo "   memcheck: $(basename "$1") exited $rc (99: valgrind reported)"
    fi
    return $rc
}

run_memcheck() {
    if ! command -v valgrind >/dev/null; then
        echo "memcheck: no valgrind on PATH (deploy/local/deps.sh installs it)" >&2
        record memcheck-valgrind 1
        return
    fi
    if nm "$BUILD"/tests/test_* 2>/dev/null | grep __asan_init >/dev/null; then
        echo "memcheck: $BUILD is a sanitizer build; valgrind needs build/release" >&2
        record memcheck-build 1
        return
    fi
    each_unit memcheck memcheck- memcheck_one
    rm -f "$BUILD/memcheck.out"
}

# Each fuzz target briefly, one result each; tests/fuzz/run.sh prints a
# crashing input's path. The targets come from `make fuzz-build` (make test
# builds them), not from BUILD_DIR.
run_fuzz() {
    local t name rc
    for t in "$ROOT"/tests/fuzz/fuzz_*.c; do
        name=$(basename "$t" .c)
        name=${name#fuzz_}
        FUZZ_SECONDS=${FUZZ_SECONDS:-10} "$ROOT/tests/fuzz/run.sh" \
            "$ROOT/build/fuzz" "$name" | grep -v '^fuzz: '
        rc=${PIPESTATUS[0]}
        record "fuzz_$name" "$rc"
    done
}

# A test that runs the real local model needs its venv, whose first build
# (llama.cpp from source) takes longer than one test may: build it first.
prepare_llm() {
    local t
    for t in "$ROOT"/tests/integration/test_${IT_ONLY:-*}.sh; do
        grep -q 'deploy/local/llm.sh\|/llm\.sh' "$t" 2>/dev/null || continue
        "$ROOT/deploy/local/llm.sh" ready && return 0
        echo "== integration: building the local model server's venv (once)"
        "$ROOT/deploy/local/llm.sh" prepare >/dev/null || record llm-prepare 1
        return 0
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$WHAT" in
unit) run_unit ;;
integration) run_integration ;;
fuzz) run_fuzz ;;
all) run_unit; run_integration; run_fuzz ;;
memcheck) run_memcheck ;;
*) echo "unknown test set '$WHAT'" >&2; exit 2 ;;
esac

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
