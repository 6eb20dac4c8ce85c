#!/usr/bin/env python3
"""tests/lint/config_keys.py - the configuration reference matches the code.

Every key the config reader accepts (the `keys[]` arrays that
common/config/*.c hands to cfg_check_keys) must appear, in backticks, in
README.md's configuration table (a list as `key[]`), so a new key cannot
ship undocumented.
Exits 1 with one line per key that is missing.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ARRAY = re.compile(
    r"static\s+const\s+char\s*\*\s*const\s+\w*keys\w*\[\]\s*=\s*\{(.*?)\};",
    re.S)


def code_keys():
    keys = set()
    folder = os.path.join(ROOT, "common", "config")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".c"):
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            for body in ARRAY.findall(text):
                keys.update(re.findall(r'"([^"]+)"', body))
    return keys


def readme_table():
    lines = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = lines.index("| section | keys")
    end = lines.find("\n\n", start)
    return lines[start:end if end >= 0 else len(lines)]


def main():
    keys = code_keys()
    table = readme_table()
    missing = sorted(k for k in keys
                     if "`%s`" % k not in table and "`%s[]`" % k not in table)
    for k in missing:
        print("config_keys: `%s` is read by common/config but not in "
              "README.md's configuration table" % k)
    if not keys:
        print("config_keys: no key arrays found in common/config (the "
              "checker is out of date)")
        return 1
    if not missing:
        print("config_keys: ok (%d keys documented)" % len(keys))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
