#!/usr/bin/env bash
# `kascade --help` and every `kascade COMMAND --help` answer on stdout with
# status 0 in a directory with no kascade.json and no KASCADE_CONFIG (a new
# user's first try); an unknown command says so with status 2.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

EMPTY="$IT_DIR/empty"
mkdir -p "$EMPTY"
KAS=(env -u KASCADE_CONFIG -C "$EMPTY" "$KS_BIN/kascade")

it_check "kascade --help lists the commands" \
    bash -c 'out=$("$@") && grep -q "^commands:" <<<"$out"' _ "${KAS[@]}" --help
for cmd in submit topics dlq budget train eval devbroker status; do
    it_check "kascade $cmd --help works without a config file" \
        bash -c 'cmd=$1; shift; out=$("$@" "$cmd" --help 2>&1) &&
                 grep -q "$cmd" <<<"$out" && ! grep -q "config:" <<<"$out"' \
        _ "$cmd" "${KAS[@]}"
done
it_check "an unknown command is refused with status 2" \
    bash -c '"$@" >/dev/null 2>&1; test $? = 2' _ "${KAS[@]}" no-such-command
it_check "and named in the error" \
    bash -c '"$@" 2>&1 | grep -q "unknown command .no-such-command."' _ "${KAS[@]}" no-such-command
