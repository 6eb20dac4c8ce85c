#!/usr/bin/env bash
# deploy/local/kafka.sh — run a real single-node Apache Kafka 4.x broker
# (KRaft, combined broker+controller) on 127.0.0.1 for local tests and demos.
#
# The broker jars come from Maven Central only: `mvn dependency:copy-dependencies`
# on deploy/local/pom.xml, copied once into a cache outside the checkout,
#   ${KASCADE_CACHE:-$HOME/.cache/kascade}/kafka-<version>/libs
# and reused while the marker file there matches the pom.
#
# Usage:
#   kafka.sh start              start (or find running) broker; prints its
#                               bootstrap address, e.g. 127.0.0.1:9092, as the
#                               only line on stdout
#   kafka.sh stop               stop it (TERM, then KILL) and remove its state
#   kafka.sh status             print the address and exit 0 if it runs and
#                               answers, exit 1 otherwise
#   kafka.sh topic NAME [PARTITIONS] [TopicCommand args...]
#                               create a topic (replication factor 1) if it
#                               does not exist; PARTITIONS defaults to 3
#   kafka.sh fetch              only fetch the jars into the cache
#
# Environment:
#   KASCADE_KAFKA_PORT          client port (default 9092 if free, else any
#                               free port); start fails if a given port is busy
#   KASCADE_KAFKA_CONTROLLER_PORT  controller port (default: any free port)
#   KASCADE_STATE_DIR           state dir (default ${TMPDIR:-/tmp}/kascade-kafka-$UID);
#                               use different ones to run several brokers
#   KASCADE_CACHE               jar cache root (default $HOME/.cache/kascade)
#   KASCADE_KAFKA_VERSION       Kafka version (default: <kafka.version> in pom.xml)
#   KASCADE_KAFKA_START_TIMEOUT seconds to wait for the broker (default 90)
#   KASCADE_KAFKA_JVM_OPTS      extra JVM options for the broker
#   KASCADE_KAFKA_SASL_PORT     also listen with SASL_PLAINTEXT (mechanism
#                               PLAIN) on this port, beside the plaintext
#                               port (which tools and health checks keep using)
#   KASCADE_KAFKA_SASL_USERS    the PLAIN users of that listener, as
#                               "user:password[,user:password...]"
#   JAVA_HOME                   java to use (default: java on PATH; 17 or newer)
#
# Everything but the address goes to stderr; the broker logs to
# <state dir>/logs/server.log. Needs java, mvn, kcat and python3
# (deploy/local/deps.sh installs them).
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/pom.xml
PROG=kafka.sh
# shellcheck source=common.sh
source "$HERE/common.sh"


POM_VERSION=$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$POM" | head -n1)
VERSION=${KASCADE_KAFKA_VERSION:-$POM_VERSION}
[[ -n $VERSION ]] || die "cannot read <kafka.version> from $POM"

