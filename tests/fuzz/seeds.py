#!/usr/bin/env python3
"""tests/fuzz/seeds.py - writes the seed corpus tests/fuzz/corpus/<name>/.

Valid and near-valid inputs per target, taken from deploy/examples, the
config fixtures, docs/design.md and the unit tests; the protobuf seeds are
the same envelopes encoded by hand below (no protobuf module needed). The
model-file seeds (lr/) are written by `kascade train` and committed as they
are; this script leaves them alone. Run from anywhere; it rewrites the
other directories."""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from kafkatool import varint  # noqa: E402
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def field(num, value):
    """One protobuf field: str/bytes (length-delimited), bool/int (varint),
    float (double)."""
    if isinstance(value, bool):
        return varint(num << 3) + varint(int(value))
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, float):
        return varint(num << 3 | 1) + struct.pack("<d", value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def msg(*fields):
    return b"".join(field(n, v) for n, v in fields)


DICT_WORDS = set()


def collect(node):
    """Adds the keys and short string values of a JSON seed to the dict."""
    if isinstance(node, dict):
        for k, v in node.items():
            DICT_WORDS.add(json.dumps(k))
            DICT_WORDS.add(k)
            collect(v)
    elif isinstance(node, list):
        for v in node:
            collect(v)
    elif isinstance(node, str) and len(node) <= 24:
        DICT_WORDS.add(json.dumps(node))


def write(name, files):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    for i, data in enumerate(files):
        if isinstance(data, str):
            data = data.encode()
        for part in [data] + data.split(b"\n"):
            try:
                collect(json.loads(part))
            except ValueError:
                pass
        with open(os.path.join(d, "seed-%02d" % i), "wb") as fp:
            fp.write(data)


def read(*parts):
    with open(os.path.join(ROOT, *parts), "rb") as fp:
        return fp.read()


tasks = read("deploy", "examples", "tasks.jsonl").splitlines()[:3]
task_full = json.dumps({
    "id": "t-42", "type": "classify_intent", "tenant": "acme",
    "input": "I was charged twice",
    "messages": [{"role": "system", "content": "be brief"},
                 {"role": "user", "content": "hello"}],
    "instructions": "Answer with one word.",
    "output_schema": {"type": "object", "required": ["label"],
                      "properties": {"label": {"type": "string",
                                               "enum": ["a", "b"]}}},
    "hints": {"min_tier": "local", "max_tier": "frontier",
              "local_only": False, "risk": "high", "latency": "batch",
              "max_cost_usd": 0.25, "max_output_tokens": 64},
    "reply_to": "replies.acme", "metadata": {"k": "v", "trace": "abc"}})
write("task_json", tasks + [
    task_full,
    '{"id":"x","type":"t","input":""}',
    '{"id":"x","type":"t","messages":[{"role":"user","content":"\\u00e9"}]}',
    '{"id":"x","type":"t","input":"a","hints":{"risk":"medium"}}',
    '{"id":"x","type":"t","input":"a","output_schema":{"type":"array"}}',
    '{"id":"x","id":"y","type":"t","input":"a"}',
])

hints = msg((1, "local"), (2, "frontier"), (3, True), (4, "high"),
            (5, "interactive"), (6, 0.25), (7, 64))
write("task_pb", [
    msg((1, "t-1"), (2, "classify_intent"), (4, "hello")),
    msg((1, "t-42"), (2, "classify_intent"), (3, "acme"),
        (4, "I was charged twice"),
        (5, msg((1, "system"), (2, "be brief"))),
        (5, msg((1, "user"), (2, "hello"))),
        (6, "Answer with one word."),
        (7, '{"type":"object","required":["label"]}'),
        (8, hints), (9, "replies.acme"),
        (10, msg((1, "k"), (2, "v")))),
    msg((1, "x"), (2, "t")),
    msg((1, "x"), (2, "t"), (4, "a"), (8, msg((4, "medium")))),
    msg((1, "x"), (2, "t"), (4, "a"))[:-1],
])

result_json = ('{"id": "t-42", "type": "classify_intent", "tenant": "acme",'
               ' "status": "ok", "output": "billing", "tier": "local",'
               ' "model": "smollm2-135m", "confidence": 0.93,'
               ' "confidence_source": "logprob", "cost_usd": 0.000012,'
               ' "usage": {"input_tokens": 41, "output_tokens": 3},'
               ' "latency_ms": 182, "path": [{"tier": "local", "model": "m",'
               ' "confidence": 0.41, "decision": "escalate",'
               ' "reason": "low_confidence", "cost_usd": 0.00001,'
               ' "latency_ms": 120}], "error": null,'
               ' "metadata": {"any": "string"}}')
attempt = msg((1, "local"), (2, "m"), (3, 0.41), (4, "escalate"),
              (5, "low_confidence"), (6, 0.00001), (7, 120))
write("result", [
    result_json,
    '{"id":"t","status":"failed","output":null,"confidence":null,'
    '"error":"boom"}',
    '{"id":"t","status":"maybe"}',
    msg((1, "t-42"), (2, "classify_intent"), (3, "acme"), (4, "ok"),
        (5, "billing"), (6, "local"), (7, "smollm2-135m"), (8, 0.93),
        (9, "logprob"), (10, 0.000012), (11, msg((1, 41), (2, 3))),
        (12, 182), (13, attempt), (15, msg((1, "any"), (2, "string")))),
    msg((1, "t"), (4, "failed"), (14, "boom")),
])

# The parser against cJSON (fuzz_jparse.c): envelopes and the edges of
# the grammar (numbers, escapes, surrogates, whitespace, nesting).
write("jparse", tasks[:1] + [
    task_full, result_json,
    '[-0, 1e400, 01, 1., -.5, 1e+, 0x1, 1E-2]',
    '["\\u0000", "\\uD83D\\uDE00", "\\uDE00", "\\uD800x", "\\u00zz"]',
    '{"a":"\\b\\f\\n\\r\\t\\/\\\\\\"", "a": [true, false, null]}',
    b'\xef\xbb\xbf {"k": 1}\r\n',
    '[[[[[[[[[[1]]]]]]]]]]',
    '{"a" : 1 , "b":[ ] , "c":{ }}  x',
    '"unterminated \\',
])

write("escalation", [
    '{"id": "t-42", "from_tier": "local", "hop": 0,'
    ' "reason": "low_confidence", "confidence": 0.41,'
    ' "context_key": "kascade:ctx:t-42", "cost_so_far_usd": 0.00001}',
    '{"id":"x","from_tier":"local","hop":0}',
    '{"id":"x","from_tier":"local","hop":-1}',
    msg((1, "t-42"), (2, "local"), (3, 1), (4, "low_confidence"),
        (5, 0.41), (6, "kascade:ctx:t-42"), (7, 0.00001)),
    msg((1, "x"), (2, "local")),
])

write("openai", [
    '{"id":"c1","object":"chat.completion","choices":[{"index":0,'
    '"message":{"role":"assistant","content":"billing"},'
    '"logprobs":{"content":[{"token":"bill","logprob":-0.1},'
    '{"token":"ing","logprob":-0.02}]},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":41,"completion_tokens":3}}',
    '{"choices":[{"message":{"content":"x"}}]}',
    '{"choices":[{"message":{"content":null}}]}',
    '{"choices":[]}',
    '{"error":{"message":"bad","type":"invalid_request_error"}}',
])

write("anthropic", [
    '{"id":"msg_1","type":"message","role":"assistant",'
    '"content":[{"type":"text","text":"bill"},'
    '{"type":"tool_use","id":"x","name":"n","input":{}},'
    '{"type":"text","text":"ing"}],"stop_reason":"max_tokens",'
    '"usage":{"input_tokens":41,"output_tokens":3}}',
    '{"content":[{"type":"text","text":"12345678"}]}',
    '{"content":[]}',
    '{"type":"error","error":{"type":"rate_limit_error","message":"x"}}',
])

cfg = [read("deploy", "examples", "kascade.json")]
for name in ("valid.json", "minimal.json", "duplicate_tier.json",
             "wrong_type.json", "provider_kind_unknown.json"):
    cfg.append(read("tests", "fixtures", "config", name))
for name in ("config_full.json",):
    cfg.append(read("tests", "fixtures", "routing", name))
write("config", cfg)

# The schema checker: a schema, a newline, an answer.
label = ('{"type":"object","required":["label"],"additionalProperties":false,'
         '"properties":{"label":{"type":"string","enum":["a","b"]},'
         '"n":{"type":"integer","minimum":0,"maximum":9},'
         '"tags":{"type":"array","items":{"type":"string","minLength":1,'
         '"maxLength":8}}}}')
write("schema", [
    label + '\n{"label":"a","n":3,"tags":["x","y"]}',
    label + '\n{"label":"c"}',
    label + '\n{"n":1.5}',
    '{"type":["string","null"]}\nnull',
    '{"type":"array","items":{"type":"array","items":{"type":"number"}}}'
    '\n[[1,2],[3]]',
])

# One libFuzzer dictionary for the JSON targets: JSON's own tokens and every
# key and short string value of the JSON seeds above, quoted.
TOKENS = ["{", "}", "[", "]", ":", ",", "true", "false", "null", "1e999",
          "-0", "0.5"]
with open(os.path.join(ROOT, "tests", "fuzz", "json.dict"), "w") as fp:
    fp.write("# written by tests/fuzz/seeds.py\n")
    for w in TOKENS + sorted(DICT_WORDS):
        if all(32 <= ord(c) < 127 and c != "\\" for c in w):
            fp.write('"%s"\n' % w.replace('"', '\\"'))
