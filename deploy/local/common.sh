# deploy/local/common.sh - helpers shared by kafka.sh and redis.sh
# (sourced). The caller sets PROG (its name, for messages) first.

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
