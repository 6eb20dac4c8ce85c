#!/usr/bin/env bash
# An error reply on one tier's budget read is not "Redis down" for the
# router: with tier local's budget key of the wrong type (WRONGTYPE) the
# router keeps routing, local's tasks still reach local (whose workers
# dead-letter them with the error), and the other tiers' budgets still
# apply: a task for spent frontier (reject) is answered budget_exceeded,
# not routed to frontier as if no budget were known.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
redis_port=${KASCADE_REDIS_URL##*:}
submit() { # submit ID TYPE
    printf '%s\t{"id": "%s", "type": "%s", "input": "text of %s"}\n' "$1" "$1" "$2" "$1" |
        kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
}
it_kascade topics create >"$IT_DIR/topics.out"
it_kascade budget set frontier 0 >>"$IT_DIR/budget.out"
redis-cli -p "$redis_port" SET \
    "${IT_PREFIX}{budget}:$(date -u +%Y%m%d):tier:local" x >/dev/null

it_daemon router kascade-router
ROUTER=$LAST_PID
submit c1 classify_intent
submit r1 review
it_check "local's task reaches local" it_wait_count tier.local 1 30
it_check "a task for spent frontier (reject) is answered" it_wait_count results 1 30
it_read results >"$IT_DIR/results.jsonl"
it_check "with budget_exceeded" \
    grep -q '"id": "r1".*"status": "budget_exceeded"' "$IT_DIR/results.jsonl"
it_check "nothing reached frontier" test "$(it_count tier.frontier)" -eq 0
it_check "the error is logged as an error reply, not as redis down" \
    grep -q "budget read refused by redis (WRONGTYPE" "$IT_DIR/router.log"
submit c2 classify_intent
it_check "the router keeps routing" it_wait_count tier.local 2 30
it_check "and exits 0 on SIGTERM" it_stop "$ROUTER"
