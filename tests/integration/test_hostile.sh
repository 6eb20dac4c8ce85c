#!/usr/bin/env bash
# A hostile producer against the whole fleet: the router and one worker
# per tier on model simulators. Every topic a daemon consumes gets a
# corpus of bad records (tasks, escalations and the tier topic
# tier.local): every decode error path (not JSON, truncated JSON, deep
# nesting, duplicate keys, wrong types, NUL bytes, truncated protobuf with
# the protobuf content-type, empty and null values, oversize), each
# required field missing, bad tenants, and escalations with no context,
# a forged context_key, a context of another task or tenant, an unknown
# tier or an impossible hop; mixed with HOSTILE_GOOD good tasks (default
# 2000) and a few good escalations. At the end every good task is answered
# exactly once on its tier, every bad record is in the DLQ once with its
# kascade-error code and its original bytes, and no daemon died (each
# still runs and exits 0 on SIGTERM; lib.sh fails on sanitizer reports).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

B=$KASCADE_BOOTSTRAP_SERVERS
GOOD=${HOSTILE_GOOD:-2000}
redis_port=${KASCADE_REDIS_URL##*:}
# A small message cap, so an oversize record stays under the broker's.
IT_X+=(-X "limits.max_message_bytes=65536")
it_kascade topics create >"$IT_DIR/topics.out"
for tier in local mid frontier; do
    it_sim "$tier" --confidence 0.95 --model "sim-$tier"
    IT_X+=(-X "tiers.$tier.providers.0.base_url=$SIM_URL/v1")
done
DAEMONS=()
for tier in local mid frontier; do
    it_daemon "worker-$tier" kascade-worker --tier "$tier"
    DAEMONS+=("$LAST_PID")
done
it_daemon router kascade-router
DAEMONS+=("$LAST_PID")

# The corpus: one file per kcat run (topic, content-type, null or not),
# records split by 0xff, key and value by 0xfe; expect.json says what
# each record must become. Redis gets the contexts the escalations need.
python3 - "$IT_DIR" "$GOOD" "$IT_PREFIX" >"$IT_DIR/redis.cmds" <<'PY'
import json, os, random, sys

out, n_good, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
random.seed(9)
TIER = {"classify_intent": "local", "extract": "local", "answer": "mid",
        "summarise": "mid", "review": "frontier"}
files = {}  # (topic, variant) -> [(key, value)]
expect = {"good": {}, "bad": {}}

def put(topic, variant, key, value):
    files.setdefault((topic, variant), []).append((key, value))

def good_task(i):
    t = list(TIER)[i % len(TIER)]
    task = {"id": "g-%d" % i, "type": t, "input": "good task %d" % i}
    if i % 3 == 0:
        task["tenant"] = ["acme", "team-9.x_y", "Z"][i % 9 // 3]
    if i % 11 == 0:
        task["messages"] = [{"role": "user", "content": "hi %d" % i}]
        del task["input"]
    return task, TIER[t]

def varint(n):
    b = bytearray()
    while True:
        c, n = n & 0x7F, n >> 7
        b.append(c | (0x80 if n else 0))
        if not n:
            return bytes(b)

def pbs(field, s):
    d = s.encode() if isinstance(s, str) else s
    return varint(field << 3 | 2) + varint(len(d)) + d

# Good tasks on the tasks topic: JSON, and every 20th in protobuf.
for i in range(n_good):
    task, tier = good_task(i)
    if i % 20 == 7:
        v = pbs(1, task["id"]) + pbs(2, task["type"]) + pbs(4, "pb %d" % i)
        put("tasks", "pb", task["id"], v)
    else:
        put("tasks", "json", task["id"], json.dumps(task).encode())
    expect["good"][task["id"]] = tier
# Good tasks straight on tier.local, some with odd kascade-hop headers.
for i in range(20):
    tid = "gl-%d" % i
    v = json.dumps({"id": tid, "type": "extract", "input": "x %d" % i})
    put("tier.local", "json" if i < 10 else "hopjunk", tid, v.encode())
    expect["good"][tid] = "local"

BIG = 70000  # over limits.max_message_bytes (65536)

def task_corpus():
    """(code, value) of bad tasks, for any topic that takes tasks."""
    T = '{"id":"b","type":"answer","input":"x"'
    deep = '{"id":"b","type":"answer","input":"x","output_schema":' + \
        '{"a":' * 40 + '{}' + '}' * 40 + '}'
    c = [
        ("decode", b"this is not json"),
        ("decode", b"[1,2,3]"),
        ("decode", b'{"id":"b","type":"answer","input":"trunc'),
        ("decode", b'{"id":"b","type":"answer","input":"x"} trailing'),
        ("too_large", deep.encode()),
        ("too_large", ('{"id":"b","type":"answer","input":' + "[" * 5000 +
                       "]" * 5000 + "}").encode()),
        ("invalid", b'{"id":"a","id":"b","type":"answer","input":"x"}'),
        ("invalid", (T + ',"metadata":{"k":"1","k":"2"}}').encode()),
        ("invalid", b'{"id":7,"type":"answer","input":"x"}'),
        ("invalid", b'{"id":"b","type":["answer"],"input":"x"}'),
        ("invalid", b'{"id":"b","type":"answer","input":{"x":1}}'),
        ("invalid", (T + ',"messages":"hi"}').encode()),
        ("invalid", (T + ',"hints":"fast"}').encode()),
        ("invalid", (T + ',"hints":{"max_cost_usd":"1"}}').encode()),
        ("invalid", (T + ',"metadata":["a"]}').encode()),
        ("invalid", (T + ',"reply_to":true}').encode()),
        ("invalid", (T + ',"surprise":1}').encode()),
        ("invalid", b'{"id":"b","type":"answer","input":"a\\u0000b"}'),
        ("invalid", b'{"id":"b\x00evil","type":"answer","input":"x"}'),
        ("invalid", b'{"id":"b","type":"answer","input":"a\x00b"}'),
        ("decode", b"\x00\x00\x00\x00"),
        ("invalid", b"{}"),
        ("invalid", b'{"type":"answer","input":"x"}'),
        ("invalid", b'{"id":"b","input":"x"}'),
        ("invalid", b'{"id":"b","type":"answer"}'),
        ("invalid", b'{"id":"","type":"answer","input":"x"}'),
        ("invalid", b'{"id":null,"type":"answer","input":"x"}'),
        ("invalid", (T + ',"tenant":""}').encode()),
        ("invalid", (T + ',"tenant":"acme:res"}').encode()),
        ("invalid", (T + ',"tenant":"' + "a" * 129 + '"}').encode()),
        ("invalid", (T + ',"tenant":"ac me"}').encode()),
        ("invalid", (T + ',"tenant":"-"}').encode()),
        ("invalid", (T + ',"tenant":"t\\u00ebn"}').encode()),
        ("invalid", (T + ',"tenant":5}').encode()),
        ("too_large", (T + ',"instructions":"' + "y" * BIG + '"}').encode()),
    ]
    return [(code, v, "json") for code, v in c]

def task_pb_corpus():
    full = pbs(1, "b-pb") + pbs(2, "answer") + pbs(4, "protobuf input")
    return [
        ("decode", full[:-3], "pb"),  # truncated
        ("decode", b"\x07\x07\x07", "pb"),  # wire type 7
        ("invalid", pbs(2, "answer") + pbs(4, "x"), "pb"),  # no id
        ("invalid", pbs(1, "b") + pbs(4, "x"), "pb"),  # no type
        ("invalid", pbs(1, "b") + pbs(2, "answer"), "pb"),  # no input
        ("invalid", full + pbs(3, "acme:res"), "pb"),  # bad tenant
        ("invalid", full + pbs(99, "x"), "pb"),  # unknown field
        ("invalid", pbs(1, b"b\x00evil") + pbs(2, "answer") + pbs(4, "x"),
         "pb"),  # a NUL byte in a string
        ("invalid", b"", "pb"),  # empty: a protobuf with no fields
    ]

def empties():
    return [("decode", b"", "json"), ("decode", None, "null")]

n = 0
def bad(topic, code, value, variant, detail=""):
    global n
    n += 1
    key = "bad-%s-%d" % (topic, n)
    put(topic, variant, key, value if value is not None else b"")
    expect["bad"][key] = {"code": code, "topic": topic, "detail": detail,
                          "value": None if value is None else value.hex()}

for topic in ("tasks", "tier.local"):
    for code, v, variant in task_corpus() + task_pb_corpus() + empties():
        bad(topic, code, v, variant)
# The router's own check: a tier that does not exist.
bad("tasks", "invalid", b'{"id":"b","type":"answer","input":"x",'
    b'"hints":{"min_tier":"no_such_tier"}}', "json")

# Escalations. The context key is derived: <prefix>ctx:<tenant or ->:<id>.
def ckey(tenant, tid):
    return "%sctx:%s:%s" % (prefix, tenant or "-", tid)

def ctx_doc(tid, tenant, attempts):
    task = {"id": tid, "type": "classify_intent", "input": "esc " + tid}
    if tenant:
        task["tenant"] = tenant
    return json.dumps({"task": task, "format": "json", "attempts": [
        {"tier": t, "model": "m", "hop": h, "output": "a-" + t,
         "confidence": 0.2, "confidence_source": "self_report",
         "decision": "escalate", "reason": "low_confidence", "cost_usd": 0,
         "latency_ms": 1, "input_tokens": 1, "output_tokens": 1}
        for t, h in attempts], "cost_so_far_usd": 0})

redis = []
def set_ctx(key, doc):
    redis.append(["SET", key, doc])

def esc(tid, tenant=None, frm="local", hop=0, **kw):
    e = {"id": tid, "from_tier": frm, "hop": hop, "reason": "low_confidence",
         "confidence": 0.2, "cost_so_far_usd": 0}
    if tenant is not None:
        e["tenant"] = tenant
    e.update(kw)
    return json.dumps(e).encode()

# Good escalations: from local to mid, answered there at hop 1.
for i in range(6):
    tid, tenant = "ge-%d" % i, ("acme" if i % 2 else None)
    set_ctx(ckey(tenant, tid), ctx_doc(tid, tenant, [("local", 0)]))
    kw = {"context_key": ckey(tenant, tid)} if i < 3 else {}
    put("escalations", "json", tid, esc(tid, tenant, **kw))
    expect["good"][tid] = "mid"

set_ctx(ckey("acme", "v-1"), ctx_doc("v-1", "acme", [("local", 0)]))
set_ctx(ckey(None, "v-2"), ctx_doc("v-2-other", None, [("local", 0)]))
set_ctx(ckey("globex", "v-3"), ctx_doc("v-3", "acme", [("local", 0)]))
set_ctx(ckey(None, "v-4"), "this is not a context")
set_ctx(ckey(None, "v-5"), ctx_doc("v-5", None, [("local", 0)]))
E = b'{"id":"x","from_tier":"local","hop":0'
NOKEY, FORGED, OTHER = "no such key", "field 'context_key'", "another task"
for code, v, variant, *detail in [
    # the issue's poison record: no context_key, and no context
    ("invalid", b'{"id":"x","from_tier":"local","hop":0}', "json", NOKEY),
    ("invalid", esc("nothing-here"), "json", NOKEY),
    # a forged context_key: another task's, a budget key, raw text
    ("invalid", esc("v-1", "acme", context_key=ckey(None, "ge-0")), "json",
     FORGED),
    ("invalid", esc("v-1", "acme", context_key=prefix + "budget:x"), "json",
     FORGED),
    ("invalid", esc("v-1", "acme", context_key="*"), "json", FORGED),
    ("invalid", esc("v-1", None), "json", NOKEY),  # the tenant is in the key
    ("invalid", esc("v-2"), "json", OTHER),  # the context holds another task
    ("invalid", esc("v-3", "globex"), "json", OTHER),  # another tenant's
    ("invalid", esc("v-4"), "json", "not a JSON object"),
    ("invalid", esc("v-5", hop=2), "json", "no attempt at hop 2"),
    ("invalid", esc("v-5", frm="mid"), "json", "no attempt at hop 0 on tier"),
    ("invalid", esc("v-5", frm="nope"), "json", "no tier named"),
    ("invalid", esc("v-5", hop=4294967295), "json", "no attempt at hop"),
    ("invalid", esc("v-5", hop=4294967296), "json", "field 'hop'"),
    ("invalid", esc("v-5", hop=-1), "json", "field 'hop'"),
    ("invalid", esc("v-5", hop="0"), "json", "field 'hop'"),
    ("invalid", esc("v-5", tenant="acme:res"), "json", "field 'tenant'"),
    ("invalid", esc("v-5", tenant=""), "json", "field 'tenant'"),
    ("invalid", esc("v-5", confidence=2), "json", "field 'confidence'"),
    ("invalid", esc("v-5", cost_so_far_usd=-1), "json", "cost_so_far_usd"),
    ("invalid", esc("v-5", context_key=7), "json", "field 'context_key'"),
    ("invalid", esc("v-5", surprise=1), "json", "field 'surprise'"),
    ("invalid", b'{"from_tier":"local","hop":0}', "json", "field 'id'"),
    ("invalid", b'{"id":"x","hop":0}', "json", "field 'from_tier'"),
    ("invalid", b'{"id":"x","from_tier":"local"}', "json", "field 'hop'"),
    ("invalid", b'{"id":"","from_tier":"local","hop":0}', "json",
     "field 'id'"),
    ("invalid", b'{"id":"x","from_tier":null,"hop":0}', "json",
     "field 'from_tier'"),
    ("invalid", E + b',"id":"y"}', "json", "given twice"),
    ("invalid", E + b',"reason":"a\\u0000b"}', "json", "NUL"),
    ("invalid", E + b',"reason":"a\x00b"}', "json", "NUL"),
    ("decode", b"not an escalation", "json"),
    ("decode", E, "json"),  # truncated
    ("too_large", E + b',"reason":' + b"[" * 5000 + b"]" * 5000 + b"}",
     "json"),
    ("too_large", E + b',"reason":"' + b"r" * BIG + b'"}', "json"),
    ("decode", (pbs(1, "x") + pbs(2, "local"))[:-2], "pb"),
    ("invalid", pbs(1, "x") + pbs(2, "local"), "pb"),  # no hop
    ("invalid", pbs(1, "x") + pbs(2, "local") + b"\x18\x00" +
     pbs(4, b"low\x00"), "pb", "NUL"),
    ("invalid", b"", "pb"),  # empty: no id, no hop
] + empties():
    bad("escalations", code, v, variant, *detail)

for (topic, variant), recs in files.items():
    random.shuffle(recs)
    with open(os.path.join(out, "%s.%s.bin" % (topic, variant)), "wb") as f:
        for key, value in recs:
            assert b"\xff" not in value and b"\xfe" not in value, key
            f.write(key.encode() + b"\xfe" + value + b"\xff")
with open(os.path.join(out, "expect.json"), "w") as f:
    json.dump(expect, f)
for cmd in redis:
    print(json.dumps(cmd))
PY
python3 -c '
import json, subprocess, sys
for line in open(sys.argv[1]):
    subprocess.run(["redis-cli", "-p", sys.argv[2], *json.loads(line)],
                   check=True, capture_output=True)' "$IT_DIR/redis.cmds" "$redis_port"

produce() { # produce FILE TOPIC-SUFFIX [kcat args...]
    kcat -b "$B" -P -t "$IT_PREFIX$2" -K '\xfe' -D '\xff' "${@:3}" -l "$1"
}
PB=(-H "content-type=application/x-protobuf")
for f in "$IT_DIR"/*.bin; do
    name=$(basename "$f" .bin)
    topic=${name%.*}
    case ${name##*.} in
    json) produce "$f" "$topic" ;;
    pb) produce "$f" "$topic" "${PB[@]}" ;;
    null) produce "$f" "$topic" -Z ;;
    hopjunk) produce "$f" "$topic" -H "kascade-hop=banana" ;;
    esac
done
n_good=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["good"]))' "$IT_DIR/expect.json")
n_bad=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["bad"]))' "$IT_DIR/expect.json")
it_log "produced $n_good good and $n_bad bad records"

# dump TOPIC-SUFFIX: key, headers and raw value (hex) of each record.
dump() {
    python3 - "$B" "$IT_PREFIX$1" <<'PY'
import json, struct, subprocess, sys
fmt = r"%R%s%k\x01%h\x02\n"
raw = subprocess.run(["kcat", "-b", sys.argv[1], "-C", "-t", sys.argv[2],
                      "-o", "beginning", "-e", "-q", "-f", fmt],
                     check=True, capture_output=True).stdout
i = 0
while i < len(raw):
    n = struct.unpack(">i", raw[i:i + 4])[0]
    i += 4
    value = raw[i:i + max(n, 0)] if n >= 0 else None
    i += max(n, 0)
    end = raw.index(b"\x02\n", i)
    k, h = raw[i:end].decode("utf-8", "replace").split("\x01", 1)
    i = end + 2
    hdr = {}
    for kv in h.split(","):
        if "=" in kv:
            a, b = kv.split("=", 1)
            hdr.setdefault(a, b)
    print(json.dumps({"key": k, "headers": hdr,
                      "value": None if value is None else value.hex()}))
PY
}
# (kafkatool.py reads values as JSON, which the deep-nesting records are
# too deep for: the DLQ is counted from the raw dump.)
wait_dlq() { # wait_dlq N SECONDS
    local deadline=$((SECONDS + $2)) n=0
    while [ $SECONDS -lt $deadline ]; do
        n=$(dump dlq | wc -l)
        [ "$n" -ge "$1" ] && return 0
        sleep 1
    done
    it_log "dlq has $n message(s), expected $1"
    return 1
}
it_check "every good task has a result" it_wait_count results "$n_good" 150
it_check "every bad record reached the DLQ" wait_dlq "$n_bad" 60
sleep 3 # for anything answered or dead-lettered twice

dump dlq >"$IT_DIR/dlq.jsonl"
it_read results >"$IT_DIR/results.jsonl"

check_good() {
    python3 - "$IT_DIR/expect.json" "$IT_DIR/results.jsonl" <<'PY'
import collections, json, sys
want = json.load(open(sys.argv[1]))["good"]
got = collections.defaultdict(list)
for line in open(sys.argv[2]):
    v = json.loads(line)["value"]
    if isinstance(v, dict):
        got[v.get("id")].append(v)
bad = 0
for tid, tier in want.items():
    r = got.get(tid, [])
    if len(r) != 1 or r[0].get("tier") != tier or r[0].get("status") != "ok":
        bad += 1
        if bad <= 10:
            print("%s: want one ok result on %s, got %s" % (tid, tier, r))
extra = set(got) - set(want)
if extra:
    print("results for ids that are not good tasks: %s" % sorted(extra)[:10])
sys.exit(1 if bad or extra else 0)
PY
}
check_bad() {
    python3 - "$IT_DIR/expect.json" "$IT_DIR/dlq.jsonl" <<'PY'
import collections, json, sys
want = json.load(open(sys.argv[1]))["bad"]
got = collections.defaultdict(list)
for line in open(sys.argv[2]):
    r = json.loads(line)
    got[r["key"]].append(r)
bad = 0
for key, w in want.items():
    r = got.get(key, [])
    why = None
    if len(r) != 1:
        why = "%d DLQ records" % len(r)
    elif r[0]["headers"].get("kascade-error") != w["code"]:
        why = "code %s, want %s (%s)" % (r[0]["headers"].get("kascade-error"),
                                         w["code"], r[0]["headers"])
    elif not r[0]["headers"].get("kascade-error-detail"):
        why = "no kascade-error-detail"
    elif w["detail"] not in r[0]["headers"]["kascade-error-detail"]:
        why = "detail %r lacks %r" % (r[0]["headers"]["kascade-error-detail"],
                                      w["detail"])
    elif r[0]["value"] != w["value"] and not (
            w["value"] is None and r[0]["value"] in (None, "")):
        why = "value changed"
    elif not r[0]["headers"].get("kascade-source"):
        why = "no kascade-source"
    if why:
        bad += 1
        v = bytes.fromhex(w["value"] or "")[:80]
        print("%s (%s, %r): %s" % (key, w["topic"], v, why))
extra = set(got) - set(want)
if extra:
    print("dead letters that are not bad records: %s" % sorted(extra)[:10])
sys.exit(1 if bad or extra else 0)
PY
}
it_check "every good task answered exactly once, ok, on its tier" check_good
it_check "every bad record dead-lettered once, with its code and bytes" check_bad
alive() {
    local pid
    for pid in "${DAEMONS[@]}"; do
        kill -0 "$pid" 2>/dev/null || { it_log "pid $pid is gone"; return 1; }
    done
}
it_check "the router and the three workers never died" alive
for pid in "${DAEMONS[@]}"; do
    it_check "daemon $pid exits 0 on SIGTERM" it_stop "$pid"
done
