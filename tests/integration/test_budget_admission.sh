#!/usr/bin/env bash
# Admission after reservation: the fleet-wide rate limit admits a call only
# once its budget reservation holds. Five tasks written straight to the mid
# tier's topic meet a spent budget (limit 0, on_budget_exhausted: defer):
# the worker holds them and tries again every 5 s, and not one attempt
# takes a slot of the provider's rpm window (before, every attempt was
# admitted first: phantom calls filling the window). No call is made.
# Then the budget is raised: the tasks are answered, and the window holds
# exactly the five calls made.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IT_X+=(-X "tiers.mid.on_budget_exhausted=defer")
it_kascade topics create >"$IT_DIR/topics.out"
it_kascade budget set mid 0 >>"$IT_DIR/budget.out"
it_sim mid
SIM=$SIM_URL
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM/v1"
       -X "tiers.mid.providers.0.rpm=100")
redis_port=${KASCADE_REDIS_URL##*:}
window() { redis-cli -p "$redis_port" ZCARD "${IT_PREFIX}rate:{mid:0}"; }
it_daemon worker-mid kascade-worker --tier mid

for i in $(seq 5); do
    printf 'h-%d\t{"id":"h-%d","type":"answer","input":"question %d"}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.mid" -K $'\t'
sleep 14 # the group forms, then at least two rounds of 5 s holds
it_log "rate window after the holds: $(window) member(s)"
it_check "held jobs took no rate-limit slot" test "$(window)" = 0
it_check "and made no call" test "$(it_sim_requests "$SIM")" -eq 0
it_kascade budget set mid none >>"$IT_DIR/budget.out"
it_check "with budget, every task is answered" it_wait_count results 5 30
it_check "the window holds exactly the calls made" test "$(window)" = 5
it_check "five calls" test "$(it_sim_requests "$SIM")" -eq 5
