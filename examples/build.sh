#!/usr/bin/env bash
# examples/build.sh [python|go|java]... - build the language examples (all
# three by default) outside the checkout, in
#   ${KASCADE_CACHE:-$HOME/.cache/kascade}/examples/<lang>/
# Each is rebuilt only when its sources or schemas/kascade.proto change
# (a checksum stamp); up to date, this prints nothing and takes well under
# a second. Needs protoc (deploy/local/deps.sh installs protobuf-compiler),
# python3 with venv, Go 1.26 or newer (go.mod; on PATH or in
# /usr/local/go), and a JDK 17 with Maven;
# the libraries come from PyPI, the Go module proxy and Maven Central on
# the first build.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PROTO_DIR=$ROOT/schemas
OUT=${KASCADE_CACHE:-${HOME:-/tmp}/.cache/kascade}/examples

die() { printf 'examples/build.sh: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

# stamp_of LANG FILES...: the checksum of the sources LANG is built from.
stamp_of() { cat "$PROTO_DIR/kascade.proto" "${@:2}" | sha256sum | cut -d' ' -f1; }

build_python() { # venv from requirements.txt, kascade_pb2.py from protoc
    local d=$1
    need protoc "install protobuf-compiler (deploy/local/deps.sh)"
    python3 -m venv "$d/venv"
    "$d/venv/bin/pip" install -q --disable-pip-version-check \
        -r "$HERE/python/requirements.txt"
    protoc -I "$PROTO_DIR" --python_out="$d" kascade.proto
}

build_go() { # protoc-gen-go, kascadepb and the binary, in a copy of go/
    local d=$1 want have
    # The official Go tarball's place, for a shell whose PATH lacks it.
    command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] ||
        PATH=$PATH:/usr/local/go/bin
    need protoc "install protobuf-compiler (deploy/local/deps.sh)"
    need go "install Go $(sed -n 's/^go //p' "$HERE/go/go.mod") or newer (Debian 12's golang-go is too old)"
    want=$(sed -n 's/^go //p' "$HERE/go/go.mod")
    have=$(go env GOVERSION)
    have=${have#go}
    [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" = "$want" ] ||
        die "go $have is older than the go $want that examples/go/go.mod needs"
    export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
    mkdir -p "$d/src/kascadepb" "$d/bin"
    cp "$HERE/go/go.mod" "$HERE/go/go.sum" "$HERE/go/main.go" "$d/src/"
    (cd "$d/src" && GOBIN="$d/bin" go install \
        "google.golang.org/protobuf/cmd/protoc-gen-go@$(go list -m -f '{{.Version}}' google.golang.org/protobuf)")
    protoc -I "$PROTO_DIR" --plugin=protoc-gen-go="$d/bin/protoc-gen-go" \
        --go_out="$d/src/kascadepb" --go_opt=paths=source_relative \
        --go_opt=Mkascade.proto=kascade.dev/examples/go/kascadepb kascade.proto
    (cd "$d/src" && go build -o "$d/bin/kascade-example" .)
}

build_java() { # Maven runs protoc and javac; everything lands in $d
    local d=$1
    need protoc "install protobuf-compiler (deploy/local/deps.sh)"
    need mvn "install maven (deploy/local/deps.sh)"
    mvn -q -B -Dstyle.color=never -f "$HERE/java/pom.xml" package -Dkascade.build="$d"
}

build() { # build LANG: rebuild into $OUT/LANG unless its stamp matches
    local lang=$1 stamp d=$OUT/$1
    case $lang in
    python) stamp=$(stamp_of python "$HERE/python/requirements.txt") ;;
    go) stamp=$(stamp_of go "$HERE"/go/go.mod "$HERE"/go/go.sum "$HERE"/go/*.go) ;;
    java) stamp=$(stamp_of java "$HERE/java/pom.xml" \
        $(find "$HERE/java/src" -type f | sort)) ;;
    *) die "unknown example '$lang' (python, go or java)" ;;
    esac
    [ "$(cat "$d.stamp" 2>/dev/null)" = "$stamp" ] && return 0
    echo "examples/build.sh: building $lang into $d" >&2
    rm -rf "$d" "$d.stamp"
    mkdir -p "$d"
    "build_$lang" "$d"
    echo "$stamp" >"$d.stamp"
}

mkdir -p "$OUT"
# One build at a time: two test runs may share the cache.
exec 9>"$OUT/.lock"
flock -w 900 9 || die "timed out waiting for $OUT/.lock"
[ $# -gt 0 ] || set -- python go java
for lang in "$@"; do
    build "$lang"
done
