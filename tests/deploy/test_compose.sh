#!/usr/bin/env bash
# tests/deploy/test_compose.sh BUILD_DIR - deploy/compose/ without Docker
# (no daemon here):
# 1. compose.yaml loads with compose-go, the Compose Specification's
#    reference loader, schema validation on (tests/deploy/composecheck/,
#    built once into ${KASCADE_CACHE:-~/.cache/kascade}/composecheck/,
#    keyed by a checksum of its sources and the Go version);
# 2. the Dockerfile: its build stage builds from the files it COPYs
#    alone; its runtime stage is complete: every library the
#    release binaries link directly comes from a package it installs (or
#    libc6/libgcc-s1), every library they load at all from the Debian
#    dependency closure of those, and every file it COPYs from the
#    context exists;
# 3. every binary, flag, config key (-X) and env var compose.yaml passes
#    exists (usage texts, README's configuration table, the code), with a
#    worker service per tier of the example config, replicas, the drain
#    inside stop_grace_period and the daemons started after the topics.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
BIN=$(cd "${1:?usage: test_compose.sh BUILD_DIR}" && pwd)/bin
DIR=$ROOT/deploy/compose
SRC=$ROOT/tests/deploy/composecheck
CONFIG=$ROOT/deploy/examples/kascade.json

# --- 1. the Compose Specification ---------------------------------------
command -v go >/dev/null 2>&1 || [ ! -x /usr/local/go/bin/go ] ||
    PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null 2>&1; then
    echo "FAIL: go not found (on PATH or in /usr/local/go): tests/deploy/composecheck needs Go $(sed -n 's/^go //p' "$SRC/go.mod") or newer to check deploy/compose/compose.yaml"
    exit 1
fi
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
key=$( (cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go; go env GOVERSION) |
    sha256sum | cut -c1-16)
CACHE=${KASCADE_CACHE:-$HOME/.cache/kascade}/composecheck
CC_BIN=$CACHE/composecheck-$key
if [ ! -x "$CC_BIN" ]; then
    echo "building composecheck into $CACHE (once; modules from the Go module proxy)"
    mkdir -p "$CACHE" || exit 1
    if ! (cd "$SRC" && go build -o "$CC_BIN.tmp.$$" .); then
        rm -f "$CC_BIN.tmp.$$"
        echo "FAIL: could not build tests/deploy/composecheck (is the Go module proxy reachable?)"
        exit 1
    fi
    mv -f "$CC_BIN.tmp.$$" "$CC_BIN"
fi
check "compose.yaml is valid against the Compose Specification" \
    bash -c '"$1" "$2" >"$3"' _ "$CC_BIN" "$DIR/compose.yaml" "$TMP/facts"
facts() { awk -F'\t' -v k="$1" '$1 == k' "$TMP/facts" | cut -f2-; }

# --- 2. the Dockerfile's runtime stage ------------------------------------
DF=$DIR/Dockerfile
# The packages the last stage installs: the apt-get install after its FROM.
runtime_pkgs=$(awk '/^FROM /{last=NR} {line[NR]=$0} END {
        for (i = last; i <= NR; i++) print line[i] }' "$DF" |
    sed -n '/apt-get install/,/^ *&& [^\\]*$\|rm -rf/p' |
    tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
    grep -vE '^(apt-get|install|rm|useradd|lib|var|apt|lists)$' | sort -u)
check "the runtime stage installs packages" test -n "$runtime_pkgs"
check "the runtime stage installs no compiler" \
    bash -c '! grep -qxE "gcc|cc|clang|build-essential|make|.*-dev" <<<"$1"' _ "$runtime_pkgs"
closure=$(apt-cache depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances \
    $runtime_pkgs libc6 libgcc-s1 2>/dev/null | grep -v '^ ' | sort -u)

