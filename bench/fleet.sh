#!/usr/bin/env bash
# bench/fleet.sh BUILD_DIR [N] - the whole fleet, tried as a new user
# would, over N tasks (default 20000), on a real Kafka broker and a real
# redis-server (bench/lib.sh starts both on free ports), the model
# simulator per tier (tier local escalates part of its answers, tier
# frontier has a small daily budget so part of its tasks are refused).
#
# It runs `kascade submit --wait` on the task file, `kascade status`
# every STATUS_EVERY seconds (default 10) while it runs, then
# - the ledger, read from the topics with kcat (an outside client):
#   tasks in, records on the tier topics ("routed"), escalations, Results
#   and DLQ entries, checked as: every task ends once (a Result or a DLQ
#   entry, by id); routed + router-made Results + router DLQ = tasks +
#   escalations; routed = worker Results + escalations + worker DLQ; and
#   spend = the sum of the Results' cost_usd = what Redis holds as spent;
# - Redis: INFO commandstats and INFO cpu before and after, as commands
#   (scripts' inner commands included), script calls and Redis CPU per
#   task;
# - Redis's capacity for the budget reservation script alone
#   (redis-benchmark, EVALSHA of the script the workers loaded, distinct
#   reservation ids), REDIS_BENCH_N calls (default 200000), 50 clients.
# Figures go to stdout; KEEP_DIR=DIR keeps the logs, the status samples
# and the topics read there. docs/scaling.md quotes a run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kascade-fleet.XXXXXX")
source "$ROOT/bench/lib.sh"
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM
BIN=$(cd "${1:?usage: bench/fleet.sh BUILD_DIR [N]}" && pwd)/bin
N=${2:-20000}
STATUS_EVERY=${STATUS_EVERY:-10}
REDIS_BENCH_N=${REDIS_BENCH_N:-200000}
CONFIG=$ROOT/deploy/examples/kascade.json
TASKS=$TMP/tasks.jsonl
TIMEOUT=${TIMEOUT:-900}

python3 - "$N" >"$TASKS" <<'EOF'
import json, sys
n = int(sys.argv[1])
types = ["classify_intent", "extract", "summarise", "answer", "review"]
tenants = ["acme", "globex", "initech"]
for i in range(n):
    t = {"id": "f-%06d" % i, "type": types[i % 5],
         "tenant": tenants[i % 3],
         "input": "ticket %d: the invoice for order %d shows a charge twice" % (i, i * 7 % 1000),
         "hints": {"max_output_tokens": 64}}
    if i % 250 == 17:
        t["hints"]["min_tier"] = "no-such-tier"     # router DLQ: invalid
    print(json.dumps(t))
EOF
start_kafka_redis kascade kascade-router kascade-worker kascade-modelsim
REDIS_URL=$KASCADE_REDIS_URL
rcli() { redis-cli -u "$REDIS_URL" "$@"; }

P=bench-fleet-$$.
X=(-X "topics.prefix=$P" -X "redis.prefix=$P" -X "topics.partitions=6"
   -X "tiers.local.escalate_below=0.5" -X "tiers.mid.escalate_below=0"
   -X "tiers.frontier.daily_budget_usd=0.25")
sim() { # sim TIER LATENCY [args]: a simulator for TIER
    local tier=$1 lat=$2
    shift 2
    "$BIN/kascade-modelsim" --port 0 --latency-ms "$lat" --jitter-ms $((lat / 2)) \
        --model "sim-$tier" "$@" >"$TMP/sim-$tier.out" 2>"$TMP/sim-$tier.log" &
    track $!
    for _ in $(seq 100); do
        grep -q '^listening on ' "$TMP/sim-$tier.out" 2>/dev/null && break
        sleep 0.05
    done
    X+=(-X "tiers.$tier.providers.0.base_url=$(sed -n 's/^listening on //p' "$TMP/sim-$tier.out")/v1")
}
sim local 40 --logprobs --confidence-dist 0.2:1.0
sim mid 150
sim frontier 400
"$BIN/kascade" -c "$CONFIG" "${X[@]}" topics create >"$TMP/topics.log" 2>&1

