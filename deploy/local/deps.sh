#!/usr/bin/env bash
# deploy/local/deps.sh — install the Debian packages kascade needs to build,
# test and run locally, and nothing else.
#
# Fast path: when every package is already installed it prints nothing and
# exits 0 (one dpkg-query call). Otherwise it runs `apt-get update` once and
# `apt-get install -y` for the missing packages, non-interactively, as root or
# through sudo when not root.
#
# clang and libclang-rt-dev (its sanitizer and libFuzzer runtimes, which
# clang only recommends) build the fuzz targets (`make fuzz`, and the
# fuzz set of `make test`).
#
# python3-venv and cmake are for the local model server's venv, which
# deploy/local/llm.sh builds from PyPI (llama-cpp-python compiles llama.cpp).
# systemd brings systemd-analyze, which checks deploy/systemd/'s units;
# prometheus brings promtool, which checks deploy/observability/'s alert
# rules (installing it may also start a Prometheus server on :9090 on a
# machine run by systemd; kascade's tests never use it).
# valgrind (callgrind) counts the instructions of one routing decision
# (bench/decide.sh, part of `make bench`).
# protobuf-compiler (protoc) generates the language examples' protobuf code
# (examples/build.sh).
#
# Java: an existing `java` of version 17 or newer on PATH (or in $JAVA_HOME)
# is accepted in place of default-jre-headless, and an existing `javac` 17
# or newer in place of default-jdk-headless (the Java example compiles).
#
# Note: installing redis-server on Debian also enables the system service on
# port 6379. That is harmless: kascade's scripts start their own redis-server
# on a free port (deploy/local/redis.sh) and never use the system one.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  librdkafka-dev libhiredis-dev libcurl4-openssl-dev libcjson-dev
  libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev libcmocka-dev
  libpcre2-dev libssl-dev
  kcat redis-server clang-format maven python3 curl ca-certificates
  python3-venv cmake systemd prometheus python3-yaml protobuf-compiler
  clang libclang-rt-dev valgrind
)
JAVA_PACKAGE=default-jre-headless
JDK_PACKAGE=default-jdk-headless

die() { printf 'deps.sh: %s\n' "$*" >&2; exit 1; }

# Prints the major version of the java at $1 (e.g. 17, 21; 8 for 1.8), or
# nothing when it cannot be run.
java_major() {
  local out ver
  out=$("$1" -version 2>&1) || return 0
  ver=$(printf '%s\n' "$out" | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  [[ -n $ver ]] || return 0
  case $ver in
    1.*) ver=${ver#1.}; printf '%s\n' "${ver%%.*}" ;;
    *) ver=${ver%%[.+-]*}; printf '%s\n' "$ver" ;;
  esac
}

have_java17() {
  local j major
  for j in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java 2>/dev/null || true)"; do
    [[ -n $j && -x $j ]] || continue
    major=$(java_major "$j")
    [[ $major =~ ^[0-9]+$ ]] && ((major >= 17)) && return 0
  done
  return 1
}

have_javac17() {
  local j ver
  for j in "${JAVA_HOME:+$JAVA_HOME/bin/javac}" "$(command -v javac 2>/dev/null || true)"; do
    [[ -n $j && -x $j ]] || continue
    ver=$("$j" -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p' | head -n1)
    [[ $ver =~ ^[0-9]+$ ]] && ((ver >= 17)) && return 0
  done
  return 1
}

command -v dpkg-query >/dev/null 2>&1 ||
  die "dpkg-query not found: this script supports Debian/Ubuntu only; install the packages listed in it by hand"

# Which of the wanted packages are not installed? One dpkg-query call; a
# package dpkg has never heard of is reported on stderr and simply missing
# from the output.
missing_of() {
  local -A ok=()
  local name status p
  while IFS=' ' read -r name status; do
    [[ $status == *' installed' ]] && ok[${name%%:*}]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for p in "$@"; do
    [[ -n ${ok[$p]:-} ]] || printf '%s\n' "$p"
  done
}

wanted=("${PACKAGES[@]}")
mapfile -t missing < <(missing_of "${wanted[@]}")
# Java only matters when no suitable JRE is there already; the dpkg check is
# cheaper than running java, so do that first.
if [[ -n $(missing_of "$JAVA_PACKAGE") ]] && ! have_java17; then
  missing+=("$JAVA_PACKAGE")
fi
if [[ -n $(missing_of "$JDK_PACKAGE") ]] && ! have_javac17; then
  missing+=("$JDK_PACKAGE")
fi

((${#missing[@]} == 0)) && exit 0

SUDO=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 ||
    die "not root and sudo not found; as root run: apt-get update && apt-get install -y ${missing[*]}"
  SUDO=(sudo -n env DEBIAN_FRONTEND=noninteractive)
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
printf 'deps.sh: installing %s\n' "${missing[*]}" >&2
"${SUDO[@]}" apt-get update -q >&2 ||
  die "apt-get update failed (is a Debian mirror reachable?)"
"${SUDO[@]}" apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" >&2 ||
  die "apt-get install failed for: ${missing[*]}"

# Check the result: a package apt quietly skipped would otherwise surface
# later as a confusing build error.
mapfile -t still < <(missing_of "${missing[@]}")
((${#still[@]} == 0)) || die "still not installed after apt-get install: ${still[*]}"
printf 'deps.sh: done\n' >&2
