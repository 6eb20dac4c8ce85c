#!/usr/bin/env bash
# kascade_consumer_lag{topic}: a worker with one call at a time against a
# slow model has a backlog on its tier topic, which its gauge shows and
# which falls to 0 once every task is answered; the router shows its tasks
# topic (drained: 0).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --latency-ms 150
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1"
       -X "tiers.local.max_inflight=1")
WPORT=$(it_free_port)
RPORT=$(it_free_port)
it_daemon worker kascade-worker --tier local -X "metrics.port=$WPORT"
it_daemon router kascade-router -X "metrics.port=$RPORT"
sleep 3 # both have joined their groups
N=60
for i in $(seq 1 $N); do
    printf 'l%d\t{"id": "l%d", "type": "classify_intent", "input": "parcel %d"}\n' "$i" "$i" "$i"
done | kcat -b "$B" -P -t "${IT_PREFIX}tasks" -K $'\t'

lag() { it_metric "$1" "^kascade_consumer_lag\\{topic=\"${IT_PREFIX}$2\"\\}"; }
max_lag=0
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    l=$(lag "$WPORT" tier.local)
    [ "${l%.*}" -gt "$max_lag" ] && max_lag=${l%.*}
    [ "$max_lag" -ge 10 ] && break
    sleep 1
done
it_check "the worker's lag on its tier topic shows the backlog ($max_lag)" \
    test "$max_lag" -ge 10
it_check "every task is answered" it_wait_count results $N 120
sleep 6 # one refresh of the gauge
it_check "then the worker's lag is 0" test "$(lag "$WPORT" tier.local)" = 0
it_check "the router's lag on the tasks topic is shown, and 0" \
    bash -c 'curl -sf "http://127.0.0.1:$1/metrics" |
             grep -q "^kascade_consumer_lag{topic=\"$2tasks\"} 0$"' _ "$RPORT" "$IT_PREFIX"
