# deploy/local/common.sh - helpers shared by kafka.sh, redis.sh and llm.sh
# (sourced; defines functions only). The caller sets PROG (its name, for
# messages) first. Some helpers also read the caller's STATE_DIR, PIDFILE,
# LOCK, START_TIMEOUT and STOP_TIMEOUT, and call its show_log_tail: each
# says which.

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

now_ms() { date +%s%3N; }

# alive PID: is PID a running process? A zombie (exited, not yet reaped by
# an init that reaps slowly) counts as gone.
alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# with_lock FILE SECONDS CMD...: run CMD holding an exclusive flock on FILE.
# CMD is not run in a conditional, so `set -e` still holds inside it; the
# lock goes with the process if it exits. Background children close fd 9.
with_lock() {
  local file=$1 secs=$2
  shift 2
  if ! command -v flock >/dev/null 2>&1; then
    "$@"
    return
  fi
  mkdir -p -- "$(dirname -- "$file")"
  {
    flock -w "$secs" 9 || die "timed out after ${secs}s waiting for lock $file (another $PROG running?)"
    "$@"
  } 9>"$file"
}

# port_free PORT: can a server bind 127.0.0.1:PORT?
port_free() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
  fi
}

# free_port [EXCEPT]: print a free loopback port other than EXCEPT.
free_port() {
  local p i
  for ((i = 0; i < 50; i++)); do
    if command -v python3 >/dev/null 2>&1; then
      p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    else
      p=$((20000 + RANDOM % 30000))
      port_free "$p" || continue
    fi
    [[ $p != "${1:-}" ]] && { printf '%s\n' "$p"; return 0; }
  done
  die "could not find a free port on 127.0.0.1"
}

# pick_port VAR: print the port the environment variable VAR names (it must
# be a number and free on 127.0.0.1, else die), or any free port if VAR is
# unset or empty.
pick_port() {
  local port=${!1:-}
  if [[ -n $port ]]; then
    [[ $port =~ ^[0-9]+$ ]] || die "$1='$port' is not a port number"
    port_free "$port" || die "port $port ($1) is in use on 127.0.0.1"
    printf '%s\n' "$port"
  else
    free_port
  fi
}

# need CMD [PACKAGE]: die unless CMD is on PATH (Debian PACKAGE has it).
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: run deploy/local/deps.sh (Debian package ${2:-$1})"
}

# wait_gone PID TENTHS: wait up to TENTHS tenths of a second for PID to go;
# 1 if it is still there.
wait_gone() {
  local pid=$1 tenths=$2 i
  for ((i = 0; i < tenths; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# term_then_kill PID WHAT: SIGTERM, up to STOP_TIMEOUT s for PID to go, then
# SIGKILL and up to 5 s more; WHAT names the process in the messages.
term_then_kill() {
  kill -TERM "$1" 2>/dev/null || true
  if ! wait_gone "$1" $((STOP_TIMEOUT * 10)); then
    say "$2 $1 did not stop in ${STOP_TIMEOUT}s; killing it"
    kill -KILL "$1" 2>/dev/null || true
    wait_gone "$1" 50 || say "warning: process $1 is still there after SIGKILL"
  fi
}

# abs_dir DIR: print DIR without a trailing '/', relative to PWD if not
# absolute.
abs_dir() {
  local d=${1%/}
  [[ $d == /* ]] || d=$PWD/$d
  printf '%s\n' "$d"
}

# reuse_running PROBE URL_FORMAT VAR: at a start, if the caller's server_pid
# finds its server and PROBE PORT succeeds on the port of port_of, say it is
# already running (and that the port variable VAR is ignored if it names
# another port), print the URL (printf URL_FORMAT PORT) and return 0; else 1.
reuse_running() {
  local pid port
  pid=$(server_pid) && port=$(port_of) && "$1" "$port" || return 1
  say "already running (pid $pid, state $STATE_DIR)"
  [[ -z ${!3:-} || ${!3} == "$port" ]] || say "note: $3=${!3} ignored"
  printf "$2" "$port"
}

# wait_started WHAT CMD...: after a server was started in the background and
# writes its pid to PIDFILE, wait up to START_TIMEOUT s for CMD to succeed.
# Sets STARTED_PID (empty while the pid file is not written yet). Returns 0
# once CMD succeeds, 1 on the timeout; if the process exits first, calls the
# caller's show_log_tail and dies ("WHAT exited during startup").
wait_started() {
  local what=$1 deadline=$((SECONDS + START_TIMEOUT))
  shift
  STARTED_PID=
  while ((SECONDS < deadline)); do
    [[ -z $STARTED_PID && -s $PIDFILE ]] && STARTED_PID=$(cat -- "$PIDFILE")
    if [[ -n $STARTED_PID ]] && ! alive "$STARTED_PID"; then
      show_log_tail
      die "$what exited during startup (state kept in $STATE_DIR)"
    fi
    if [[ -n $STARTED_PID ]] && "$@"; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

# port_of: print the port in PORTFILE (1 if there is none).
port_of() { cat -- "$PORTFILE" 2>/dev/null; }

# server_status PROBE URL_FORMAT: if the caller's server_pid finds its
# server and PROBE PORT succeeds on the port of port_of, print the URL
# (printf URL_FORMAT PORT) and return 0; else say so and return 1.
server_status() {
  local port
  if server_pid >/dev/null && port=$(port_of) && "$1" "$port"; then
    printf "$2" "$port"
    return 0
  fi
  say "not running ($STATE_DIR)"
  return 1
}

# stop_and_clean: stop the caller's server (its stop_server fails when none
# runs) and remove STATE_DIR.
stop_and_clean() {
  stop_server || say "not running ($STATE_DIR)"
  rm -rf -- "$STATE_DIR"
}

# The lock file LOCK sits beside the state dir STATE_DIR; start and stop drop
# it when no state is left (after stop, or a start that failed before creating
# any).
drop_lock() { [[ -d $STATE_DIR ]] || rm -f -- "$LOCK"; }

# locked SECONDS CMD...: run CMD holding LOCK (waiting up to SECONDS for it),
# then drop the lock on exit if no state is left.
locked() {
  trap drop_lock EXIT
  with_lock "$LOCK" "$@"
}
