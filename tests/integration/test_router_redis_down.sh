#!/usr/bin/env bash
# The router with its Redis unreachable: new tasks are routed without the
# budget step (logged once; even a tier whose budget will turn out spent),
# an escalation goes to the deferred topic (its context cannot be loaded)
# rather than being dead-lettered or dropped, and when Redis comes up it
# is sent on, once.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
REDIS_PORT=$(it_free_port)
redis() { KASCADE_REDIS_PORT=$REDIS_PORT KASCADE_REDIS_DIR="$IT_DIR/redis" \
    "$KS_ROOT/deploy/local/redis.sh" "$1" >/dev/null 2>&1; }
IT_HOOKS+=("redis stop")
IT_X+=(-X "redis.url=redis://127.0.0.1:$REDIS_PORT" -X "redis.timeout_ms=200")

it_kascade topics create >"$IT_DIR/topics.out"
it_daemon router kascade-router
ROUTER=$LAST_PID
printf 't1\t{"id": "t1", "type": "answer", "input": "q"}\n' |
    kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'
it_check "with Redis down a task is routed (no budget step)" it_wait_count tier.mid 1 30
it_check "and the router says so once" \
    test "$(grep -c 'routing without the budget step' "$IT_DIR/router.log")" -eq 1
printf 'e1\t{"id": "e1", "from_tier": "local", "hop": 0, "reason": "low_confidence", "confidence": 0.1, "context_key": "%sctx:-:e1", "cost_so_far_usd": 0}\n' "$IT_PREFIX" |
    kcat -b "$B" -P -t "${IT_PREFIX}escalations" -K $'\t'
sleep 4
it_check "an escalation is deferred while its context cannot be loaded" \
    grep -q "e1: deferred to .* (context not loaded, redis down)" "$IT_DIR/router.log"
it_check "not dead-lettered" test "$(it_count dlq)" -eq 0
it_check "not routed" test "$(it_count tier.mid)" -eq 1
redis start
redis-cli -p "$REDIS_PORT" SET "${IT_PREFIX}ctx:-:e1" '{"task": {"id": "e1", "type": "classify_intent", "input": "q"}, "format": "json", "attempts": [{"tier": "local", "model": "m", "hop": 0, "output": "x", "confidence": 0.1, "confidence_source": "self_report", "decision": "escalate", "reason": "low_confidence", "cost_usd": 0, "latency_ms": 1, "input_tokens": 1, "output_tokens": 1}], "cost_so_far_usd": 0}' >/dev/null
it_check "Redis up: the deferred escalation goes on to mid" it_wait_count tier.mid 2 30
it_check "and the router says budgets apply again" grep -q "redis is back" "$IT_DIR/router.log"
sleep 2
it_check "once" test "$(it_count tier.mid)" -eq 2
it_check "router exits 0 on SIGTERM" it_stop "$ROUTER"
