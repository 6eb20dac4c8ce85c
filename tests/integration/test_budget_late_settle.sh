#!/usr/bin/env bash
# A worker that is alive but cannot reach Redis for longer than its
# liveness (5 s: here it is stopped with SIGSTOP, as a long pause or a
# partition would; a Redis restart slower than 5 s does the same to every
# worker) has its calls in flight charged at worst case by the next sweep.
# When it comes back it settles them with what they really cost: the
# settle replaces the sweep's worst case, so spent equals the sum of the
# Results' cost_usd again and expired_micro is back at 0. (Before: the
# worst case was kept; the fault suite's 7 s Redis restart left spent
# 74,373 micro-dollars above the providers' bill with no crash.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=12
IT_X+=(-X "tiers.mid.prompt=Answer." -X "tiers.local.prompt=Answer."
       -X "tiers.mid.daily_budget_usd=5" -X "tiers.mid.on_budget_exhausted=reject"
       -X "tiers.mid.providers.0.price_in_per_mtok=100"
       -X "tiers.mid.providers.0.price_out_per_mtok=400"
       -X "tiers.mid.providers.0.timeout_ms=30000"
       -X "tiers.mid.providers.0.max_retries=0")
it_kascade topics create >"$IT_DIR/topics.out"
it_sim mid --latency-ms 2500
IT_X+=(-X "tiers.mid.providers.0.base_url=$SIM_URL/v1")
it_daemon router kascade-router
it_daemon worker-mid-1 kascade-worker --tier mid
WORKER=$LAST_PID

for i in $(seq "$N"); do
    printf 'l-%d\t{"id":"l-%d","type":"answer","input":"late %d","hints":{"max_output_tokens":32}}\n' "$i" "$i" "$i"
done | kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tasks" -K $'\t'

field() { it_budget_field mid "$1"; }
wait_all_reserved() { # every task's call in flight
    for _ in $(seq 300); do
        [ "$(it_sim_requests "$SIM_URL")" -ge "$N" ] && return 0
        sleep 0.1
    done
    return 1
}
it_check "the worker is calling for every task" wait_all_reserved
it_check "its calls hold reservations" test "$(field reserved)" -gt 0
kill -STOP "$WORKER"
it_log "worker stopped with $(field reserved) micro-dollars reserved"
sleep 7
# Any read sweeps: the stopped worker's liveness has lapsed.
it_kascade budget show --json >"$IT_DIR/show.json"
swept=$(field expired_micro)
it_log "after the sweep: spent $(field spent), reserved $(field reserved), expired_micro $swept"
it_check "the sweep charged the calls in flight at worst case" test "$swept" -gt 0
it_check "and released their room" test "$(field reserved)" -eq 0
kill -CONT "$WORKER"
it_check "every task has a result" it_wait_count results "$N" 60
sleep 2
it_read results >"$IT_DIR/results.jsonl"
cost=$(it_cost_micro "$IT_DIR/results.jsonl")
it_log "sum of cost_usd $cost, spent $(field spent), expired_micro $(field expired_micro)"
it_check "spent equals what the calls cost (the late settles replaced the worst case)" \
    test "$(field spent)" -eq "$cost"
it_check "expired_micro is back at 0" test "$(field expired_micro)" -eq 0
it_check "no reservation left open" test "$(field reserved)" -eq 0