declare -A PKG_OF=()
pkg_of() { # pkg_of PATH: sets PKG to the Debian package owning a library
    local p=$1 out q     # (usrmerge-aware; remembered across binaries)
    PKG=${PKG_OF[$p]:-}
    [ -n "$PKG" ] && return 0
    for q in "$p" "$(readlink -f "$p")" "/usr${p#/usr}" "${p#/usr}"; do
        out=$(dpkg -S "$q" 2>/dev/null | head -n1) && [ -n "$out" ] &&
            { PKG=${out%%:*}; PKG_OF[$p]=$PKG; return 0; }
    done
    return 1
}
lib_checks() { # lib_checks BINARY: the runtime stage provides what it loads
    local bin=$1 name path pkg ok=0
    declare -A direct=()
    while read -r name; do direct[$name]=1; done < <(
        readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    # A sanitizer build (make test's) also loads the sanitizer runtimes,
    # which no release image carries: those are not the image's to provide.
    local sanitized=0
    grep -q '^libasan' < <(printf '%s\n' "${!direct[@]}") && sanitized=1
    while read -r name path; do
        [ -n "$path" ] || { echo "  $name: not found by ldd"; ok=1; continue; }
        pkg_of "$path" || { echo "  $name ($path): no package owns it"; ok=1; continue; }
        pkg=$PKG
        [ $sanitized = 1 ] && grep -qxE 'lib(asan|ubsan|lsan)[0-9]+|libstdc\+\+6' <<<"$pkg" &&
            continue
        if [ -n "${direct[$name]:-}" ]; then
            grep -qxE "$pkg|libc6|libgcc-s1" <<<"$runtime_pkgs" ||
                [ "$pkg" = libc6 ] || [ "$pkg" = libgcc-s1 ] ||
                { echo "  $name: linked directly, from $pkg, which the runtime stage does not install"; ok=1; }
        fi
        grep -qx "$pkg" <<<"$closure" ||
            { echo "  $name: from $pkg, outside the runtime packages' dependencies"; ok=1; }
    done < <(ldd "$bin" | awk '$2 == "=>" {print $1, ($3 ~ /^\//) ? $3 : ""}
                               $1 ~ /^\// {print $1, $1}')
    return $ok
}
for b in kascade-router kascade-worker kascade kascade-modelsim; do
    check "runtime stage provides the libraries of $b" lib_checks "$BIN/$b"
done
# COPY sources from the build context (not --from=stage) exist.
copies=$(sed -n '/^COPY /{/--from=/!p}' "$DF" | awk '{for (i = 2; i < NF; i++) print $i}')
check "the Dockerfile COPYs from the context" test -n "$copies"
for f in $copies; do
    check "COPY source $f exists" test -e "$ROOT/$f"
done
# The build stage's COPY set is enough: build its make targets in a copy
# holding only those files (as the image's /src would).
build_stage=$(awk '/^FROM /{n++} n == 1' "$DF")
stage_copies=$(sed -n '/^COPY /{/--from=/!p}' <<<"$build_stage" | awk '{for (i = 2; i < NF; i++) print $i}')
targets=$(grep -o 'build/release/bin/[a-z-]*' <<<"$build_stage" | sort -u)
build_copy() {
    local f
    mkdir -p "$TMP/ctx" || return 1
    for f in $stage_copies; do
        mkdir -p "$TMP/ctx/$(dirname "$f")" && cp -r "$ROOT/$f" "$TMP/ctx/$(dirname "$f")/" || return 1
    done
    rm -rf "$TMP/ctx/build" "$TMP/ctx/bench/data"
    make -C "$TMP/ctx" -j"$(nproc)" $targets >"$TMP/ctx.log" 2>&1 ||
        { tail -n 20 "$TMP/ctx.log"; return 1; }
}
check "the build stage makes $(echo $targets | sed 's|build/release/bin/||g')" \
    test -n "$targets" -a -n "$stage_copies"
check "the build stage builds from its COPYs alone" build_copy
check "the runtime stage runs as a non-root user" \
    bash -c 'awk "/^FROM /{u=\"\"} /^USER /{u=\$2} END {exit !(u != \"\" && u != \"root\" && u != \"0\")}" "$1"' _ "$DF"
check "the build stage is debian:bookworm, the runtime debian:bookworm-slim" \
    bash -c 'grep "^FROM " "$1" | head -n1 | grep -q "debian:bookworm " &&
             grep "^FROM " "$1" | tail -n1 | grep -q "debian:bookworm-slim"' _ "$DF"

# --- 3. binaries, flags, config keys and env vars --------------------------
usage_of() { "$BIN/$1" --help 2>&1; }
tiers=$(python3 -c 'import json,sys; print("\n".join(t["name"] for t in json.load(open(sys.argv[1]))["tiers"]))' "$CONFIG")
table=$(grep '^| `' "$ROOT/README.md")
config_key_ok() { # config_key_ok KEY: documented in README's table (tier names from the config)
    local key=$1 leaf row
    leaf=${key##*.}
    case $key in
    tiers.*.providers.*) row='providers[]' ;;
    tiers.*) row='tiers[]' ;;
    *.*) row=${key%%.*} ;;
    *) row='top level' ;;
    esac
    if [[ $key == tiers.* ]]; then
        local t=${key#tiers.}
        grep -qx "${t%%.*}" <<<"$tiers" || { echo "  no tier ${t%%.*} in $CONFIG"; return 1; }
    fi
    grep -F "| \`$row\` |" <<<"$table" | grep -qF "\`$leaf\`" ||
        grep -F "| $row |" <<<"$table" | grep -qF "\`$leaf\`"
}
seen_tiers=""
while IFS=$'\t' read -r svc image; do
    [ "$image" = kascade:local ] || continue
    IFS=$'\t' read -r -a argv < <(facts cmd | awk -F'\t' -v s="$svc" '$1 == s' | cut -f2-)
    prog=${argv[0]:-}
    check "$svc: $prog is one of the built binaries" test -x "$BIN/$prog"
    for ((i = 1; i < ${#argv[@]}; i++)); do
        a=${argv[i]}
        case $a in
        -*) check "$svc: $prog takes $a" \
                bash -c 'grep -qE -- "(^|[[ ])$2( |\]|$)" <<<"$1"' _ "$(usage_of "$prog")" "$a" ;;
        esac
        case $a in
        -X) k=${argv[i + 1]%%=*}
            check "$svc: config key $k is documented" config_key_ok "$k" ;;
        --tier) seen_tiers+="${argv[i + 1]}"$'\n'
            check "$svc: tier ${argv[i + 1]} is in the example config" \
                grep -qx "${argv[i + 1]}" <<<"$tiers"
            check "$svc: deploy.replicas is set" \
                bash -c 'grep -q "^$1	" <<<"$2"' _ "$svc" "$(facts replicas)" ;;
        esac
    done
    if [ "$prog" = kascade ]; then
        check "$svc: kascade ${argv[*]: -2} is a command" \
            bash -c 'grep -qF -- "$2" <<<"$1"' _ "$(usage_of kascade)" "${argv[*]: -2}"
    fi
    if [ "$prog" = kascade-router ] || [ "$prog" = kascade-worker ]; then
        for dep in kafka redis; do
            check "$svc: starts after $dep is healthy" \
                grep -qx "$svc	$dep	service_healthy" <(facts dep)
        done
        check "$svc: starts after the topics are created" \
            grep -qx "$svc	topics	service_completed_successfully" <(facts dep)
        check "$svc: has a healthcheck" grep -qx "$svc" <(facts health)
    fi
