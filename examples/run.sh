#!/usr/bin/env bash
# examples/run.sh python|go|java [--bootstrap-servers HOST:PORT]
#                 [--prefix kascade.] [--timeout SECONDS]
# Builds the example if needed (examples/build.sh) and runs it. The
# defaults come from KASCADE_BOOTSTRAP_SERVERS and KASCADE_TOPICS_PREFIX.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${KASCADE_CACHE:-${HOME:-/tmp}/.cache/kascade}/examples
lang=${1:?usage: examples/run.sh python|go|java [ARGS...]}
shift
"$HERE/build.sh" "$lang"
case $lang in
python) PYTHONPATH=$OUT/python exec "$OUT/python/venv/bin/python" \
    "$HERE/python/kascade_example.py" "$@" ;;
go) exec "$OUT/go/bin/kascade-example" "$@" ;;
java) exec java -cp "$OUT/java/classes:$OUT/java/lib/*" \
    dev.kascade.example.KascadeExample "$@" ;;
esac
