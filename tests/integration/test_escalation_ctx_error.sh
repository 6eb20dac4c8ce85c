#!/usr/bin/env bash
# A worker whose escalation context Redis refuses to store (an error reply:
# here NOPERM, for an ACL user without the ctx keys; the same for OOM or a
# read-only replica) dead-letters the task with code `redis` instead of
# retrying for ever with its partition's commits held; the next task
# still goes through.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --confidence 0.1 --model sim-local
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.local.escalate_below=0.5")

# An ACL user with every key of this test's prefix but the contexts.
hostport=${KASCADE_REDIS_URL#redis://}
hostport=${hostport%%/*}
rcli() { redis-cli -h "${hostport%:*}" -p "${hostport#*:}" "$@"; }
user="it-noctx-$$"
rcli ACL SETUSER "$user" on ">pw-$$" "~${IT_PREFIX}{budget}:*" \
    "~${IT_PREFIX}{budget}:limit:*" "~${IT_PREFIX}done:*" "~${IT_PREFIX}rate:*" \
    +@all >/dev/null
IT_HOOKS+=("redis-cli -h '${hostport%:*}' -p '${hostport#*:}' ACL DELUSER '$user'")
KASCADE_REDIS_URL="redis://$user:pw-$$@$hostport" \
    it_daemon worker-local kascade-worker --tier local
WORKER=$LAST_PID
it_daemon router kascade-router

for i in 1 2; do
    printf 'x%d\t{"id": "x%d", "type": "classify_intent", "input": "hello %d", "hints": {"max_tier": "mid"}}\n' \
        "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" -K $'\t'

it_check "both escalating tasks are dead-lettered" it_wait_count dlq 2 60
dlq_ok() {
    it_read dlq | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
ok = [r for r in recs if r["headers"].get("kascade-error") == "redis"
      and "escalation context" in r["headers"].get("kascade-error-detail", "")
      and "NOPERM" in r["headers"].get("kascade-error-detail", "")]
sys.exit(0 if len(ok) == 2 else 1)'
}
it_check "with code redis and Redis's error as detail" dlq_ok
it_check "no escalation went out" test "$(it_count escalations)" -eq 0
it_check "the worker is still up" kill -0 "$WORKER"
it_check "and drains and exits 0 on SIGTERM" it_stop "$WORKER"
