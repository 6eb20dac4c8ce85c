#!/usr/bin/env bash
# The UTC day rolls over with no restart. The worker's budget clock is set
# (budget.clock_offset_ms) to a few seconds before midnight; the tier's
# budget takes about two calls a day and its policy is defer. Two tasks
# are answered on the old day, the other two wait (held, not refused) and
# are answered on the new day against a fresh budget. A task whose own
# max_cost_usd is below its call's worst case is refused (budget_exceeded).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

now_ms=$(python3 -c 'import time; print(int(time.time()*1000))')
offset=$(python3 -c '
import sys, time
now = int(sys.argv[1]); day = 86400000
print(day - now % day - 6000)' "$now_ms")
old_day=$(python3 -c 'import sys,time; print(time.strftime("%Y%m%d", time.gmtime((int(sys.argv[1])+int(sys.argv[2]))/1000)))' "$now_ms" "$offset")
new_day=$(python3 -c 'import sys,time; print(time.strftime("%Y%m%d", time.gmtime((int(sys.argv[1])+int(sys.argv[2]))/1000+60)))' "$now_ms" "$offset")

# A short executor prompt keeps the worst case this test counts on.
IT_X+=(-X "tiers.mid.prompt=Answer."
       -X "budget.clock_offset_ms=$offset"
       -X "tiers.mid.daily_budget_usd=0.032" -X "tiers.mid.on_budget_exhausted=defer"
       -X "tiers.mid.providers.0.price_in_per_mtok=100"
       -X "tiers.mid.providers.0.price_out_per_mtok=400"
       -X "tiers.mid.max_inflight=1")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 100
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
it_daemon router kascade-router
it_daemon worker-mid kascade-worker --tier mid

for i in 1 2 3 4; do
    printf 'd-%d\t{"id":"d-%d","type":"answer","input":"short %d","hints":{"max_output_tokens":64}}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'
# And one whose own cap (max_cost_usd) is below its call's worst case.
printf 'cap\t{"id":"cap","type":"answer","input":"x","hints":{"max_cost_usd":0.0001}}\n' |
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'

it_check "all five tasks answered across midnight" it_wait_count results 5 60
sleep 1
redis_port=${KASCADE_REDIS_URL##*:}
spent() { redis-cli -p "$redis_port" HGET "${IT_PREFIX}{budget}:$1:tier:mid" spent; }
old=$(spent "$old_day")
new=$(spent "$new_day")
it_log "spent on $old_day: $old, on $new_day: $new (limit 32000)"
it_check "the old day spent some, within its limit" \
    test "${old:-0}" -gt 0 -a "${old:-0}" -le 32000
it_check "the new day spent the rest, within its own limit" \
    test "${new:-0}" -gt 0 -a "${new:-0}" -le 32000
it_read results >"$IT_DIR/results.jsonl"
it_check "the four ok" test "$(grep -c '"status": "ok"' "$IT_DIR/results.jsonl")" -eq 4
it_check "the capped task refused by its max_cost_usd" \
    grep -q '"id": "cap".*"status": "budget_exceeded".*max_cost_usd' "$IT_DIR/results.jsonl"
