#!/usr/bin/env bash
# The worker's side of the escalation loop, without the router: tasks
# produced straight to a tier topic. An unconfident answer (self-reported
# confidence under escalate_below), an answer that fails the task's
# output_schema and a tier whose provider keeps failing each hand the task
# on: the context (task and attempt) is in kascade:ctx:-:<id> and an
# Escalation is on kascade.escalations, and no Result is published. The
# same tasks at hop 1 on the next tier get the earlier attempt in their
# prompt and end in one Result whose path holds both attempts and whose
# cost is their sum. A redelivered hop is answered from its done record.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

it_kascade topics create >"$IT_DIR/topics.out"
it_sim local --confidence 0.2 --log-level debug
URL_local=$SIM_URL
# mid's tokens carry 0.9 too: a reported confidence can only lower what
# the logprobs say, so a bare --confidence 0.9 would give the default
# per-token values (about 0.74) instead.
it_sim mid --confidence-dist 0.9:0.9
URL_mid=$SIM_URL
it_sim dead --fail 500:1
URL_dead=$SIM_URL
IT_X+=(-X "tiers.local.escalate_below=0.5" -X "tiers.mid.escalate_below=0.6"
       -X "tiers.local.providers.0.base_url=$URL_local/v1"
       -X "tiers.local.providers.0.max_retries=0"
       -X "tiers.local.providers.0.price_in_per_mtok=1"
       -X "tiers.local.providers.0.price_out_per_mtok=2"
       -X "tiers.mid.providers.0.base_url=$URL_mid/v1")
it_daemon worker-local kascade-worker --tier local
LOCAL_PID=$LAST_PID

produce() { # produce TOPIC-SUFFIX [kcat -H args...] < key<TAB>value lines
    local t=$1
    shift
    kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "$IT_PREFIX$t" -K $'\t' "$@"
}
{
    for i in $(seq 10); do
        printf 'lc-%d\t{"id":"lc-%d","type":"classify_intent","input":"case %d"}\n' "$i" "$i" "$i"
    done
    for i in $(seq 5); do
        printf 'sc-%d\t{"id":"sc-%d","type":"extract","input":"schema %d","output_schema":{"type":"object","required":["label"]}}\n' "$i" "$i" "$i"
    done
} | produce tier.local
it_check "15 escalations from tier local" it_wait_count escalations 15 60
it_read escalations >"$IT_DIR/esc.jsonl"
redis_port=${KASCADE_REDIS_URL##*:}
check_escalations() {
    python3 - "$IT_DIR/esc.jsonl" "$IT_PREFIX" "$redis_port" <<'PY'
import collections, json, subprocess, sys
esc = [json.loads(l)["value"] for l in open(sys.argv[1])]
prefix, port = sys.argv[2], sys.argv[3]
bad = 0
for e in esc:
    want = "low_confidence" if e["id"].startswith("lc-") else "schema"
    ok = (e["from_tier"] == "local" and e["hop"] == 0 and e["reason"] == want
          and e["context_key"] == prefix + "ctx:-:" + e["id"])
    doc = subprocess.run(["redis-cli", "-p", port, "GET", e["context_key"]],
                         capture_output=True, text=True).stdout
    ctx = json.loads(doc)
    a = ctx["attempts"]
    ok = ok and ctx["task"]["id"] == e["id"] and len(a) == 1 and \
        a[0]["tier"] == "local" and a[0]["decision"] == "escalate" and \
        a[0]["reason"] == want and a[0]["output"] and \
        abs(float(ctx["cost_so_far_usd"]) - e["cost_so_far_usd"]) < 1e-9 and \
        e["cost_so_far_usd"] > 0
    if not ok:
        bad += 1
        print("bad escalation", e, doc[:300])
ids = collections.Counter(e["id"] for e in esc)
print("%d escalations, %d distinct, %d bad" % (len(esc), len(ids), bad))
sys.exit(0 if bad == 0 and len(ids) == 15 and len(esc) == 15 else 1)
PY
}
it_check "each names its reason and a context holding the attempt" check_escalations
it_check "no Result for an escalated task" test "$(it_count results)" -eq 0

# Hop 1 on tier mid: the earlier attempt reaches the prompt; the Result
# carries both attempts.
it_daemon worker-mid kascade-worker --tier mid
for i in $(seq 10); do
    printf 'lc-%d\t{"id":"lc-%d","type":"classify_intent","input":"case %d"}\n' "$i" "$i" "$i"
done | produce tier.mid -H kascade-hop=1 -H kascade-tier=mid
it_check "10 Results from tier mid" it_wait_count results 10 60
it_read results >"$IT_DIR/results.jsonl"
check_results() {
    python3 - "$IT_DIR/results.jsonl" "$IT_DIR/esc.jsonl" <<'PY'
import decimal, json, sys
res = [json.loads(l)["value"] for l in open(sys.argv[1])]
esc = {e["id"]: e for e in (json.loads(l)["value"] for l in open(sys.argv[2]))}
bad = 0
for r in res:
    p = r["path"]
    first = decimal.Decimal(str(esc[r["id"]]["cost_so_far_usd"]))
    ok = (r["status"] == "ok" and r["tier"] == "mid" and len(p) == 2 and
          p[0]["tier"] == "local" and p[0]["decision"] == "escalate" and
          p[1]["tier"] == "mid" and p[1]["decision"] == "answer" and
          r["confidence_source"] in ("logprob", "self_report") and
          abs(r["confidence"] - 0.9) < 1e-3
          and decimal.Decimal(str(r["cost_usd"])) ==
          first + decimal.Decimal(str(p[1]["cost_usd"])))
    if not ok:
        bad += 1
        print("bad result", json.dumps(r)[:400])
print("%d results, %d bad" % (len(res), bad))
sys.exit(0 if bad == 0 and len(res) == 10 else 1)
PY
}
it_check "each has the path local -> mid and the summed cost" check_results

# A redelivered hop 0 is answered from its done record: the Escalation is
# produced again, the model is not called again.
before=$(it_sim_requests "$URL_local")
printf 'lc-1\t{"id":"lc-1","type":"classify_intent","input":"case 1"}\n' |
    produce tier.local
it_check "a redelivery republishes the stored escalation" \
    it_wait_count escalations 16 30
it_check "without a second call" test "$(it_sim_requests "$URL_local")" -eq "$before"

# Provider failure on a tier that is not the top one: hand on.
it_check "the first local worker drains and exits 0" it_stop "$LOCAL_PID"
it_daemon worker-local-dead kascade-worker --tier local \
    -X "tiers.local.providers.0.base_url=$URL_dead/v1"
printf 'pf-1\t{"id":"pf-1","type":"classify_intent","input":"x"}\n' |
    produce tier.local
it_check "a failing provider escalates" it_wait_count escalations 17 60
it_check "with reason provider_failure" bash -c \
    "python3 '$KS_ROOT/tests/integration/kafkatool.py' read '$KASCADE_BOOTSTRAP_SERVERS' '${IT_PREFIX}escalations' | grep -q '\"id\": \"pf-1\".*\"reason\": \"provider_failure\"'"
it_check "and no DLQ entry" test "$(it_count dlq)" -eq 0
