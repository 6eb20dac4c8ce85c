# tests/deploy/lib.sh - sourced by tests/deploy/test_*.sh: the checkout's
# root, a scratch dir removed on exit, and one assertion helper whose
# tally deploy_done prints and exits with.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failed=0 checks=0

check() { # check DESCRIPTION COMMAND...
    checks=$((checks + 1))
    if "${@:2}"; then
        echo "ok: $1"
    else
        echo "FAIL: $1"
        failed=1
    fi
}

deploy_done() { # deploy_done NAME: the tally, and the exit status
    echo "$1: $checks checks, $([ $failed = 0 ] && echo passed || echo failed)"
    exit $failed
}
