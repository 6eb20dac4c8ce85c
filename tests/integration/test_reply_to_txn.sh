#!/usr/bin/env bash
# router.transactions with more missing reply_to topics than the router
# remembers (64): 70 tasks the router answers itself (frontier spent,
# on_budget_exhausted reject), each with its own allowed but nonexistent
# reply_to topic. A Result to a missing topic fails the transaction; the
# retry of the batch sends its Results to the results topic, so every
# batch commits in the end. Before, the 65th topic was never remembered
# and every batch after it aborted forever.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
N=70
IT_X+=(-X "router.transactions=true" -X "router.instance=it-$$"
       -X "topics.reply_to_allow=it-miss-$$.*"
       -X "kafka.topic.metadata.propagation.max.ms=1000")
it_kascade topics create >"$IT_DIR/topics.out"
it_kascade budget set frontier 0 >"$IT_DIR/budget.out"
python3 - "$IT_DIR/tasks.txt" "$N" "$$" <<'PY'
import json, sys
path, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(n):
        t = {"id": "m-%d" % i, "type": "review", "input": "q %d" % i,
             "reply_to": "it-miss-%s.%d" % (pid, i)}
        f.write("m-%d\t%s\n" % (i, json.dumps(t)))
PY
it_daemon router kascade-router
ROUTER=$LAST_PID
kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t' -l "$IT_DIR/tasks.txt"
it_check "every Result is committed on the results topic" \
    it_wait_count results "$N" 90
# Routing goes on after them.
printf 'after\t{"id": "after", "type": "classify_intent", "input": "x"}\n' |
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "a later task is routed" it_wait_count tier.local 1 60
it_read results >"$IT_DIR/results.jsonl"
check() {
    python3 - "$IT_DIR/results.jsonl" "$N" <<'PY'
import collections, json, sys
v = [json.loads(l)["value"] for l in open(sys.argv[1])]
ids = collections.Counter(r.get("id") for r in v if isinstance(r, dict))
st = {r.get("status") for r in v if isinstance(r, dict)}
ok = len(ids) == int(sys.argv[2]) and max(ids.values()) == 1 and \
    st == {"budget_exceeded"}
print(len(ids), max(ids.values()) if ids else 0, st)
sys.exit(0 if ok else 1)
PY
}
it_check "each task answered once, budget_exceeded" check
it_check "the router exits 0 on SIGTERM" it_stop "$ROUTER"
