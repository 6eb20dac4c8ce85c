#!/usr/bin/env bash
# The producers in other languages (examples/): the Python, Go and Java
# examples each send two tasks as JSON and two as protobuf (content-type
# header) to this test's prefix, keyed by id, and wait for their four
# Results, through the real router and one worker each for tiers local
# and mid on the model simulator. Each must exit 0 having printed an ok
# Result per task in its task's format; kcat checks the topics apart from
# the examples' own reading. The examples are built once into
# ${KASCADE_CACHE:-~/.cache/kascade}/examples (examples/build.sh): the
# first run on a machine fetches their libraries, later runs reuse them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# built LANG: examples/build.sh LANG, its output kept in the test's dir;
# marks LANG built
built() {
    "$KS_ROOT/examples/build.sh" "$1" >"$IT_DIR/build-$1.log" 2>&1 ||
        { tail -n 30 "$IT_DIR/build-$1.log" >&2; return 1; }
    touch "$IT_DIR/built-$1"
}

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --model sim-local
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_sim mid --model sim-mid
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
it_daemon worker-local kascade-worker --tier local
it_daemon worker-mid kascade-worker --tier mid
it_daemon router kascade-router

# lines LANG REGEX: how many lines of LANG's output match
lines() { grep -c -E "$2" "$IT_DIR/$1.out" || true; }

# seen TOPIC LANG EXPR: how many of the topic's messages with an id of
# LANG's run satisfy the Python expression EXPR of m (the kcat record)
seen() {
    it_read "$1" | python3 -c '
import json, sys
ms = [json.loads(l) for l in sys.stdin]
print(sum(1 for m in ms if m["key"].startswith(sys.argv[1] + "-")
          and eval(sys.argv[2])))' "$2" "$3"
}

for lang in python go java; do
    # Each language on its own: a missing toolchain (say Go) fails that
    # example's checks with the reason, and the others still run.
    it_check "$lang: builds (once; cached outside the checkout)" built "$lang"
    [ -e "$IT_DIR/built-$lang" ] || continue
    rc=0
    "$KS_ROOT/examples/run.sh" "$lang" --timeout 60 \
        --bootstrap-servers "$KASCADE_BOOTSTRAP_SERVERS" --prefix "$IT_PREFIX" \
        >"$IT_DIR/$lang.out" 2>"$IT_DIR/$lang.err" || rc=$?
    sed "s/^/[$lang] /" "$IT_DIR/$lang.out" >&2
    it_check "$lang: exits 0, every Result arrived" test "$rc" = 0
    it_check "$lang: two JSON tasks answered ok" \
        test "$(lines "$lang" '^[a-z]+-[0-9-]+-json-[0-9] json ok ')" = 2
    it_check "$lang: two protobuf tasks answered ok, in protobuf" \
        test "$(lines "$lang" '^[a-z]+-[0-9-]+-protobuf-[0-9] protobuf ok ')" = 2
done

# The ids start with py-, go- and java-.
for lang in py go java; do
    it_check "$lang: kcat sees 4 tasks keyed by id, 2 with the protobuf header" \
        test "$(seen tasks "$lang" '(m["headers"].get("content-type") == "application/x-protobuf") == ("-protobuf-" in m["key"])')" = 4
    it_check "$lang: kcat sees 4 ok Results, the 2 protobuf ones in protobuf" \
        test "$(seen results "$lang" 'm["value"]["status"] == "ok" and m["value"]["id"] == m["key"] and bool(m["value"].get("pb")) == ("-protobuf-" in m["key"])')" = 4
done
