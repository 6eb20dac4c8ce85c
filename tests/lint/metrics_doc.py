#!/usr/bin/env python3
"""tests/lint/metrics_doc.py - docs/metrics.md matches the metrics the code
registers.

Reads every ks_metrics_family(m, "name", "help", KS_METRIC_TYPE, "labels")
call in router/, workers/, common/ and cli/ (a call may span lines) and the
table of docs/metrics.md (| `name` | type | labels | ...). Fails, one line
per problem, when a registered metric is missing from the table, a listed
one is not registered, or the type or the label set differ (a metric
registered by two daemons must have one type and label set).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CALL = re.compile(
    r'ks_metrics_family\(\s*[^,;]+,\s*"(kascade_[a-z0-9_]+)",\s*'
    r'(?:"(?:[^"\\]|\\.)*"\s*)+,\s*KS_METRIC_(\w+),\s*("[^"]*"|NULL)',
    re.S)
ROW = re.compile(r"^\|\s*`(kascade_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|",
                 re.M)


def labels(text):
    text = text.strip().strip('"').replace("`", "")
    return tuple(sorted(x.strip() for x in text.split(",") if x.strip()))


def registered():
    out, problems = {}, []
    for folder in ("router", "workers", "common", "cli"):
        for root, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in sorted(files):
                if not name.endswith(".c"):
                    continue
                path = os.path.join(root, name)
                text = open(path, encoding="utf-8").read()
                for m in CALL.finditer(text):
                    entry = (m.group(2).lower(),
                             labels("" if m.group(3) == "NULL"
                                    else m.group(3)))
                    where = os.path.relpath(path, ROOT)
                    if m.group(1) in out and out[m.group(1)][0] != entry:
                        problems.append(
                            "metrics_doc: %s is registered as %s in %s but "
                            "as %s in %s" % (m.group(1), entry, where,
                                             out[m.group(1)][0],
                                             out[m.group(1)][1]))
                    out.setdefault(m.group(1), (entry, where))
                n_calls = len(re.findall(r"\bks_metrics_family\(", text))
                if n_calls != len(CALL.findall(text)) and \
                        not name.startswith("metrics."):
                    problems.append(
                        "metrics_doc: %s: a ks_metrics_family call this "
                        "check cannot read (a name that is not a literal?)"
                        % os.path.relpath(path, ROOT))
    return out, problems


def main():
    code, problems = registered()
    doc = open(os.path.join(ROOT, "docs", "metrics.md"),
               encoding="utf-8").read()
    table = {m.group(1): (m.group(2).lower(), labels(m.group(3)))
             for m in ROW.finditer(doc)}
    for name, (entry, where) in sorted(code.items()):
        if name not in table:
            problems.append("metrics_doc: %s (registered in %s) is not in "
                            "docs/metrics.md" % (name, where))
        elif table[name] != entry:
            problems.append("metrics_doc: %s is %s in docs/metrics.md but "
                            "%s in %s" % (name, table[name], entry, where))
    for name in sorted(set(table) - set(code)):
        problems.append("metrics_doc: %s is in docs/metrics.md but no code "
                        "registers it" % name)
    if not code:
        problems.append("metrics_doc: no ks_metrics_family calls found "
                        "(the check is out of date)")
    for p in problems:
        print(p)
    if not problems:
        print("metrics_doc: ok (%d metrics documented)" % len(code))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
