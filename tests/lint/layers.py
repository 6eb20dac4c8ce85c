#!/usr/bin/env python3
"""tests/lint/layers.py [BUILD_DIR] - checks the layering of the code.

1. Includes: a file under common/<folder>/ includes only its own folder
   and folders earlier in the chain below; nothing is a .c directly under
   common/; router/ includes nothing from common/llm/.
2. Calls (with BUILD_DIR, from the objects' symbols): inside workers/ and
   router/, no two files call each other, directly or round a longer
   circle, so each piece of state has one owner and calls go one way.
Exits 1 with one line per violation.
"""
import os
import re
import subprocess
import sys

CHAIN = ["base", "wire", "config", "process", "kafka", "redis", "llm",
         "learn"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(folder):
    for dirpath, _, names in os.walk(os.path.join(ROOT, folder)):
        for name in sorted(names):
            if name.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(dirpath, name), ROOT)


def check_includes():
    bad = []
    for name in os.listdir(os.path.join(ROOT, "common")):
        if name.endswith(".c"):
            bad.append("common/%s: a .c directly under common/" % name)
    for path in sources("common"):
        folder = path.split("/")[1]
        if folder not in CHAIN:
            bad.append("%s: folder %s is not in the chain" % (path, folder))
            continue
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        for inc in INCLUDE.findall(text):
            top = inc.split("/")[0]
            if top in CHAIN and CHAIN.index(top) > CHAIN.index(folder):
                bad.append("%s: includes %s (after %s in the chain)" %
                           (path, inc, folder))
    for path in sources("router"):
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
        for inc in INCLUDE.findall(text):
            if inc.startswith("llm/"):
                bad.append("%s: router includes %s" % (path, inc))
    return bad


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True,
                         check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
    return defined, used


def cycles(edges):
    """Strongly connected components with more than one file."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check_calls(build):
    bad = []
    for comp in ("workers", "router"):
        objdir = os.path.join(build, "obj", comp)
        if not os.path.isdir(objdir):
            bad.append("%s: no objects (build first)" % objdir)
            continue
        syms = {}
        for name in sorted(os.listdir(objdir)):
            # Only objects of today's sources: a renamed file leaves its
            # old object behind.
            src = os.path.join(ROOT, comp, name[:-2] + ".c")
            if name.endswith(".o") and os.path.exists(src):
                syms[name[:-2] + ".c"] = symbols(os.path.join(objdir, name))
        owner = {}
        for f, (defined, _) in syms.items():
            for s in defined:
                owner[s] = f
        edges = {}
        for f, (_, used) in syms.items():
            edges[f] = sorted({owner[s] for s in used
                               if s in owner and owner[s] != f})
        for comp_files in cycles(edges):
            detail = "; ".join(
                "%s -> %s" % (f, ", ".join(t for t in edges[f]
                                           if t in comp_files))
                for f in comp_files)
            bad.append("%s/: files call each other: %s" % (comp, detail))
    return bad


def main():
    bad = check_includes()
    if len(sys.argv) > 1:
        bad += check_calls(sys.argv[1])
    for line in bad:
        print("layers: " + line)
    if not bad:
        print("layers: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
