#!/usr/bin/env bash
# tests/deploy/test_systemd.sh BUILD_DIR - the systemd units of
# deploy/systemd/ pass `systemd-analyze verify` with no warning (an unknown
# or misspelt key is only a warning there, so any output fails), with
# ExecStart pointing at this build's binaries; the flags they pass exist in
# the binaries' usage; the stop timeout leaves room for the drain.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
BIN=$(cd "${1:?usage: test_systemd.sh BUILD_DIR}" && pwd)/bin
UNITS=$ROOT/deploy/systemd

verify_clean() { # verify_clean UNIT-FILE: verify prints nothing, exits 0
    local out rc=0
    out=$(systemd-analyze verify --man=no "$1" 2>&1) || rc=$?
    [ -n "$out" ] && printf '%s\n' "$out"
    [ "$rc" = 0 ] && [ -z "$out" ]
}

if ! command -v systemd-analyze >/dev/null; then
    echo "FAIL: systemd-analyze not found (deploy/local/deps.sh installs systemd)"
    exit 1
fi
for f in "$UNITS"/kascade-router.service "$UNITS"/kascade-worker@.service; do
    sed "s|/usr/local/bin/|$BIN/|g" "$f" >"$TMP/$(basename "$f")"
done
# A template is verified through an instance of it.
cp "$TMP/kascade-worker@.service" "$TMP/kascade-worker@local.service"
check "kascade-router.service verifies cleanly" \
    verify_clean "$TMP/kascade-router.service"
check "kascade-worker@local.service verifies cleanly" \
    verify_clean "$TMP/kascade-worker@local.service"

# The flags the units pass are the binaries' own.
check "kascade-router takes -c" \
    bash -c '"$1" --help 2>&1 | grep -q -- "-c kascade.json"' _ "$BIN/kascade-router"
check "kascade-worker takes -c and --tier" \
    bash -c '"$1" --help 2>&1 | grep -q -- "--tier NAME \[-c kascade.json\]"' _ "$BIN/kascade-worker"

# Sandboxing and the drain: TimeoutStopSec above drain_timeout_ms.
drain_ms=$(sed -n 's/.*cfg_get_int(root, "drain_timeout_ms", "", \([0-9]*\),.*/\1/p' \
    "$ROOT/common/config/read.c")
for f in "$UNITS"/*.service; do
    name=$(basename "$f")
    stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$f")
    check "$name stops after the drain ($stop_s s > ${drain_ms:-?} ms)" \
        test -n "$stop_s" -a -n "$drain_ms" -a "$((stop_s * 1000))" -gt "${drain_ms:-0}"
    for key in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes \
        MemoryMax= Restart=on-failure KillSignal=SIGTERM; do
        check "$name sets $key" grep -q "^$key" "$f"
    done
done
deploy_done systemd
