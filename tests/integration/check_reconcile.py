#!/usr/bin/env python3
"""Reconciles what the fleet produced with what was sent.

usage: check_reconcile.py EXPECT.json RESULTS.jsonl DLQ.jsonl TASKS_TOPIC
Every good task has exactly one Result, with status ok and the tier its
type maps to; every bad message is in the DLQ exactly once with its error
code and its kascade-source in the tasks topic; nothing else appears.
Prints one line per problem and exits 1 if there is any.
"""
import collections
import json
import sys


def main(expect_path, results_path, dlq_path, tasks_topic):
    expect = json.load(open(expect_path))
    results = [json.loads(line) for line in open(results_path)]
    dlq = [json.loads(line) for line in open(dlq_path)]
    problems = []

    seen = collections.Counter(r["value"]["id"] for r in results
                               if isinstance(r["value"], dict))
    for task_id, tier in expect["results"].items():
        if seen[task_id] != 1:
            problems.append("%s: %d results, expected 1" % (task_id,
                                                             seen[task_id]))
    for r in results:
        v = r["value"]
        if not isinstance(v, dict) or v.get("id") not in expect["results"]:
            problems.append("unexpected result: %r" % (v,))
            continue
        if v["status"] != "ok":
            problems.append("%s: status %s" % (v["id"], v["status"]))
        if v["tier"] != expect["results"][v["id"]]:
            problems.append("%s: tier %s, expected %s" % (
                v["id"], v["tier"], expect["results"][v["id"]]))
        if r["key"] != v["id"]:
            problems.append("%s: keyed %r" % (v["id"], r["key"]))

    codes = sorted(d["headers"].get("kascade-error", "?") for d in dlq)
    if codes != expect["dlq_codes"]:
        problems.append("DLQ codes %s, expected %s" % (
            dict(collections.Counter(codes)),
            dict(collections.Counter(expect["dlq_codes"]))))
    sources = collections.Counter(d["headers"].get("kascade-source")
                                  for d in dlq)
    for src, n in sources.items():
        if not src or not src.startswith(tasks_topic + "/"):
            problems.append("DLQ entry with source %r" % src)
        if n > 1:
            problems.append("DLQ source %s appears %d times" % (src, n))
    for d in dlq:
        if not d["headers"].get("kascade-error-detail"):
            problems.append("DLQ entry without a detail: %r" % d["headers"])

    for p in problems[:30]:
        print(p)
    print("%d results for %d good tasks, %d DLQ entries for %d bad ones, "
          "%d problem(s)" % (len(results), len(expect["results"]), len(dlq),
                             len(expect["dlq_codes"]), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
