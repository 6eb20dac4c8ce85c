#!/usr/bin/env bash
# tests/deploy/test_docs.sh BUILD_DIR - the user's documentation matches
# the code: docs/metrics.md against the metrics the code registers
# (tests/lint/metrics_doc.py), README.md's configuration table against the
# keys the config reader accepts, section by section
# (tests/lint/config_keys.py), and the docs' links to files of the
# repository resolve.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
: "${1:?usage: test_docs.sh BUILD_DIR}"

check "docs/metrics.md lists every registered metric with its type and labels" \
    python3 "$ROOT/tests/lint/metrics_doc.py"
check "README.md documents every config key in its section" \
    python3 "$ROOT/tests/lint/config_keys.py"
links_resolve() { # links_resolve FILE: every relative markdown link exists
    local f=$1 dir link ok=0
    dir=$(dirname "$f")
    while read -r link; do
        link=${link%%#*}
        [ -z "$link" ] && continue
        [ -e "$dir/$link" ] || { echo "  $f: no $link"; ok=1; }
    done < <(grep -oE '\]\([^)]+\)' "$f" | sed 's/^](//; s/)$//' | grep -vE '^(https?:|mailto:|#)')
    return $ok
}
for f in "$ROOT"/README.md "$ROOT"/docs/*.md "$ROOT"/deploy/k8s/README.md; do
    check "links in ${f#"$ROOT"/} resolve" links_resolve "$f"
done
deploy_done test_docs
