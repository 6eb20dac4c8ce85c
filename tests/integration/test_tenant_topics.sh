#!/usr/bin/env bash
# topics.tenant_topics: the router consumes <prefix>tasks.<tenant> by
# pattern and takes the tenant from the topic. A task there that names no
# tenant is routed with the topic's (its tier record and Result carry it);
# one that names its own tenant is routed as is; one that names another
# tenant is dead-lettered as invalid. A tenant topic created while the
# router runs is found (metadata refresh every 10 s).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
IT_X+=(-X "topics.tenant_topics=true")
it_kascade topics create --tenant acme >"$IT_DIR/topics.out"
it_check "topics create makes the tenant's tasks topic" \
    grep -q "${IT_PREFIX}tasks.acme" "$IT_DIR/topics.out"
it_check "topics create refuses a name that breaks the tenant rule" \
    bash -c '! "$@" >/dev/null 2>&1' _ "$KS_BIN/kascade" -c "$KS_CONFIG" \
    "${IT_X[@]}" topics create --tenant 'bad:name'
it_sim local --model sim-local
IT_X+=(-X "tiers.local.providers.0.base_url=$SIM_URL/v1")
it_daemon worker-local kascade-worker --tier local
it_daemon router kascade-router
ROUTER=$LAST_PID

send() { # send TOPIC-SUFFIX ID TENANT-JSON
    printf '%s\t{"id": "%s", "type": "classify_intent", "input": "parcel"%s}\n' \
        "$2" "$2" "$3" | kcat -b "$B" -P -t "${IT_PREFIX}$1" -K $'\t'
}
send tasks.acme t-none ''
send tasks.acme t-own ', "tenant": "acme"'
send tasks.acme t-other ', "tenant": "globex"'
it_check "two tasks are answered" it_wait_count results 2 60
result_tenant() {
    it_read results | python3 -c '
import json, sys
v = [json.loads(l)["value"] for l in sys.stdin]
m = [r for r in v if isinstance(r, dict) and r.get("id") == sys.argv[1]]
print(m[-1].get("tenant") if m else "missing")' "$1"
}
it_check "a task without a tenant gets the topic's" test "$(result_tenant t-none)" = acme
it_check "a task naming its own tenant keeps it" test "$(result_tenant t-own)" = acme
it_check "a task naming another tenant is dead-lettered" it_wait_count dlq 1 30
dlq_ok() {
    it_read dlq | python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin][-1]
h = r["headers"]
sys.exit(0 if h.get("kascade-error") == "invalid" and "globex" in
         h.get("kascade-error-detail", "") and r["value"]["id"] == "t-other" else 1)'
}
it_check "as invalid, naming both tenants" dlq_ok

# A new tenant's topic, created while the router runs.
it_kascade topics create --tenant globex >>"$IT_DIR/topics.out"
sleep 12 # one metadata refresh
send tasks.globex g-1 ''
it_check "a tenant topic created later is consumed too" it_wait_count results 3 60
it_check "with its tenant" test "$(result_tenant g-1)" = globex
it_check "router exits 0 on SIGTERM" it_stop "$ROUTER"
