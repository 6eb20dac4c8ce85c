#!/usr/bin/env bash
# The model simulator alone, over HTTP: latency distributions (the drawn
# delay is in X-Modelsim-Delay-Ms, so the distribution is checked without
# timing it, and the same seed gives the same draws), --fault-schedule by
# request number and by time, per-prompt confidence with --escalate-below,
# replay of the recorded GSM8K answers (checked against Python's csv
# module), and flags that must be refused. No Kafka needed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DATA="$KS_ROOT/bench/data/routellm-gsm8k/gsm8k_responses.csv"

# py SCRIPT ARGS...: the checks below are Python (stdlib only).
py() { python3 - "$@"; }

# --- latency distributions ---------------------------------------------
latency_check() { # latency_check URL DIST MEDIAN P99 OUTFILE
    py "$@" <<'PY'
import json, sys, threading, urllib.request
url, dist, med, p99, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
delays = {}
def one(i):
    body = json.dumps({"messages": [{"role": "user", "content": "q %d" % i}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        d = json.load(r)
        delays[d["id"]] = int(r.headers["X-Modelsim-Delay-Ms"])
ts = [threading.Thread(target=one, args=(i,)) for i in range(400)]
[t.start() for t in ts]
[t.join() for t in ts]
v = sorted(delays.values())
json.dump(delays, open(out, "w"), sort_keys=True)
n = len(v)
got_med, got_p99 = v[n // 2], v[int(n * 0.99)]
print("%s: n=%d min=%d median=%d p99=%d max=%d" % (dist, n, v[0], got_med, got_p99, v[-1]), file=sys.stderr)
bad = []
if n != 400:
    bad.append("%d answers" % n)
if not (0.7 * med <= got_med <= 1.3 * med):
    bad.append("median %d, want about %d" % (got_med, med))
if not (0.6 * p99 <= got_p99 <= 1.6 * p99):
    bad.append("p99 %d, want about %d" % (got_p99, p99))
if dist == "uniform":
    w = (p99 - med) / 0.49
    if v[0] < med - w / 2 - 1 or v[-1] > med + w / 2 + 1:
        bad.append("outside [%g, %g]" % (med - w / 2, med + w / 2))
if dist == "lognormal" and not v[-1] > p99:
    bad.append("no tail above p99 (max %d)" % v[-1])
print("; ".join(bad)) if bad else None
sys.exit(1 if bad else 0)
PY
}
it_sim lognormal --latency-dist lognormal --latency-ms 20 --latency-p99-ms 120 --seed 7
it_check "lognormal latency: median 20 ms, p99 120 ms" \
    latency_check "$SIM_URL" lognormal 20 120 "$IT_DIR/lognormal-1.json"
it_sim lognormal2 --latency-dist lognormal --latency-ms 20 --latency-p99-ms 120 --seed 7
latency_check "$SIM_URL" lognormal 20 120 "$IT_DIR/lognormal-2.json" || true
it_check "the same seed draws the same latencies" \
    cmp -s "$IT_DIR/lognormal-1.json" "$IT_DIR/lognormal-2.json"
it_sim uniform --latency-dist uniform --latency-ms 30 --latency-p99-ms 50 --seed 3
it_check "uniform latency: median 30 ms, p99 50 ms, bounded" \
    latency_check "$SIM_URL" uniform 30 50 "$IT_DIR/uniform.json"
timed() { # timed URL MIN_MS: one request takes at least MIN_MS
    py "$@" <<'PY'
import json, sys, time, urllib.request
t = time.monotonic()
body = json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode()
with urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/v1/chat/completions", body)) as r:
    d = int(r.headers["X-Modelsim-Delay-Ms"])
ms = (time.monotonic() - t) * 1000
sys.exit(0 if ms >= d >= int(sys.argv[2]) else 1)
PY
}
it_sim slow --latency-dist uniform --latency-ms 300 --latency-p99-ms 350
it_check "a reply is held for its drawn delay" timed "$SIM_URL" 200

# --- fault schedule ----------------------------------------------------
statuses() { # statuses URL N: the HTTP status of N sequential requests
    local i
    for ((i = 0; i < $2; i++)); do
        curl -s -o "$IT_DIR/body.$i" -w '%{http_code} ' --max-time 5 \
            "$1/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}]}' || true
    done
}
body_json() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }
it_sim sched --fault-schedule 0-3:500,3-5:429,5-6:malformed,6-7:reset,7-8:503,8-:ok --fail 500:1
got=$(statuses "$SIM_URL" 11)
it_log "scheduled statuses: $got"
it_check "schedule by request number: 500 x3, 429 x2, malformed, reset, 503, then ok" \
    test "$got" = "500 500 500 429 429 200 000 503 200 200 200 "
it_check "the scheduled malformed body is not JSON" eval '! body_json "$IT_DIR/body.5"'
it_check "and the recovered answers are" body_json "$IT_DIR/body.10"
stats_ok() { # stats_ok URL PYTHON-EXPR over s (the /stats JSON)
    curl -sf "$1/stats" | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($2) else 1)"
}
it_check "/stats counts each scheduled fate" stats_ok "$SIM_URL" \
    's["requests"]==11 and s["ok"]==3 and s["errors"]["500"]==3 and s["errors"]["429"]==2 and s["errors"]["malformed"]==1 and s["errors"]["reset"]==1 and s["errors"]["503"]==1'
it_sim hang --fault-schedule 0-1:hang --hang-ms 300
got=$(statuses "$SIM_URL" 2)
it_check "a scheduled hang drops the connection after --hang-ms, then answers ($got)" \
    test "$got" = "000 200 "
it_check "/stats counts the hang" stats_ok "$SIM_URL" 's["errors"]["hang"]==1 and s["ok"]==1'
it_sim timesched --fault-schedule 0s-2s:503
first=$(statuses "$SIM_URL" 1)
sleep 2.2
later=$(statuses "$SIM_URL" 2)
it_check "schedule by time: 503 for 2 s, then answers ($first/$later)" \
    test "$first/$later" = "503 /200 200 "

# --- per-prompt confidence and escalation --------------------------------
conf_check() { # conf_check URL
    py "$@" <<'PY'
import json, math, sys, urllib.request
url = sys.argv[1]
def ask(text, fmt=True):
    req = {"messages": [{"role": "user", "content": text}], "logprobs": True}
    if fmt:
        req["response_format"] = {"type": "json_object"}
    r = urllib.request.urlopen(urllib.request.Request(
        url + "/v1/chat/completions", json.dumps(req).encode()))
    return json.load(r)["choices"][0]
bad, confs, esc = [], [], 0
for i in range(60):
    c = ask("ticket %d: my order is late" % i)
    body = json.loads(c["message"]["content"])
    conf = body["confidence"]
    lps = [t["logprob"] for t in c["logprobs"]["content"]]
    mean = math.exp(sum(lps) / len(lps))
    confs.append(conf)
    if not 0.2 <= conf <= 0.9:
        bad.append("confidence %r outside [0.2, 0.9]" % conf)
    if abs(mean - max(conf, 0.001)) > 1e-6:
        bad.append("logprobs give %.4f, JSON says %r" % (mean, conf))
    if conf < 0.4:
        esc += 1
        if body.get("escalate") is not True or "answer" in body:
            bad.append("confidence %r but no escalation: %r" % (conf, body))
    elif "escalate" in body or "answer" not in body:
        bad.append("confidence %r but %r" % (conf, body))
    again = json.loads(ask("ticket %d: my order is late" % i)["message"]["content"])
    if again["confidence"] != conf:
        bad.append("same prompt, confidence %r then %r" % (conf, again["confidence"]))
# Without response_format the content is plain text; logprobs still carry
# the prompt's confidence.
i = next(i for i, c in enumerate(confs) if c >= 0.4)
plain = ask("ticket %d: my order is late" % i, fmt=False)
lps = [t["logprob"] for t in plain["logprobs"]["content"]]
if plain["message"]["content"].startswith("{") or \
        abs(math.exp(sum(lps) / len(lps)) - confs[i]) > 1e-6:
    bad.append("plain answer %r" % plain["message"]["content"])
if not (min(confs) < 0.4 and max(confs) > 0.7):
    bad.append("no mix: min %r max %r" % (min(confs), max(confs)))
print("%d of 60 escalated; confidence %.3f..%.3f" % (esc, min(confs), max(confs)), file=sys.stderr)
print(esc)
print("; ".join(bad[:5]), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
it_sim conf --confidence-dist 0.2:0.9 --escalate-below 0.4
it_check "confidence per prompt in [0.2, 0.9], stable, in JSON and logprobs; escalate below 0.4" \
    conf_check "$SIM_URL" >"$IT_DIR/escalated.txt"
esc=$(cat "$IT_DIR/escalated.txt")
it_check "/stats counts the escalated answers ($esc prompts, asked twice)" \
    stats_ok "$SIM_URL" "s['escalated'] == 2 * $esc and $esc > 0"

# --- replay ------------------------------------------------------------
replay_check() { # replay_check URL CSV COLUMN
    py "$@" <<'PY'
import csv, json, sys, threading, urllib.request
url, path, col = sys.argv[1:4]
rows = list(csv.DictReader(open(path, newline="", encoding="utf-8")))
want = {}
for r in rows:
    want.setdefault(r["prompt"].strip(), r[col + "_response"])
bad = []
lock = threading.Lock()
def ask(prompt, expect, pad):
    req = {"messages": [{"role": "system", "content": "solve it"},
                        {"role": "user", "content": pad + prompt + pad}]}
    r = urllib.request.urlopen(urllib.request.Request(
        url + "/v1/chat/completions", json.dumps(req).encode()), timeout=30)
    got = json.load(r)["choices"][0]["message"]["content"]
    if got != expect:
        with lock:
            bad.append("prompt %r: got %r" % (prompt[:40], got[:60]))
items = list(want.items())
for k in range(0, len(items), 64):
    ts = [threading.Thread(target=ask, args=(p, a, " \n" if i % 2 else ""))
          for i, (p, a) in enumerate(items[k:k + 64])]
    [t.start() for t in ts]
    [t.join() for t in ts]
print("%d prompts replayed, %d wrong" % (len(items), len(bad)), file=sys.stderr)
print(len(items))
print("; ".join(bad[:3]), file=sys.stderr)
sys.exit(1 if bad or len(items) < 1000 else 0)
PY
}
miss_check() { # miss_check URL
    curl -sf "$1/v1/chat/completions" \
        -d '{"messages":[{"role":"user","content":"not a GSM8K question"}]}' |
        python3 -c 'import json,sys; c=json.load(sys.stdin)["choices"][0]["message"]["content"]; sys.exit(0 if c.startswith("[modelsim replay: no recorded answer] ") else 1)'
}
if [ -r "$DATA" ]; then
    for model in mistralai/Mixtral-8x7B-Instruct-v0.1 gpt-4-1106-preview; do
        it_sim "replay-${model##*/}" --replay "$DATA" --replay-model "$model"
        it_check "replay $model: every recorded answer, byte for byte" \
            replay_check "$SIM_URL" "$DATA" "$model" >"$IT_DIR/replayed.txt"
        n=$(cat "$IT_DIR/replayed.txt")
        it_check "an unknown prompt gets the marked fallback" miss_check "$SIM_URL"
        it_check "/stats: $n replay hits, 1 miss" stats_ok "$SIM_URL" \
            "s['replay_hit'] == $n and s['replay_miss'] == 1 and s['ok'] == $n + 1"
    done
else
    it_check "the GSM8K data is in the checkout ($DATA)" false
fi
# A small CSV with the awkward cases: CRLF, "" escapes, a comma and a line
# break inside quotes, a repeated prompt (first row wins), no final newline.
printf 'prompt,m_response,other\r\n"a, ""quoted""\nprompt",first,x\r\nplain,"two\r\nlines",y\r\n"a, ""quoted""\nprompt",second,z\r\nlast,"end ""q""",w' \
    >"$IT_DIR/small.csv"
small_check() {
    py "$1" <<'PY'
import json, sys, urllib.request
def ask(p):
    req = {"messages": [{"role": "user", "content": p}]}
    r = urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/v1/chat/completions", json.dumps(req).encode()))
    return json.load(r)["choices"][0]["message"]["content"]
got = [ask('a, "quoted"\nprompt'), ask("plain"), ask(" last "), ask("m_response")]
want = ["first", "two\r\nlines", 'end "q"', "[modelsim replay: no recorded answer] "]
ok = got[:3] == want[:3] and got[3].startswith(want[3])
print(got, file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
it_sim small --replay "$IT_DIR/small.csv" --replay-model m
it_check "CSV edge cases: quotes, CRLF, line breaks in fields, repeats" small_check "$SIM_URL"

# --- flags that must be refused (exit status 2) ---------------------------
refused() { # refused ARGS...: modelsim exits 2 at start
    local rc=0
    timeout 10 "$KS_BIN/kascade-modelsim" --port 0 "$@" >/dev/null 2>>"$IT_DIR/refused.log" || rc=$?
    [ "$rc" = 2 ]
}
it_check "refused: p99 below the median" refused --latency-dist lognormal --latency-ms 50 --latency-p99-ms 10
it_check "refused: p99 with a fixed latency" refused --latency-ms 50 --latency-p99-ms 100
it_check "refused: unknown distribution" refused --latency-dist gamma
it_check "refused: empty schedule window" refused --fault-schedule 5-3:500
it_check "refused: mixed units in a window" refused --fault-schedule 0-5s:500
it_check "refused: unknown scheduled kind" refused --fault-schedule 0-5:418
it_check "refused: --escalate-below without a confidence" refused --escalate-below 0.5
it_check "refused: bad confidence range" refused --confidence-dist 0.9:0.2
it_check "refused: --replay without --replay-model" refused --replay "$IT_DIR/small.csv"
it_check "refused: unknown replay column" refused --replay "$IT_DIR/small.csv" --replay-model nope
it_check "refused: missing replay file" refused --replay "$IT_DIR/none.csv" --replay-model m
printf 'prompt,m\n"open quote,x\n' >"$IT_DIR/bad.csv"
it_check "refused: unterminated quote in the CSV" refused --replay "$IT_DIR/bad.csv" --replay-model m
