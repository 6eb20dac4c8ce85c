#!/usr/bin/env bash
# SIGHUP reload: the router re-reads its config file (with the same -X
# overrides) and routes by the new task-type table; an invalid file is
# refused with its file, key and reason, and the old config stays in use.
# A bad rule pattern also stops start-up with the file, key and reason.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
CFG="$IT_DIR/kascade.json"
cp "$KS_ROOT/deploy/examples/kascade.json" "$CFG"
KS_CONFIG=$CFG
submit() { # submit ID TYPE
    printf '%s\t{"id": "%s", "type": "%s", "input": "text of %s"}\n' "$1" "$1" "$2" "$1" |
        kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
}
edit() { # edit PYTHON-STATEMENT: changes the config file in place (c = dict)
    python3 -c '
import json, sys
p = sys.argv[1]; c = json.load(open(p))
exec(sys.argv[2])
json.dump(c, open(p + ".tmp", "w"), indent=2)' "$CFG" "$1"
    mv "$CFG.tmp" "$CFG"
}
hup_and_wait() { # hup_and_wait LOG-PATTERN: SIGHUP, then wait for the log
    local before
    before=$(grep -c "$1" "$IT_DIR/router.log" || true)
    kill -HUP "$ROUTER"
    for _ in $(seq 50); do
        [ "$(grep -c "$1" "$IT_DIR/router.log" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    return 1
}
hdr() { # hdr TOPIC ID HEADER
    it_read "$1" | python3 -c '
import json, sys
m = [json.loads(l) for l in sys.stdin]
m = [r for r in m if r["key"] == sys.argv[1]]
print(m[-1]["headers"].get(sys.argv[2], "") if m else "missing")' "$2" "$3"
}

it_kascade topics create >"$IT_DIR/topics.out"
MPORT=$(it_free_port)
it_daemon router kascade-router -X "metrics.port=$MPORT"
ROUTER=$LAST_PID
submit t1 classify_intent
it_check "classify_intent goes to local at first" it_wait_count tier.local 1 30

edit 'c["routing"]["task_types"]["classify_intent"] = "frontier"'
it_check "SIGHUP reloads the file" hup_and_wait "reloaded:"
submit t2 classify_intent
it_check "after the reload classify_intent goes to frontier" it_wait_count tier.frontier 1 30
it_check "by the task-type table" test "$(hdr tier.frontier t2 kascade-reason)" = task_type

edit 'c["routing"]["rules"] = [{"name": "bad", "pattern": "(unclosed", "min_tier": "mid"}]'
it_check "an invalid file is refused on SIGHUP" hup_and_wait "reload failed"
it_check "naming the file, key and reason" \
    grep -q "reload failed, keeping the old config: $CFG: key 'routing.rules\[0\].pattern': not a usable PCRE2 pattern" "$IT_DIR/router.log"
submit t3 classify_intent
it_check "the old config stays in use" it_wait_count tier.frontier 2 30
it_check "and nothing went elsewhere" test "$(it_count tier.local)$(it_count tier.mid)" = 10

edit 'c["routing"]["rules"] = [{"name": "legal", "pattern": "(contract|lawsuit)", "min_tier": "mid"}]; c["routing"]["task_types"]["classify_intent"] = "local"; c["kafka"]["client.id"] = "changed"'
it_check "a valid file with rules reloads" hup_and_wait "reloaded:"
it_check "kafka changes are logged as needing a restart" \
    grep -q "kafka settings changed; they need a restart" "$IT_DIR/router.log"
submit t4 classify_intent
printf 't5\t{"id": "t5", "type": "classify_intent", "input": "about the LAWSUIT"}\n' |
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "the reloaded table applies" it_wait_count tier.local 2 30
it_check "and the reloaded rule" it_wait_count tier.mid 1 30
it_check "with reason rule:legal" test "$(hdr tier.mid t5 kascade-reason)" = rule:legal

# A tier added by a reload: its escalations are counted under its own
# name, not "other" (the metric's tier labels follow the config).
edit 'c["tiers"].insert(1, dict(c["tiers"][0], name="extra"))'
it_kascade topics create >>"$IT_DIR/topics.out"
it_check "a reload adds a tier" hup_and_wait "reloaded:"
redis_port=${KASCADE_REDIS_URL##*:}
redis-cli -p "$redis_port" SET "${IT_PREFIX}ctx:-:x1" '{"task": {"id": "x1", "type": "answer", "input": "question x1"}, "format": "json", "attempts": [{"tier": "extra", "model": "m", "hop": 0, "output": "a", "confidence": 0.2, "confidence_source": "self_report", "decision": "escalate", "reason": "low_confidence", "cost_usd": 0.0001, "latency_ms": 10, "input_tokens": 5, "output_tokens": 2}], "cost_so_far_usd": 0}' >/dev/null
printf 'x1\t{"id": "x1", "from_tier": "extra", "hop": 0, "reason": "low_confidence", "confidence": 0.2, "cost_so_far_usd": 0}\n' |
    kcat -b "$B" -P -t "${IT_PREFIX}escalations" -K $'\t'
it_check "an escalation from the new tier is routed up" it_wait_count tier.mid 2 30
it_check "and counted under the new tier's name" \
    test "$(it_metric "$MPORT" 'kascade_escalations_total[{]from_tier="extra"')" = 1
it_check "router exits 0 on SIGTERM" it_stop "$ROUTER"

# Start-up with a bad pattern fails with the file, key and reason.
edit 'c["routing"]["rules"] = [{"name": "bad", "pattern": "[z-a]", "min_tier": "mid"}]'
rc=0
"$KS_BIN/kascade-router" -c "$CFG" "${IT_X[@]}" >"$IT_DIR/bad-start.log" 2>&1 || rc=$?
it_check "a bad rule pattern stops start-up" test "$rc" -ne 0
it_check "with the file, key and reason" \
    grep -q "$CFG: key 'routing.rules\[0\].pattern': not a usable PCRE2 pattern" "$IT_DIR/bad-start.log"
