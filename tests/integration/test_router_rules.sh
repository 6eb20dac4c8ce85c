#!/usr/bin/env bash
# A routing rule cannot stall the router (issue 9 item 7). The rule
# (urgent|asap).*refund is quadratic on "urgent " repeated: glibc regexec
# took about a minute on a 512 KiB input, on the router's only thread.
# Two such tasks (the issue's input, and one with a "d" early so that
# PCRE2's required-character check cannot skip the match) are sent in the
# middle of 40 ordinary tasks, all on one partition so they are routed in
# order. Every task must be routed (or dead-lettered) promptly, no gap
# between two consecutive records of the burst (the router's own record
# timestamps) may reach 100 ms, and the rule that hit its match limit is counted in
# kascade_rule_limit_total{rule="refund"}.
# A task deferred by `defer` leaves for the deferred topic once, after one
# rules decision: it is not matched again while it waits (the counter and
# the log line stay at one).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
it_kascade topics create >"$IT_DIR/topics.out"

# The example config plus the rule (overrides cannot add array entries).
python3 - "$KS_CONFIG" "$IT_DIR/config.json" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["routing"]["rules"] = [{"name": "refund",
                            "pattern": "(urgent|asap).*refund",
                            "min_tier": "frontier"}]
json.dump(cfg, open(sys.argv[2], "w"))
EOF
KS_CONFIG="$IT_DIR/config.json"

# The burst is in the topic before the router starts (it reads from the
# earliest offset), so the gaps are the router's own, not the producer's.
python3 - "$IT_DIR/burst.txt" <<'EOF'
import json, sys
def task(i, text):
    return i + "\t" + json.dumps({"id": i, "type": "classify_intent",
                               "input": text}) + "\n"
unit = "urgent "
n = 524288 // len(unit)
with open(sys.argv[1], "w") as f:
    for i in range(20):
        f.write(task("a%d" % i, "where is my parcel %d" % i))
    f.write(task("bad1", unit * n))
    early = unit * 2000 + "refun d " + unit * (n - 2002)
    f.write(task("bad2", early))
    for i in range(20):
        f.write(task("b%d" % i, "urgent: I want a refund for order %d" % i))
EOF
kcat -b "$B" -P -t "${IT_PREFIX}tasks" -p 0 -K $'\t' -X message.max.bytes=2000000 \
    <"$IT_DIR/burst.txt"
M=$(it_free_port)
it_daemon router kascade-router -X "metrics.port=$M"
ROUTER=$LAST_PID

# The router's records: (timestamp, id) of the tier topics and the DLQ.
routed() {
    for t in tier.local tier.mid tier.frontier dlq; do
        kcat -b "$B" -C -t "$IT_PREFIX$t" -o beginning -e -q \
            -f '%T %k\n' 2>/dev/null || true
    done | sort -n
}
all_routed() { [ "$(routed | grep -c -E ' (a|b|bad)[0-9]+$')" -ge 42 ]; }
wait_routed() {
    local deadline=$((SECONDS + 40))
    while [ $SECONDS -lt $deadline ]; do
        all_routed && return 0
        sleep 1
    done
    return 1
}
it_check "all 42 tasks are routed within 40 s of the start" wait_routed
routed >"$IT_DIR/routed.txt"
gap() { # the longest pause between two consecutive records of the burst
    python3 - "$IT_DIR/routed.txt" <<'EOF'
import sys
ts = {}
for line in open(sys.argv[1]):
    t, _, k = line.strip().partition(" ")
    ts.setdefault(k, int(t))
ids = ["a%d" % i for i in range(20)] + ["bad1", "bad2"] + \
      ["b%d" % i for i in range(20)]
if any(k not in ts for k in ids):
    print(999999)
else:
    t = sorted(ts[k] for k in ids)
    print(max(b - a for a, b in zip(t, t[1:])))
EOF
}
G=$(gap)
it_log "longest pause between two records of the burst: $G ms"
it_check "no pause of 100 ms or more around the bad tasks" test "$G" -lt 100
it_check "the ordinary refund tasks still match the rule" \
    test "$(grep -c -E ' b[0-9]+$' <(kcat -b "$B" -C -t "${IT_PREFIX}tier.frontier" \
        -o beginning -e -q -f '%T %k\n'))" -eq 20
it_check "the rule's limit hit is counted" \
    test "$(it_metric "$M" '^kascade_rule_limit_total\{rule="refund"\}')" = 1
it_check "router exits 0 on SIGTERM" it_stop "$ROUTER"

# --- a deferred task is matched once
it_kascade budget set mid 0 >>"$IT_DIR/budget.out"
M2=$(it_free_port)
it_daemon router2 kascade-router -X "metrics.port=$M2" \
    -X "tiers.mid.on_budget_exhausted=defer"
R2=$LAST_PID
MID0=$(it_count tier.mid)
python3 -c '
import json
text = "urgent " * 2000 + "refun d " + "urgent " * 100
print("h1\t" + json.dumps({"id": "h1", "type": "answer", "input": text}))' |
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "the task for spent mid (defer) goes to the deferred topic" \
    it_wait_count deferred 1 30
sleep 4
it_check "once, and nothing reached the tier meanwhile" \
    test "$(it_count deferred)" -eq 1 -a "$(it_count tier.mid)" -eq "$MID0"
it_check "its rules ran once: the limit hit is counted once" \
    test "$(it_metric "$M2" '^kascade_rule_limit_total\{rule="refund"\}')" = 1
it_check "and logged once" \
    test "$(grep -c "h1: rule 'refund' hit its match limit" "$IT_DIR/router2.log")" = 1
it_check "router 2 exits 0 on SIGTERM" it_stop "$R2"