CACHE_ROOT=${KASCADE_CACHE:-${HOME:-${TMPDIR:-/tmp}}/.cache/kascade}
[[ $CACHE_ROOT == /* ]] || CACHE_ROOT=$PWD/$CACHE_ROOT
CACHE_DIR=$CACHE_ROOT/kafka-$VERSION
LIBS=$CACHE_DIR/libs
MARKER=$CACHE_DIR/.complete

STATE_DIR=$(abs_dir "${KASCADE_STATE_DIR:-${TMPDIR:-/tmp}/kascade-kafka-$UID}")
PIDFILE=$STATE_DIR/kafka.pid
ADDRFILE=$STATE_DIR/address
PROPS=$STATE_DIR/server.properties
LOGDIR=$STATE_DIR/logs
LOG=$LOGDIR/server.log
OUT=$STATE_DIR/kafka.out
LOCK=$STATE_DIR.lock

START_TIMEOUT=${KASCADE_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=30

# ---------------------------------------------------------------- helpers --




find_java() {
  local j=
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    j=$JAVA_HOME/bin/java
  else
    j=$(command -v java 2>/dev/null) || die "java not found: run deploy/local/deps.sh (needs Java 17 or newer)"
  fi
  local ver
  ver=$("$j" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  ver=${ver#1.}
  ver=${ver%%[.+-]*}
  [[ $ver =~ ^[0-9]+$ ]] || die "cannot tell the version of $j"
  ((ver >= 17)) || die "$j is Java $ver; Kafka $VERSION needs Java 17 or newer (set JAVA_HOME)"
  JAVA=$j
}

# The marker holds the version and the pom's checksum, so a changed pom
# (e.g. a new logging jar) refetches.
marker_content() {
  printf 'kafka %s\npom %s\n' "$VERSION" "$(sha256sum <"$POM" | cut -d' ' -f1)"
}

cache_complete() {
  [[ -f $MARKER && -f $LIBS/kafka_2.13-$VERSION.jar ]] &&
    [[ $(cat -- "$MARKER") == "$(marker_content)" ]]
}

fetch_locked() {
  cache_complete && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found: run deploy/local/deps.sh"
  local t0 tmp
  t0=$(now_ms)
  tmp=$CACHE_DIR/libs.tmp.$$
  rm -rf -- "$tmp"
  say "fetching Kafka $VERSION jars from Maven Central into $LIBS ..."
  # mvn's own output goes to a log, shown only on failure (Debian's mvn
  # prints stray colour codes even with -q -B).
  if ! mvn -q -B -Dstyle.color=never -f "$POM" \
    -Dkafka.version="$VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" >"$CACHE_DIR/fetch.log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$CACHE_DIR/fetch.log" | tail -n 40 >&2
    rm -rf -- "$tmp"
    die "mvn could not fetch org.apache.kafka:kafka_2.13:$VERSION and its dependencies (see above; is Maven Central reachable?)"
  fi
  [[ -f $tmp/kafka_2.13-$VERSION.jar ]] || {
    rm -rf -- "$tmp"
    die "mvn ran but $tmp/kafka_2.13-$VERSION.jar is missing"
  }
  rm -rf -- "$LIBS"
  mv -- "$tmp" "$LIBS"
  marker_content >"$MARKER"
  say "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $(($(now_ms) - t0)) ms"
}

fetch() {
  mkdir -p -- "$CACHE_DIR"
  cache_complete && return 0
  with_lock "$CACHE_DIR.lock" 900 fetch_locked
}


# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not
# starting with '-' (as org.apache.kafka.common.Uuid.randomUuid makes them).
cluster_id() {
  local id
  if command -v python3 >/dev/null 2>&1; then
    id=$(python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break')
  else
    id=$("$JAVA" -cp "$LIBS/*" "${TOOL_OPTS[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
  fi
  [[ $id =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{21}$ ]] || die "could not make a cluster id (got '$id')"
  printf '%s\n' "$id"
}

# cmdline_is_broker FILE: is FILE (a /proc/PID/cmdline) that of
# `java ... kafka.Kafka $PROPS`, i.e. the broker of this state dir?
cmdline_is_broker() {
  local arg main=0 props=0
  {
    while IFS= read -r -d '' arg; do
      [[ $arg == kafka.Kafka ]] && main=1
      [[ $arg == "$PROPS" ]] && props=1
    done <"$1"
  } 2>/dev/null || true
  ((main && props))
}

# pid_is_broker PID: is PID alive and our broker for this state dir?
pid_is_broker() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ -r /proc/$pid/cmdline ]] || return 0
  cmdline_is_broker "/proc/$pid/cmdline"
}

broker_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(cat -- "$PIDFILE" 2>/dev/null) || return 1
  pid_is_broker "$pid" || return 1
  printf '%s\n' "$pid"
}

# Any process still running the broker of this state dir, pid file or not.
stray_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    cmdline_is_broker "$f" || continue
    pid=${f#/proc/}
    printf '%s\n' "${pid%/cmdline}"
  done
}

# answers ADDR: does a broker at ADDR return metadata listing a broker?
answers() {
  command -v kcat >/dev/null 2>&1 || die "kcat not found: run deploy/local/deps.sh"
  local out
  out=$(timeout 15 kcat -b "$1" -L -m 5 -t __kascade_probe 2>/dev/null) || true
  grep -q 'broker [0-9]* at' <<<"$out"
}

show_log_tail() {
  local f
  for f in "$LOG" "$OUT"; do
    if [[ -s $f ]]; then
      printf -- '--- last 40 lines of %s ---\n' "$f" >&2
      tail -n 40 -- "$f" >&2
    fi
  done
}

kill_pid() { term_then_kill "$1" broker; }

TOOL_OPTS=(-Xshare:auto -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xms64m -Xmx256m
  -Djava.awt.headless=true)

# A SASL_PLAINTEXT listener (PLAIN) on KASCADE_KAFKA_SASL_PORT, if set:
# appended to the listener lines, with the JAAS users of the listener.
sasl_listener() { # sasl_listener PROPS-FILE
  local sport=${KASCADE_KAFKA_SASL_PORT:-} users=${KASCADE_KAFKA_SASL_USERS:-} jaas u
  local -a list
  [[ -n $sport ]] || return 0
  [[ $sport =~ ^[0-9]+$ ]] || die "KASCADE_KAFKA_SASL_PORT='$sport' is not a port number"
  [[ -n $users ]] || die "KASCADE_KAFKA_SASL_PORT needs KASCADE_KAFKA_SASL_USERS=user:password[,...]"
  jaas='org.apache.kafka.common.security.plain.PlainLoginModule required'
  IFS=, read -r -a list <<<"$users"
  for u in "${list[@]}"; do
    [[ $u =~ ^[A-Za-z0-9._-]+:[A-Za-z0-9._-]+$ ]] ||
      die "KASCADE_KAFKA_SASL_USERS: an entry is not user:password of [A-Za-z0-9._-]"
    jaas+=" user_${u%%:*}=\"${u#*:}\""
  done
  sed -i -e "s|^listeners=.*|&,SASL_PLAINTEXT://127.0.0.1:$sport|" \
    -e "s|^advertised.listeners=.*|&,SASL_PLAINTEXT://127.0.0.1:$sport|" \
    -e "s|^listener.security.protocol.map=.*|&,SASL_PLAINTEXT:SASL_PLAINTEXT|" "$1"
  printf '\n# SASL_PLAINTEXT listener (KASCADE_KAFKA_SASL_PORT)\n%s\n%s\n' \
    "sasl.enabled.mechanisms=PLAIN" \
    "listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas;" >>"$1"
}

write_configs() {
  local port=$1 cport=$2
  mkdir -p -- "$LOGDIR" "$STATE_DIR/data"
  cat >"$PROPS" <<EOF
# Written by deploy/local/kafka.sh: single-node KRaft broker+controller for
# local tests. Throwaway state; 'kafka.sh stop' deletes it.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$STATE_DIR/data

num.partitions=3
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions than the default 50: a first consumer group or
# transaction is ready much sooner on a small machine.
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
  sasl_listener "$PROPS"
  cat >"$STATE_DIR/log4j2.properties" <<EOF
# Broker logging (deploy/local/kafka.sh): everything to one file.
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state_change.name = state.change.logger
logger.state_change.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  cat >"$STATE_DIR/tools-log4j2.properties" <<EOF
# Command-line tools (deploy/local/kafka.sh): warnings and errors to stderr.
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
}

# ---------------------------------------------------------------- actions --

start_locked() {
  local pid addr t0 deadline port cport cid
  t0=$(now_ms)

  if pid=$(broker_pid); then
    addr=$(cat -- "$ADDRFILE" 2>/dev/null) || addr=
    if [[ -n $addr ]]; then
      deadline=$((SECONDS + START_TIMEOUT))
      while ((SECONDS < deadline)) && pid_is_broker "$pid"; do
        if answers "$addr"; then
          if [[ -n ${KASCADE_KAFKA_PORT:-} && $addr != "127.0.0.1:$KASCADE_KAFKA_PORT" ]]; then
            say "note: already running at $addr (KASCADE_KAFKA_PORT=$KASCADE_KAFKA_PORT ignored)"
          fi
          say "already running (pid $pid, state $STATE_DIR)"
          printf '%s\n' "$addr"
          return 0
        fi
        sleep 0.5
      done
    fi
    say "broker $pid in $STATE_DIR does not answer; restarting it"
    kill_pid "$pid"
  fi
  local p
  for p in $(stray_pids); do
    say "stopping stray broker $p of $STATE_DIR"
    kill_pid "$p"
  done

  fetch
  find_java

  port=${KASCADE_KAFKA_PORT:-}
  if [[ -n $port ]]; then
    [[ $port =~ ^[0-9]+$ ]] || die "KASCADE_KAFKA_PORT='$port' is not a port number"
    port_free "$port" || die "port $port (KASCADE_KAFKA_PORT) is in use on 127.0.0.1"
  elif port_free 9092; then
    port=9092
  else
    port=$(free_port)
    say "port 9092 is busy; using $port"
  fi
  cport=${KASCADE_KAFKA_CONTROLLER_PORT:-}
  if [[ -n $cport ]]; then
    [[ $cport =~ ^[0-9]+$ && $cport != "$port" ]] ||
      die "KASCADE_KAFKA_CONTROLLER_PORT='$cport' must be a port number other than $port"
    port_free "$cport" || die "port $cport (KASCADE_KAFKA_CONTROLLER_PORT) is in use on 127.0.0.1"
  else
    cport=$(free_port "$port")
  fi
  addr=127.0.0.1:$port

  rm -rf -- "$STATE_DIR"
  mkdir -p -- "$STATE_DIR"
  write_configs "$port" "$cport"

  cid=$(cluster_id)
  if ! "$JAVA" -cp "$LIBS/*" "${TOOL_OPTS[@]}" \
    -Dlog4j2.configurationFile="$STATE_DIR/tools-log4j2.properties" \
    kafka.tools.StorageTool format -t "$cid" -c "$PROPS" >"$STATE_DIR/format.out" 2>&1; then
    cat -- "$STATE_DIR/format.out" >&2
    die "formatting the KRaft storage in $STATE_DIR/data failed"
  fi

  local -a jvm=(-Xms256m -Xmx512m -XX:+UseSerialGC -Xshare:auto
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$STATE_DIR/log4j2.properties"
    -Dkafka.logs.dir="$LOGDIR")
  if [[ -n ${KASCADE_KAFKA_JVM_OPTS:-} ]]; then
    local -a extra
    read -r -a extra <<<"$KASCADE_KAFKA_JVM_OPTS"
    jvm+=("${extra[@]}")
  fi

  say "starting Kafka $VERSION at $addr (controller 127.0.0.1:$cport, state $STATE_DIR)"
  # setsid: a Ctrl-C in the caller's terminal must not reach the broker.
  # The child writes its own pid before exec'ing java, which stays right even
  # when setsid has to fork.
  # shellcheck disable=SC2016 # $$ and $1 are for the inner bash
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-launch "$PIDFILE" \
    "$JAVA" "${jvm[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >"$OUT" 2>&1 9>&- &

  if wait_started "the broker" answers "$addr"; then
    pid=$STARTED_PID
    printf '%s\n' "$addr" >"$ADDRFILE"
    say "ready in $(($(now_ms) - t0)) ms (pid $pid, log $LOG)"
    printf '%s\n' "$addr"
    return 0
  fi
  pid=$STARTED_PID
  show_log_tail
  [[ -n $pid ]] && kill_pid "$pid"
  die "the broker did not answer at $addr within ${START_TIMEOUT}s (state kept in $STATE_DIR)"
}

stop_locked() {
  local pid p found=0
  if pid=$(broker_pid); then
    found=1
    say "stopping broker $pid ($STATE_DIR)"
    kill_pid "$pid"
  fi
  for p in $(stray_pids); do
    found=1
    say "stopping broker $p ($STATE_DIR)"
    kill_pid "$p"
  done
  ((found)) || say "not running ($STATE_DIR)"
  rm -rf -- "$STATE_DIR"
}

status() {
  local pid addr
  if pid=$(broker_pid) && addr=$(cat -- "$ADDRFILE" 2>/dev/null) && answers "$addr"; then
    printf '%s\n' "$addr"
    return 0
  fi
  say "not running ($STATE_DIR)"
  return 1
}

topic() {
  local name=${1:-} parts=${2:-3} addr
  [[ -n $name ]] || die "usage: kafka.sh topic NAME [PARTITIONS] [TopicCommand args...]"
  [[ $parts =~ ^[0-9]+$ ]] || die "PARTITIONS '$parts' is not a number"
  shift $(($# < 2 ? $# : 2))
  status >/dev/null 2>&1 || die "no broker running for $STATE_DIR: run 'kafka.sh start' first"
  addr=$(cat -- "$ADDRFILE")
  find_java
  local out rc=0
  out=$("$JAVA" -cp "$LIBS/*" "${TOOL_OPTS[@]}" \
    -Dlog4j2.configurationFile="$STATE_DIR/tools-log4j2.properties" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$addr" \
    --create --if-not-exists --topic "$name" --partitions "$parts" \
    --replication-factor 1 "$@" 2>&1) || rc=$?
  # Drop TopicCommand's generic warning about '.' in topic names: kascade's
  # topics are all named kascade.* on purpose and never use '_' after it.
  grep -v "^WARNING: Due to limitations in metric names" <<<"$out" | sed '/^$/d' >&2 || true
  ((rc == 0)) || die "creating topic '$name' on $addr failed"
}

case ${1:-} in
  start) locked 180 start_locked ;;
  stop) locked 180 stop_locked ;;
  status) status ;;
  topic) shift; topic "$@" ;;
  fetch) fetch; say "jars in $LIBS" ;;
  -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
  *) die "usage: kafka.sh start|stop|status|topic NAME [PARTITIONS]|fetch (kafka.sh --help for more)" ;;
esac
