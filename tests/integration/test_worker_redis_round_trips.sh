#!/usr/bin/env bash
# The worker's Redis round trips do not grow with its jobs: the escalation
# contexts it loads (hop > 0) and saves (each hand-on), and its done-record
# look-ups, go out in one pipelined round trip per loop turn for all the
# jobs due (workers/batch.c), never one round trip per job. With blocking
# hiredis calls on the event loop, per-job round trips are what a slow
# Redis multiplies into stalls of every call in flight.
#
# 2000 tasks at hop 1, each with its context in Redis, are produced onto
# tier local, whose provider is the in-process classifier (no budget
# reservation, no rate limit, no HTTP: the only Redis traffic is the done
# records and the contexts) with escalate_below 1, so every task loads its
# context, hands on and saves it. Redis's own count of read events
# (INFO stats total_reads_processed: one per round trip, more for a
# pipeline over 16 KB) must stay under a quarter of the tasks; one round
# trip per context load and save alone would be twice the tasks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=2000
REDIS_PORT=$(it_free_port)
redis() { KASCADE_REDIS_PORT=$REDIS_PORT KASCADE_REDIS_DIR="$IT_DIR/redis" \
    "$KS_ROOT/deploy/local/redis.sh" "$1" >/dev/null 2>&1; }
IT_HOOKS+=("redis stop")
redis start
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

python3 - "$IT_DIR/train.jsonl" <<'PY'
import json, random, sys
random.seed(7)
words = {"billing": ["charged", "invoice", "refund", "payment", "card"],
         "shipping": ["parcel", "delivery", "courier", "tracking", "shipped"],
         "account": ["password", "login", "username", "locked", "profile"]}
filler = ["my", "the", "please", "help", "today", "again", "was", "is"]
with open(sys.argv[1], "w") as f:
    for i in range(300):
        label = list(words)[i % 3]
        text = " ".join(random.sample(words[label], 2) + random.sample(filler, 3))
        f.write(json.dumps({"input": text, "label": label}) + "\n")
PY
"$KS_BIN/kascade" train --kind triage -i "$IT_DIR/train.jsonl" \
    -o "$IT_DIR/triage.model" >"$IT_DIR/train.out" 2>&1 ||
    it_die "kascade train failed: $(cat "$IT_DIR/train.out")"

IT_X+=(-X "redis.url=redis://127.0.0.1:$REDIS_PORT"
       -X "tiers.local.providers.0.kind=classifier"
       -X "tiers.local.providers.0.model_file=$IT_DIR/triage.model"
       -X "tiers.local.max_inflight=256"
       -X "tiers.local.escalate_below=1")
it_kascade topics create >"$IT_DIR/topics.out"

# The contexts (as the worker of hop 0 saved them) and the tasks, hop 1.
python3 - "$N" "$IT_PREFIX" "$IT_DIR/ctx.resp" "$IT_DIR/tasks.tsv" <<'PY'
import json, sys
n, prefix = int(sys.argv[1]), sys.argv[2]
def resp(*args):
    out = "*%d\r\n" % len(args)
    for a in args:
        b = a.encode()
        out += "$%d\r\n%s\r\n" % (len(b), a)
    return out
with open(sys.argv[3], "w", newline="") as c, open(sys.argv[4], "w") as t:
    for i in range(n):
        task = {"id": "h-%d" % i, "type": "classify_intent",
                "input": "refund parcel password %d" % i}
        doc = {"task": task, "format": "json", "cost_so_far_usd": 0,
               "attempts": [{"tier": "local", "model": "earlier", "hop": 0,
                             "output": "shipping", "confidence": 0.2,
                             "decision": "escalate",
                             "reason": "low_confidence", "cost_usd": 0,
                             "latency_ms": 1, "input_tokens": 1,
                             "output_tokens": 1}]}
        c.write(resp("SET", "%sctx:-:h-%d" % (prefix, i), json.dumps(doc)))
        t.write("h-%d\t%s\n" % (i, json.dumps(task)))
PY
rcli --pipe <"$IT_DIR/ctx.resp" >"$IT_DIR/pipe.out"
it_daemon worker-local kascade-worker --tier local
it_wait_assigned worker-local || true
reads() { rcli info stats | tr -d '\r' | sed -n 's/^total_reads_processed://p'; }
before=$(reads)
kcat -b "$KASCADE_BOOTSTRAP_SERVERS" -P -t "${IT_PREFIX}tier.local" \
    -K $'\t' -H kascade-hop=1 <"$IT_DIR/tasks.tsv"
it_check "every task handed on ($N escalations)" it_wait_count escalations "$N" 120
sleep 1
after=$(reads)
round_trips=$((after - before))
it_log "redis read events while the worker ran: $round_trips for $N tasks"
it_check "round trips do not grow with the jobs ($round_trips < $((N / 4)))" \
    test "$round_trips" -lt $((N / 4))
attempts=$(rcli get "${IT_PREFIX}ctx:-:h-7" | python3 -c '
import json, sys
print(",".join("%s/%d" % (a["model"], a["hop"]) for a in json.load(sys.stdin)["attempts"]))')
two_attempts() { [[ $attempts == earlier/0,*/1 && $attempts != *,*,* ]]; }
it_check "a saved context has the loaded attempt and the new one ($attempts)" \
    two_attempts
it_check "no DLQ entry" test "$(it_count dlq)" -eq 0
