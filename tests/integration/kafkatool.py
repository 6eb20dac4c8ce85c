#!/usr/bin/env python3
"""Helpers for the integration tests: make task files, read topics through
kcat (an outside client, so the tests do not trust kascade's own reader),
and decode the few protobuf fields the checks need.

Usage:
  kafkatool.py gen OUT_DIR N          write tasks for the reconcile test
  kafkatool.py read BOOTSTRAP TOPIC   print one JSON line per message
"""
import json
import os
import struct
import subprocess
import sys

TYPES = {  # task type -> tier it must land on (deploy/examples/kascade.json)
    "classify_intent": "local",
    "extract": "local",
    "summarise": "mid",
    "answer": "mid",
    "review": "frontier",
    "brand_new_type": "mid",  # unknown type -> routing.default_tier
}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_string(field, s):
    data = s.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def pb_fields(buf):
    """Yields (field, value) of a protobuf message; strings as bytes."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            val, i = read_varint(buf, i)
        elif wt == 1:
            val = struct.unpack("<d", buf[i:i + 8])[0]
            i += 8
        elif wt == 2:
            n, i = read_varint(buf, i)
            val = buf[i:i + n]
            i += n
        elif wt == 5:
            val = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield field, val


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def gen(out_dir, n):
    """Good JSON tasks, good protobuf tasks and bad messages of each kind.
    Writes json.txt and pb.bin (kcat input), bad.txt and expect.json."""
    expect = {"results": {}, "dlq": {}}
    types = list(TYPES)
    n_pb = n // 20
    n_bad = n // 20
    n_json = n - n_pb - n_bad
    with open(os.path.join(out_dir, "json.txt"), "w") as f:
        for i in range(n_json):
            t = types[i % len(types)]
            task = {"id": "j-%d" % i, "type": t,
                    "input": "task %d: I was charged twice" % i,
                    "metadata": {"n": str(i)}}
            if i % 7 == 0:
                task = {"id": "j-%d" % i, "type": t,
                        "messages": [{"role": "user", "content": "hi %d" % i}]}
            f.write("j-%d\t%s\n" % (i, json.dumps(task)))
            expect["results"]["j-%d" % i] = TYPES[t]
    with open(os.path.join(out_dir, "pb.bin"), "wb") as f:
        for i in range(n_pb):
            t = types[i % len(types)]
            msg = (pb_string(1, "p-%d" % i) + pb_string(2, t) +
                   pb_string(4, "protobuf task %d" % i))
            # kcat -D '\xff' splits messages at 0xff, which ASCII strings
            # with lengths under 128 never contain.
            assert b"\xff" not in msg
            f.write(msg + b"\xff")
            expect["results"]["p-%d" % i] = TYPES[t]
    bad = [
        ("decode", "this is not json"),
        ("decode", "[1, 2, 3]"),
        ("invalid", '{"type": "answer", "input": "no id"}'),
        ("invalid", '{"id": "b-x", "input": "no type"}'),
        ("invalid", '{"id": "b-y", "type": "answer"}'),
        ("invalid", '{"id": 7, "type": "answer", "input": "id not a string"}'),
        ("invalid", '{"id": "b-z", "type": "answer", "input": "x", '
                    '"hints": {"min_tier": "no_such_tier"}}'),
        ("invalid", '{"id": "b-w", "type": "answer", "input": "x", '
                    '"surprise": true}'),
        ("decode", '{"id": "b-v", "type": "answer", "input": "trunc'),
        ("too_large", json.dumps({"id": "b-big", "type": "answer",
                                  "input": "x" * 100000})),
    ]
    with open(os.path.join(out_dir, "bad.txt"), "w") as f:
        for i in range(n_bad):
            code, line = bad[i % len(bad)]
            f.write(line + "\n")
            expect["dlq"][line[:60] + "#%d" % i] = code
    with open(os.path.join(out_dir, "expect.json"), "w") as f:
        json.dump({"results": expect["results"],
                   "dlq_codes": sorted(c for c in expect["dlq"].values())}, f)


def read(bootstrap, topic):
    """Reads a topic from the start to its end with kcat; one JSON line per
    message with topic, partition, offset, key, headers and the value
    (text, or a decoded protobuf Result when its content-type says so)."""
    fmt = r"%R%s%t\x01%p\x01%o\x01%k\x01%h\x02\n"
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning",
         "-e", "-q", "-f", fmt], check=True, capture_output=True).stdout
    i = 0
    while i < len(out):
        n = struct.unpack(">i", out[i:i + 4])[0]
        i += 4
        value = out[i:i + max(n, 0)]
        i += max(n, 0)
        end = out.index(b"\x02\n", i)
        t, p, o, k, h = out[i:end].decode().split("\x01")
        i = end + 2
        headers = dict(kv.split("=", 1) for kv in h.split(",") if "=" in kv)
        rec = {"topic": t, "partition": int(p), "offset": int(o), "key": k,
               "headers": headers}
        if headers.get("content-type") == "application/x-protobuf" and \
                topic.endswith("results"):
            f = dict(pb_fields(value))
            rec["value"] = {"id": f.get(1, b"").decode(),
                            "status": f.get(4, b"").decode(),
                            "tier": f.get(6, b"").decode(), "pb": True}
        else:
            text = value.decode("utf-8", "replace")
            try:
                rec["value"] = json.loads(text)
            except ValueError:
                rec["value"] = text
        print(json.dumps(rec))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