METRICS=()
daemon() { # daemon NAME BINARY ARGS...
    local name=$1 port
    shift
    port=$(free_port)
    METRICS+=("http://127.0.0.1:$port/metrics")
    "$BIN/$1" -c "$CONFIG" "${X[@]}" -X "metrics.port=$port" "${@:2}" \
        >"$TMP/$name.log" 2>&1 &
    track $!
}
daemon router kascade-router
for tier in local mid frontier; do
    daemon "worker-$tier" kascade-worker --tier "$tier"
done
for log in router worker-local worker-mid worker-frontier; do
    for _ in $(seq 300); do
        grep -q 'assigned [1-9]' "$TMP/$log.log" 2>/dev/null && break
        sleep 0.1
    done
done
ks() { "$BIN/kascade" -c "$CONFIG" "${X[@]}" "$@"; }

rcli INFO commandstats >"$TMP/redis.before"
rcli INFO cpu >>"$TMP/redis.before"
say "submitting $N tasks (kascade submit --wait; status every ${STATUS_EVERY}s)"
t0=$(now_ms)
ks submit "$TASKS" --wait --timeout "$TIMEOUT" -o "$TMP/results.jsonl" \
    >"$TMP/submit.out" 2>"$TMP/submit.err" &
submit=$!
track "$submit"
metrics=$(IFS=,; echo "${METRICS[*]}")
i=0
while alive "$submit"; do
    sleep "$STATUS_EVERY"
    alive "$submit" || break
    i=$((i + 1))
    { echo "--- status at +$(( ($(now_ms) - t0) / 1000 )) s"; ks status --metrics "$metrics" 2>&1; } \
        >>"$TMP/status.out" || true
done
rc=0
wait "$submit" || rc=$?
untrack "$submit"
t1=$(now_ms)
rcli INFO commandstats >"$TMP/redis.after"
rcli INFO cpu >>"$TMP/redis.after"
{ echo "--- status at the end"; ks status --metrics "$metrics" 2>&1; } >>"$TMP/status.out" || true
# What the daemons say they published (the router's /metrics is the first).
scrape() { curl -sf "$1" | awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $2 } END { print s + 0 }'; }
router_results=$(scrape "${METRICS[0]}" '^kascade_router_results_total')
worker_results=0
for u in "${METRICS[@]:1}"; do
    # Result statuses only: "escalated" counts hand-ons, "stored" answers
    # from a done record (a redelivery; none expected here).
    worker_results=$((worker_results + $(scrape "$u" \
        '^kascade_results_total[{].*status="(ok|low_confidence|failed|rejected|budget_exceeded)"')))
done
echo "$router_results $worker_results" >"$TMP/published.out"
ks budget show >"$TMP/budget.out" 2>&1 || true

echo "== kascade submit --wait (exit $rc, $(( (t1 - t0) / 1000 )) s)"
cat "$TMP/submit.out"
echo "== kascade submit stderr (last lines)"
tail -n 3 "$TMP/submit.err"
echo "== kascade status during the run ($i samples; first, middle, last)"
awk '/^--- status/{n++} {print n "\t" $0}' "$TMP/status.out" >"$TMP/status.n"
last=$(tail -n1 "$TMP/status.n" | cut -f1)
for k in 1 $(( (last + 1) / 2 )) "$last"; do
    awk -F'\t' -v k="$k" '$1 == k' "$TMP/status.n" | cut -f2-
done
echo "== kascade budget show"
cat "$TMP/budget.out"

echo "== ledger (kcat)"
for t in tasks tier.local tier.mid tier.frontier escalations results dlq; do
    python3 "$ROOT/tests/integration/kafkatool.py" read "$BOOT" "$P$t" >"$TMP/topic.$t"
done
python3 - "$TMP" "$P" "$TMP/budget.out" "$TMP/published.out" <<'EOF'
import json, re, sys
tmp, prefix, budget, published = sys.argv[1:]
router_made, worker_made = (int(x) for x in open(published).read().split())
def read(t):
    return [json.loads(l) for l in open("%s/topic.%s" % (tmp, t))]
