#!/usr/bin/env bash
# tiers[].escalate_context: what an escalated call reads of the earlier
# attempts (workers/escalate.c), and so what it costs. A task at hop 1 on
# tier mid whose context holds a 3,000-byte attempt of tier local is
# answered once per mode; the simulator's count of prompt tokens (the
# Result's usage.input_tokens) shows what the call read: "full" the whole
# attempt, "answer" its last 256 bytes, "none" only the task, as a direct
# call to tier mid reads (within a few tokens: the request of a hop-1 call
# is a few bytes longer), "final" (the default) a note with the final
# answer the attempt states ("the answer is 42"), and the last 256 bytes
# as "answer" does when it states none. A bad value stops the worker at
# start with the key named.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --confidence-dist 0.9:0.9
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
redis_port=${KASCADE_REDIS_URL##*:}
long=$(python3 -c 'print(" ".join("step %d of the long attempt," % i for i in range(120)) + " #### 42")')
stated=$(python3 -c 'print(" ".join("step %d of the long attempt," % i for i in range(120)) + " So the answer is 42.")')

ctx() { # ctx ID [TEXT]: the context of task ID with local's long attempt
    redis-cli -p "$redis_port" SET "${IT_PREFIX}ctx:-:$1" "$(python3 -c '
import json, sys
print(json.dumps({"task": {"id": sys.argv[1], "type": "answer",
                           "input": "question " + sys.argv[1]},
                  "format": "json", "cost_so_far_usd": 0,
                  "attempts": [{"tier": "local", "model": "m-local", "hop": 0,
                                "output": sys.argv[2], "confidence": 0.2,
                                "confidence_source": "self_report",
                                "decision": "escalate",
                                "reason": "low_confidence",
                                "cost_usd": 0, "latency_ms": 1,
                                "input_tokens": 5, "output_tokens": 700}]}))
' "$1" "${2:-$long}")" >/dev/null
}
run() { # run ID MODE|default COUNT [TEXT]: one hop-1 call on tier mid
    local x=()
    [ "$2" = default ] || x=(-X "tiers.mid.escalate_context=$2")
    ctx "$1" "${4:-}"
    it_daemon "worker-$2" kascade-worker --tier mid "${x[@]}"
    printf '%s\t{"id":"%s","type":"answer","input":"question %s"}\n' "$1" "$1" "$1" |
        kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.mid" \
            -K $'\t' -H kascade-hop=1 -H kascade-tier=mid
    it_wait_count results "$3" 60 || it_die "no Result for $1"
    it_stop "$LAST_PID" || true
}
run c-full full 1
run c-answer answer 2
run c-none none 3
run c-final default 4 "$stated"
run c-unstated default 5
printf 'c-direct\t{"id":"c-direct","type":"answer","input":"question c-direct"}\n' |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.mid" -K $'\t'
it_daemon worker-direct kascade-worker --tier mid
it_check "a direct call is answered" it_wait_count results 6 60
check() {
    it_read results | python3 -c '
import json, sys
tok = {}
for l in sys.stdin:
    r = json.loads(l)["value"]
    tok[r["id"]] = r["usage"]["input_tokens"]
print("prompt tokens", tok)
f, a, n, d, fi, u = (tok.get("c-" + k, -1) for k in
                     ("full", "answer", "none", "direct", "final", "unstated"))
# the attempt is about 750 tokens; its 256-byte end about 64; the line
# with the final answer about 12
ok = f > a + 500 and a > n + 50 and a < n + 150 and 0 < d and abs(n - d) <= 8
ok = ok and n + 4 < fi < n + 25 and abs(u - a) <= 8
sys.exit(0 if ok else 1)'
}
it_check "full reads the attempt, answer its end, none only the task, final the stated answer" check
bad_value() {
    ! "$KS_BIN/kascade-worker" -c "$KS_CONFIG" "${IT_X[@]}" --tier mid \
        -X tiers.mid.escalate_context=some >"$IT_DIR/bad.out" 2>&1 &&
        grep -q "tiers\[1\].escalate_context': must be final, answer, full or none" \
            "$IT_DIR/bad.out"
}
it_check "a bad escalate_context stops the worker, naming the key" bad_value
