#!/usr/bin/env bash
# deploy/local/redis.sh — run a throwaway redis-server (Debian's binary, not
# the system service) on a free 127.0.0.1 port for local tests and demos.
# No persistence (save "", appendonly no); its state dir is deleted on stop.
#
# Usage:
#   redis.sh start    start (or find running) server; prints its URL, e.g.
#                     redis://127.0.0.1:40123, as the only line on stdout
#   redis.sh stop     shut it down (SHUTDOWN NOSAVE, then KILL) and remove
#                     its state dir
#   redis.sh status   print the URL and exit 0 if it runs and answers PING,
#                     exit 1 otherwise
#
# Environment:
#   KASCADE_REDIS_PORT   port to use (default: any free port); start fails
#                        if it is busy
#   KASCADE_REDIS_DIR    state dir (default ${TMPDIR:-/tmp}/kascade-redis-$UID);
#                        use different ones to run several servers
#   KASCADE_REDIS_START_TIMEOUT  seconds to wait for PONG (default 20)
#
# Everything but the URL goes to stderr; the server logs to
# <state dir>/redis.log. Needs redis-server and redis-cli
# (deploy/local/deps.sh installs them).
set -euo pipefail

PROG=redis.sh
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

STATE_DIR=$(abs_dir "${KASCADE_REDIS_DIR:-${TMPDIR:-/tmp}/kascade-redis-$UID}")
PIDFILE=$STATE_DIR/redis.pid
PORTFILE=$STATE_DIR/port
CONF=$STATE_DIR/redis.conf
LOG=$STATE_DIR/redis.log
LOCK=$STATE_DIR.lock
START_TIMEOUT=${KASCADE_REDIS_START_TIMEOUT:-20}
STOP_TIMEOUT=10

# pong PORT: does a redis on PORT answer PING?
pong() {
  [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

# Is the redis on PORT the one whose state dir is ours?
ours_on() {
  local out
  out=$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" config get dir 2>/dev/null) || return 1
  [[ $(sed -n 2p <<<"$out") == "$STATE_DIR" ]]
}

# server_pid: print the pid from the pid file if it is a live redis-server.
server_pid() {
  local pid comm
  [[ -f $PIDFILE ]] || return 1
  pid=$(cat -- "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  if [[ -r /proc/$pid/comm ]]; then
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == redis-server* ]] || return 1
  fi
  printf '%s\n' "$pid"
}

# stop_server: shut down whatever of ours runs; no error when nothing does.
stop_server() {
  local pid port found=0
  port=$(port_of) || port=
  if pid=$(server_pid); then
    found=1
    say "stopping redis-server $pid ($STATE_DIR)"
    if [[ -n $port ]]; then
      timeout 5 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
    wait_gone "$pid" 30 || term_then_kill "$pid" redis-server
  elif [[ -n $port ]] && command -v redis-cli >/dev/null 2>&1 && ours_on "$port"; then
    # The pid file is gone but our server still answers on its port.
    found=1
    say "stopping redis-server on port $port ($STATE_DIR)"
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      pong "$port" || break
      sleep 0.1
    done
  fi
  ((found)) || return 1
}

start_locked() {
  need redis-server
  need redis-cli redis-tools
  local pid port url deadline t0
  t0=$(now_ms)

  reuse_running pong 'redis://127.0.0.1:%s\n' KASCADE_REDIS_PORT && return 0
  if [[ -d $STATE_DIR ]]; then
    stop_server 2>/dev/null || true
  fi

  port=$(pick_port KASCADE_REDIS_PORT)
  url=redis://127.0.0.1:$port

  rm -rf -- "$STATE_DIR"
  mkdir -p -- "$STATE_DIR"
  printf '%s\n' "$port" >"$PORTFILE"
  cat >"$CONF" <<EOF
# Written by deploy/local/redis.sh: throwaway server for local tests.
bind 127.0.0.1
port $port
protected-mode yes
daemonize yes
supervised no
pidfile $PIDFILE
logfile $LOG
dir $STATE_DIR
save ""
appendonly no
EOF

  say "starting redis-server at 127.0.0.1:$port (state $STATE_DIR)"
  if ! redis-server "$CONF" </dev/null >"$STATE_DIR/redis.out" 2>&1 9>&-; then
    cat -- "$STATE_DIR/redis.out" >&2
    [[ -s $LOG ]] && tail -n 40 -- "$LOG" >&2
    die "redis-server failed to start (state kept in $STATE_DIR)"
  fi

  deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if pong "$port"; then
      if pid=$(server_pid); then
        say "ready in $(($(now_ms) - t0)) ms (pid $pid, log $LOG)"
        printf '%s\n' "$url"
        return 0
      fi
    elif [[ -s $PIDFILE ]] && ! server_pid >/dev/null; then
      break # it wrote its pid file and died
    fi
    sleep 0.1
  done
  local f
  for f in "$STATE_DIR/redis.out" "$LOG"; do
    if [[ -s $f ]]; then
      printf -- '--- last 40 lines of %s ---\n' "$f" >&2
      tail -n 40 -- "$f" >&2
    fi
  done
  stop_server 2>/dev/null || true
  die "redis-server did not answer PING on 127.0.0.1:$port within ${START_TIMEOUT}s (state kept in $STATE_DIR)"
}

case ${1:-} in
  start) locked 60 start_locked ;;
  stop) locked 60 stop_and_clean ;;
  status) server_status pong 'redis://127.0.0.1:%s\n' ;;
  -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
  *) die "usage: redis.sh start|stop|status (redis.sh --help for more)" ;;
esac