tasks = read("tasks")
tiers = {t: read("tier." + t) for t in ("local", "mid", "frontier")}
esc, res, dlq = read("escalations"), read("results"), read("dlq")
routed = sum(len(v) for v in tiers.values())
src = lambda d: d["headers"].get("kascade-source", "").split("/")[0]
d_router = [d for d in dlq if src(d) in (prefix + "tasks", prefix + "escalations")]
d_worker = [d for d in dlq if src(d).startswith(prefix + "tier.")]
# Who made each Result (the router: budget refusals, max hops; else a
# worker) is what their metrics counted: kascade_router_results_total and
# kascade_results_total.
r_router = [None] * router_made
r_worker = [None] * worker_made
ids = [t["value"]["id"] for t in tasks]
ended = [r["value"]["id"] for r in res] + \
        [json.loads(d["value"])["id"] if isinstance(d["value"], str) else d["value"]["id"] for d in dlq]
print("tasks in            %6d" % len(tasks))
print("routed (tier topics)%6d  (%s)" % (routed, ", ".join("%s %d" % (k, len(v)) for k, v in tiers.items())))
print("escalations         %6d" % len(esc))
print("results             %6d  (router-made %d, worker %d, by their metrics)" % (len(res), len(r_router), len(r_worker)))
print("DLQ                 %6d  (router %d, worker %d)" % (len(dlq), len(d_router), len(d_worker)))
st = {}
for r in res:
    st[r["value"]["status"]] = st.get(r["value"]["status"], 0) + 1
print("results by status   ", st)
codes = {}
for d in dlq:
    c = d["headers"].get("kascade-error")
    codes[c] = codes.get(c, 0) + 1
print("DLQ by code         ", codes)
ok = True
def claim(text, cond):
    global ok
    ok &= cond
    print("%-4s %s" % ("ok" if cond else "FAIL", text))
claim("the Results on the topic are the ones the daemons counted: %d = %d + %d"
      % (len(res), router_made, worker_made), len(res) == router_made + worker_made)
claim("every task ends exactly once (Result or DLQ entry, by id): %d ended, %d distinct, %d tasks"
      % (len(ended), len(set(ended)), len(ids)),
      sorted(ended) == sorted(ids))
claim("routed + router Results + router DLQ = tasks + escalations: %d + %d + %d = %d + %d"
      % (routed, len(r_router), len(d_router), len(tasks), len(esc)),
      routed + len(r_router) + len(d_router) == len(tasks) + len(esc))
claim("routed = worker Results + escalations + worker DLQ: %d = %d + %d + %d"
      % (routed, len(r_worker), len(esc), len(d_worker)),
      routed == len(r_worker) + len(esc) + len(d_worker))
spend = sum(r["value"].get("cost_usd") or 0 for r in res)
spent = {"tier": 0.0, "tenant": 0.0}
for line in open(budget):
    f = line.split()
    if len(f) >= 4 and f[0] in spent:
        spent[f[0]] += float(f[3])
claim("spend: sum of Result cost_usd %.6f USD = Redis's spent over tiers %.6f = over tenants %.6f"
      % (spend, spent["tier"], spent["tenant"]),
      abs(spend - spent["tier"]) < 1e-6 and abs(spend - spent["tenant"]) < 1e-6)
sys.exit(0 if ok else 1)
EOF
ledger=$?

echo "== Redis per task ($N tasks)"
python3 - "$TMP/redis.before" "$TMP/redis.after" "$N" <<'EOF'
import re, sys
def load(p):
    calls, usec, cpu = {}, {}, 0.0
    for line in open(p):
        m = re.match(r"cmdstat_(\S+):calls=(\d+),usec=(\d+)", line)
        if m:
            calls[m.group(1)] = int(m.group(2))
            usec[m.group(1)] = int(m.group(3))
        m = re.match(r"used_cpu_(sys|user):([0-9.]+)", line)
        if m:
            cpu += float(m.group(2))
    return calls, usec, cpu