done < <(facts service)
check "one worker service per tier of the example config" \
    test "$(sort -u <<<"$seen_tiers" | sed '/^$/d')" = "$(sort -u <<<"$tiers")"
check "the topics are created by a one-shot kascade topics create" \
    grep -qP '^topics\tkascade\t.*\ttopics\tcreate$' <(facts cmd)

while IFS=$'\t' read -r svc var; do
    [[ $var == KASCADE_* ]] || continue
    check "$svc: env $var is documented and read by the code" \
        bash -c 'grep -qF "$1" "$2/README.md" &&
                 grep -rqF "\"$1\"" "$2/common" "$2/cli"' _ "$var" "$ROOT"
done < <(facts env)

drain_ms=$(sed -n 's/.*cfg_get_int(root, "drain_timeout_ms", "", \([0-9]*\),.*/\1/p' \
    "$ROOT/common/config/read.c")
while IFS=$'\t' read -r svc image; do
    prog=$(facts cmd | awk -F'\t' -v s="$svc" '$1 == s {print $2}')
    case $prog in kascade-router | kascade-worker) ;; *) continue ;; esac
    stop_s=$(facts stop | awk -F'\t' -v s="$svc" '$1 == s {print $2}')
    check "$svc: stop_grace_period ${stop_s:-unset} s > drain_timeout_ms ${drain_ms:-?} ms" \
        test -n "$stop_s" -a -n "$drain_ms" -a "$((${stop_s:-0} * 1000))" -gt "${drain_ms:-0}"
done < <(facts service)
check "kafka is apache/kafka 4.1.1, as deploy/local/pom.xml" \
    bash -c 'grep -q "^kafka	apache/kafka:$1$" <<<"$2"' _ \
    "$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/local/pom.xml")" "$(facts service)"
deploy_done compose
