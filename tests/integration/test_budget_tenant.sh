#!/usr/bin/env bash
# Tenant limits refuse the task, not the tier. The router answers a task
# whose tenant's budget is spent (spent >= limit) itself: budget_exceeded,
# reason budget_tenant, nothing on the tier topic, while another tenant's
# task on the same tier is routed. A tenant whose budget cannot take one
# call's worst case (its reservation is refused by the tenant) gets
# budget_exceeded from the worker at once, whatever the tier's policy
# (mid: downgrade), and never reaches the model; another tenant's tasks on
# the same tier keep flowing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IT_X+=(-X "tiers.mid.on_budget_exhausted=downgrade")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 20
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1")
redis_port=${KASCADE_REDIS_URL##*:}
rcli() { redis-cli -p "$redis_port" "$@"; }
submit() { # submit ID TENANT
    printf '%s\t{"id":"%s","type":"answer","tenant":"%s","input":"text of %s"}\n' \
        "$1" "$1" "$2" "$1"
}
produce() { kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'; }
results() { # results PREFIX: "status count" lines of the Results whose id starts so
    it_read results | python3 -c '
import collections, json, sys
c = collections.Counter(json.loads(l)["value"]["status"] for l in sys.stdin
                        if json.loads(l)["value"]["id"].startswith(sys.argv[1]))
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))' "$1"
}
day=$(date -u +%Y%m%d)

# --- the router: tenant "gone" has spent its budget
it_kascade budget set-tenant gone 0.0001 >>"$IT_DIR/budget.out"
rcli HSET "${IT_PREFIX}{budget}:$day:tenant:gone" spent 100 >/dev/null
M=$(it_free_port)
it_daemon router kascade-router -X "metrics.port=$M"
{ submit g-1 gone; submit a-0 acme; } | produce
it_check "the spent tenant's task is answered by the router" \
    it_wait_count results 1 30
it_check "as budget_exceeded" test "$(results g-)" = "budget_exceeded=1"
it_check "the other tenant's task is routed to mid" it_wait_count tier.mid 1 30
it_check "and only it" test "$(it_count tier.mid)" = 1
it_check "counted with reason budget_tenant" \
    test "$(it_metric "$M" 'kascade_tasks_routed_total.*budget_tenant')" = 1

# --- the worker: tenant "poor" cannot afford one call's worst case
it_kascade budget set-tenant poor 0.000001 >>"$IT_DIR/budget.out"
it_daemon worker-mid kascade-worker --tier mid
{
    for i in $(seq 5); do submit "p-$i" poor; done
    for i in $(seq 20); do submit "a-$i" acme; done
} | produce
it_check "every task is answered" it_wait_count results 27 60
it_check "the poor tenant's tasks end budget_exceeded" \
    test "$(results p-)" = "budget_exceeded=5"
it_check "the other tenant's tasks on the same tier are answered" \
    test "$(results a-)" = "ok=21"
it_check "the refused tasks never reached the model" \
    test "$(it_sim_requests "$SIM")" -eq 21
it_check "no reservation is left open" \
    test "$(rcli HGET "${IT_PREFIX}{budget}:$day:tier:mid" reserved)" = 0