c0, u0, cpu0 = load(sys.argv[1])
c1, u1, cpu1 = load(sys.argv[2])
n = int(sys.argv[3])
rows = sorted(((c1[k] - c0.get(k, 0), u1[k] - u0.get(k, 0), k) for k in c1), reverse=True)
total = sum(r[0] for r in rows)
print("%-16s %10s %9s %12s" % ("command", "calls", "per task", "usec/call"))
for calls, usec, k in rows:
    if calls:
        print("%-16s %10d %9.2f %12.2f" % (k, calls, calls / n, usec / calls))
print("all commands (scripts' inner ones included): %.1f per task" % (total / n))
scripts = sum(c1.get(k, 0) - c0.get(k, 0) for k in ("evalsha", "eval"))
print("script calls (EVALSHA/EVAL): %.2f per task" % (scripts / n))
print("Redis CPU: %.2f s for %d tasks = %.1f us per task -> one core saturates at about %.0f tasks/s"
      % (cpu1 - cpu0, n, (cpu1 - cpu0) / n * 1e6, n / max(cpu1 - cpu0, 1e-9)))
EOF

echo "== Redis capacity for the budget reservation script (redis-benchmark)"
# The reserve script as the workers loaded it: the longest script in the
# cache that sweeps expired reservations and refuses over the limit.
sha=$(python3 - "$ROOT/common/redis/budget_lua.h" <<'EOF'
import hashlib, re, sys
src = open(sys.argv[1]).read()
common = src[src.index("#define BUDGET_LUA_COMMON"):]
common = common[:common.index("\n\n")]
def strings(block):
    return "".join(bytes(s, "utf-8").decode("unicode_escape") for s in re.findall(r'"((?:[^"\\]|\\.)*)"', block))
body = src[src.index("budget_lua_reserve[] = BUDGET_LUA_COMMON") + len("budget_lua_reserve[] = BUDGET_LUA_COMMON"):]
body = body[:body.index(";\n")]
print(hashlib.sha1((strings(common) + strings(body)).encode()).hexdigest())
EOF
)
if [ "$(rcli SCRIPT EXISTS "$sha")" = 1 ]; then
    echo "reserve script $sha is loaded"
    # ks_budget_reserve's call (budget_lua.h): the liveness set and the
    # owner's set, then a tier budget and a tenant budget, 5 keys each
    # (h z a sw l), all under the {budget} tag; then id, cost, ttl ms,
    # owner, liveness ms, key TTL s and each budget's config limit.
    # Distinct ids (__rand_int__), no limit reached, no expired
    # reservation to sweep: the path of a call that is let through.
    hostport=${REDIS_URL#redis://}
    hostport=${hostport##*@}
    hostport=${hostport%%/*}
    l="${P}{budget}:live" w="${P}{budget}:w:bench"
    b="${P}{budget}:bench:tier:x" t="${P}{budget}:bench:tenant:y"
    for c in 1 50; do
        redis-benchmark -h "${hostport%:*}" -p "${hostport##*:}" -n "$REDIS_BENCH_N" \
            -c "$c" -r 1000000000 -q \
            EVALSHA "$sha" 12 "$l" "$w" \
            "$b" "$b:res" "$b:amt" "$b:swept" "${P}{budget}:limit:tier:x" \
            "$t" "$t:res" "$t:amt" "$t:swept" "${P}{budget}:limit:tenant:y" \
            "r-__rand_int__-__rand_int__" 1000 86400000 bench 5000 172800 \
            1000000000000000 1000000000000000 2>&1 |
            tr '\r' '\n' | grep -v '^$' | tail -n 1 | sed "s/^/reserve, $c client(s): /"
    done
    echo "zset after: $(rcli ZCARD "$b:res") reservations"
else
    echo "reserve script $sha not in Redis's script cache: the hash recipe above is out of date"
fi
if [ -n "${KEEP_DIR:-}" ]; then
    mkdir -p "$KEEP_DIR" && cp -r "$TMP"/*.out "$TMP"/*.log "$TMP"/topic.* "$TMP"/redis.* "$KEEP_DIR"/ 2>/dev/null
fi
exit $(( rc != 0 || ledger != 0 ))
