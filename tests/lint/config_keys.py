#!/usr/bin/env python3
"""tests/lint/config_keys.py - the configuration reference matches the code.

Every key the config reader accepts (the `keys[]` arrays that
common/config/*.c hands to cfg_check_keys) must appear, in backticks, in
its own section's row of README.md's configuration table (a list as
`key[]`), so a new key cannot ship undocumented and a key documented under
another section (`prefix` is both a `redis` and a `topics` key) does not
count. The section of an array is the function that holds it (SECTIONS
below; an array in a function not listed there fails the check, so the
checker cannot fall behind the code). Every environment variable the
config reads (env_keys[] of common/config/config.c) must be in README.md
too. Exits 1 with one line per problem.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ARRAY = re.compile(
    r"static\s+const\s+char\s*\*\s*const\s+(\w*keys\w*)\[\]\s*=\s*\{(.*?)\};",
    re.S)
FUNC = re.compile(r"^(?:static\s+)?int\s+(\w+)\(", re.M)
ENV = re.compile(r'\{"(KASCADE_[A-Z_]+)",\s*"([^"]+)"\}')

# (function, array) -> the README table row that documents its keys;
# "*" matches any array name in that function.
SECTIONS = {
    ("read_redis", "*"): "`redis`",
    ("read_topics", "*"): "`topics`",
    ("read_limits", "*"): "`limits`",
    ("read_ops", "mkeys"): "`metrics`",
    ("read_ops", "lkeys"): "`log`",
    ("read_provider", "*"): "`providers[]`",
    ("read_tier", "*"): "`tiers[]`",
    ("read_budget", "*"): "`budget`",
    ("cfg_read_tree", "*"): None,  # the sections themselves, and top level
    ("read_rule", "*"): "`routing`",
    ("cfg_read_routing", "*"): "`routing`",
    ("cfg_read_router", "*"): "`router`",
}


def code_arrays():
    """Yields (file, function, array name, keys) per keys array."""
    folder = os.path.join(ROOT, "common", "config")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".c"):
            continue
        text = open(os.path.join(folder, name), encoding="utf-8").read()
        funcs = [(m.start(), m.group(1)) for m in FUNC.finditer(text)]
        for m in ARRAY.finditer(text):
            func = None
            for start, fname in funcs:
                if start < m.start():
                    func = fname
            yield name, func, m.group(1), re.findall(r'"([^"]+)"', m.group(2))


def readme_rows():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = text.index("| section | keys")
    end = text.find("\n\n", start)
    rows = {}
    for line in text[start:end if end >= 0 else len(text)].splitlines():
        cells = line.split("|")
        if len(cells) > 2:
            rows[cells[1].strip()] = "|".join(cells[2:])
    return text, rows


def documented(key, row):
    return "`%s`" % key in row or "`%s[]`" % key in row


def main():
    text, rows = readme_rows()
    problems = []
    n = 0
    for fname, func, array, keys in code_arrays():
        section = SECTIONS.get((func, array), SECTIONS.get((func, "*"), 0))
        if section == 0:
            problems.append(
                "config_keys: %s: %s[] in %s() is not mapped to a README "
                "section (add it to SECTIONS in tests/lint/config_keys.py)"
                % (fname, array, func))
            continue
        for k in keys:
            n += 1
            if section is None:  # a top-level key: a section row or top level
                ok = ("`%s`" % k in rows or "`%s[]`" % k in rows or
                      documented(k, rows.get("top level", "")))
                where = "as a section or under top level"
            else:
                ok = documented(k, rows.get(section, ""))
                where = "in the %s row" % section
            if not ok:
                problems.append(
                    "config_keys: `%s` is read by %s() (common/config/%s) "
                    "but not documented %s of README.md's configuration "
                    "table" % (k, func, fname, where))
    cfg = open(os.path.join(ROOT, "common", "config", "config.c"),
               encoding="utf-8").read()
    envs = ENV.findall(cfg)
    for env, key in envs:
        if "`%s`" % env not in text:
            problems.append("config_keys: %s (sets %s) is read by "
                            "common/config/config.c but not in README.md"
                            % (env, key))
    if n == 0 or not envs:
        problems.append("config_keys: no key arrays or env_keys[] found in "
                        "common/config (the checker is out of date)")
    for p in problems:
        print(p)
    if not problems:
        print("config_keys: ok (%d keys in their sections, %d environment "
              "variables documented)" % (n, len(envs)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
