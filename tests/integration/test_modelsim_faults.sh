#!/usr/bin/env bash
# The model simulator's faults after processing and its billing ledger
# (bench/modelsim/README.md, "Faults" and "Billing"): each of timeout,
# truncated, huge, rst and reset reads the request, bills it and then
# fails on the way back, as a client sees it (curl's exit status); a
# refused request (429, 500, 503) and a hang are not billed; /stats
# "billed" and "models" count the billed calls and their tokens per model
# and sum to each other; /stats/reset zeroes them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BODY='{"model":"m-%s","messages":[{"role":"user","content":"Great product, really!"}]}'
# curl_kind KIND: one request to a simulator that meets every request with
# KIND; curl's exit status and the HTTP code go to $IT_DIR/curl-KIND.
# (Not in a $(...): it_sim must record the simulator's pid in this shell.)
curl_kind() {
    it_sim "$1" --fail "$1:1" --latency-ms 20 --hang-ms 1500 --huge-bytes 3000000
    local url=$SIM_URL rc=0 code
    code=$(curl -s -m 1 -o "$IT_DIR/body-$1" -w '%{http_code}' \
        "$url/v1/chat/completions" -H 'Content-Type: application/json' \
        -d "$(printf "$BODY" "$1")") || rc=$?
    curl -sf "$url/stats" >"$IT_DIR/stats-$1.json"
    echo "$rc $code" >"$IT_DIR/curl-$1"
}
stat() { # stat KIND PYTHON-EXPR over the /stats JSON s
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$IT_DIR/stats-$1.json" "$2"
}

for k in timeout truncated huge rst reset; do curl_kind $k; done
it_check "timeout: no answer within the client's timeout (curl 28)" \
    test "$(cat "$IT_DIR/curl-timeout")" = "28 000"
it_check "truncated: a 200 cut short of its Content-Length (curl 18)" \
    test "$(cat "$IT_DIR/curl-truncated")" = "18 200"
it_check "huge: a 200 of --huge-bytes, chunked" \
    test "$(cat "$IT_DIR/curl-huge")" = "0 200"
it_check "huge: the body has the size asked for" \
    test "$(wc -c <"$IT_DIR/body-huge")" -eq 3000000
it_check "rst: the connection reset by peer (curl 56)" \
    test "$(cat "$IT_DIR/curl-rst")" = "56 000"
it_check "reset: closed without a response (curl 52)" \
    test "$(cat "$IT_DIR/curl-reset")" = "52 000"
for k in timeout truncated huge rst reset; do
    it_check "$k: counted under its kind and billed with the answer's usage" \
        test "$(stat $k '(s["errors"]["'$k'"], s["billed"]["calls"], s["billed"]["input_tokens"] > 0, s["billed"]["output_tokens"] > 0)')" = "(1, 1, True, True)"
    it_check "$k: billed to the request's model, summing to the total" \
        test "$(stat $k 's["models"]["m-'$k'"] == s["billed"]')" = True
done
for k in 429 500 503 hang; do
    curl_kind $k
    it_check "$k: not billed" test "$(stat $k 's["billed"]["calls"], s["models"]')" = "(0, {})"
done

# Normal answers: billed with the usage in the reply, per model.
it_sim ok
for m in a b b; do
    curl -sf "$SIM_URL/v1/chat/completions" -H 'Content-Type: application/json' \
        -d "$(printf "$BODY" "$m")" >>"$IT_DIR/ok.jsonl"
    echo >>"$IT_DIR/ok.jsonl"
done
curl -sf "$SIM_URL/stats" >"$IT_DIR/stats-ok.json"
usage_in=$(python3 -c 'import json,sys; print(sum(json.loads(l)["usage"]["prompt_tokens"] for l in open(sys.argv[1]) if l.strip()))' "$IT_DIR/ok.jsonl")
it_check "ok: billed input tokens are the replies' prompt_tokens ($usage_in)" \
    test "$(stat ok 's["billed"]["input_tokens"]')" = "$usage_in"
it_check "ok: per model calls" \
    test "$(stat ok 's["models"]["m-a"]["calls"], s["models"]["m-b"]["calls"]')" = "(1, 2)"
curl -sf -X POST "$SIM_URL/stats/reset" >"$IT_DIR/stats-ok.json"
it_check "/stats/reset zeroes the bill" \
    test "$(stat ok 's["billed"]["calls"], s["models"]')" = "(0, {})"
