#!/usr/bin/env python3
"""cascade.py - the data side of bench/cascade.sh. Standard library only.

  cascade.py replay SCORED_TEST.jsonl OUT.csv --random-share S --seed N
      the replay file of the simulators: prompt; cheap_response (Mixtral's
      recorded answer) with cheap_confidence (the verifier's score, which
      the simulator hands to the worker in the logprobs); cheaprand_response
      (the same answers) with cheaprand_confidence (0 for exactly
      round(S * n) tasks drawn with the seed, else 1: random escalation at
      share S); cheapplain_response (the same answers, no recorded
      confidence: for a worker that runs the verifier itself);
      top_response (GPT-4's recorded answer).
  cascade.py tasks SCORED_TEST.jsonl OUT.jsonl
      the tasks to submit: id, type, the prompt as input.
  cascade.py grade SCORED_TEST.jsonl RESULTS.jsonl RUN SEED
      one JSON line: a fleet run graded against the recorded correctness
      (the answer of the tier that produced the Result), its cost as the
      Results report it, escalations, and answers that were not the
      recorded ones (replay misses: must be 0).
  cascade.py offline SCORED_TEST.jsonl SEED
      JSON lines for what is computed, not run: the oracle cascade (the
      top tier only where it alone is right; cost from the outcomes).
  cascade.py folds OUTCOMES.jsonl K DIR
      cross-fitting: DIR/fold<k>_fit.jsonl (the outcomes of the other
      folds), DIR/fold<k>_router.jsonl (the same as router labels: 1 when
      the cheap tier is wrong), DIR/fold<k>_held.jsonl (fold k), and
      DIR/router_all.jsonl (every line as router labels). Lines go to fold
      (line number mod K).
  cascade.py table RUNS.jsonl [--svg OUT.svg]
      the mean and spread over seeds of every run, as a Markdown table,
      and a quality-against-cost SVG of the means.
"""
import json
import math
import random
import sys
from collections import defaultdict


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cmd_replay(scored, out, share, seed):
    import csv
    rows = read_jsonl(scored)
    k = int(round(share * len(rows)))
    up = set(random.Random(seed).sample(range(len(rows)), k))
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "cheap_response", "cheap_confidence",
                    "cheaprand_response", "cheaprand_confidence",
                    "cheapplain_response", "top_response"])
        for i, r in enumerate(rows):
            cheap, top = r["tiers"]["cheap"], r["tiers"]["top"]
            conf = cheap.get("confidence", {}).get("verifier")
            w.writerow([r["prompt"], cheap["answer"],
                        "" if conf is None else repr(conf),
                        cheap["answer"], "0" if i in up else "1",
                        cheap["answer"], top["answer"]])


def cmd_folds(outcomes, k, d):
    import os
    rows = read_jsonl(outcomes)

    def router(r):
        return json.dumps({"input": r["prompt"],
                           "label": 0 if r["tiers"]["cheap"]["correct"]
                           else 1}) + "\n"

    for f in range(k):
        fit = [r for i, r in enumerate(rows) if i % k != f]
        held = [r for i, r in enumerate(rows) if i % k == f]
        with open(os.path.join(d, f"fold{f}_fit.jsonl"), "w") as o:
            o.writelines(json.dumps(r) + "\n" for r in fit)
        with open(os.path.join(d, f"fold{f}_router.jsonl"), "w") as o:
            o.writelines(router(r) for r in fit)
        with open(os.path.join(d, f"fold{f}_held.jsonl"), "w") as o:
            o.writelines(json.dumps(r) + "\n" for r in held)
    with open(os.path.join(d, "router_all.jsonl"), "w") as o:
        o.writelines(router(r) for r in rows)


def cmd_tasks(scored, out):
    with open(out, "w", encoding="utf-8") as f:
        for r in read_jsonl(scored):
            f.write(json.dumps({"id": r["id"], "type": r["type"],
                                "input": r["prompt"]}) + "\n")


def same(a, b):
    return (a or "").strip() == (b or "").strip()


def cmd_grade(scored, results, run, seed):
    want = {r["id"]: r for r in read_jsonl(scored)}
    got = {}
    for r in read_jsonl(results):
        got[r["id"]] = r
    right = cost = esc = top = mismatch = 0
    statuses = defaultdict(int)
    for tid, r in got.items():
        o = want.get(tid)
        if o is None:
            continue
        tier = r.get("tier")
        statuses[r.get("status", "?")] += 1
        rec = o["tiers"].get(tier)
        if rec is None:
            mismatch += 1
            continue
        if not same(r.get("output"), rec["answer"]):
            mismatch += 1
        right += bool(rec["correct"])
        cost += float(r.get("cost_usd", 0))
        path = r.get("path") or []
        esc += len(path) > 1
        top += tier == "top"
    n = len(want)
    print(json.dumps({
        "run": run, "seed": seed, "tasks": n, "results": len(got),
        "quality": right / n, "usd_per_task": cost / n,
        "escalated": esc / n, "on_top": top / n,
        "not_recorded": mismatch, "statuses": dict(statuses)}))


def cmd_offline(scored, seed):
    rows = read_jsonl(scored)
    n = len(rows)
    right = cost = up = 0
    for r in rows:
        c, t = r["tiers"]["cheap"], r["tiers"]["top"]
        cost += c["cost_usd"]
        if not c["correct"] and t["correct"]:
            right += 1
            cost += t["cost_usd"]
            up += 1
        else:
            right += c["correct"]
    print(json.dumps({"run": "oracle (offline)", "seed": seed, "tasks": n,
                      "results": n, "quality": right / n,
                      "usd_per_task": cost / n, "escalated": up / n,
                      "on_top": up / n, "not_recorded": 0}))


ORDER = ["all-cheap", "all-top", "random", "prompt score", "verifier",
         "verifier, top reads nothing", "verifier in the worker",
         "verifier + prompt score", "oracle (offline)"]


def mean_sd(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) \
        if len(v) > 1 else 0.0
    return m, sd


def svg(path, pts):
    """A small quality-against-cost plot of the run means."""
    w, h, ml, mr, mt, mb = 640, 420, 70, 200, 40, 55
    xs = [p[1] for p in pts]
    ys = [p[2] for p in pts]
    xmax = max(xs) * 1.1
    ymin, ymax = math.floor(min(ys) - 3), math.ceil(max(ys) + 3)
    px = lambda x: ml + x / xmax * (w - ml - mr)
    py = lambda y: h - mb - (y - ymin) / (ymax - ymin) * (h - mt - mb)
    col = ["#1f77b4", "#d62728", "#7f7f7f", "#ff7f0e", "#2ca02c", "#9467bd",
           "#8c564b"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" '
           f'height="{h}" viewBox="0 0 {w} {h}">',
           f'<rect width="100%" height="100%" fill="#fff"/>',
           '<title>GSM8K through the fleet: accuracy against cost</title>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" '
           'font-family="sans-serif" font-size="15">GSM8K through the fleet:'
           ' accuracy against cost (mean of seeds)</text>',
           f'<line x1="{ml}" y1="{h - mb}" x2="{w - mr}" y2="{h - mb}" '
           'stroke="#000"/>',
           f'<line x1="{ml}" y1="{h - mb}" x2="{ml}" y2="{mt}" '
           'stroke="#000"/>']
    for i in range(6):
        x = xmax / 5 * i
        out.append(f'<text x="{px(x):.1f}" y="{h - mb + 18}" '
                   'text-anchor="middle" font-family="sans-serif" '
                   f'font-size="11">{x:.2f}</text>')
    for i in range(6):
        y = ymin + (ymax - ymin) / 5 * i
        out.append(f'<text x="{ml - 6}" y="{py(y) + 4:.1f}" '
                   'text-anchor="end" font-family="sans-serif" '
                   f'font-size="11">{y:.0f}</text>')
    out.append(f'<text x="{(ml + w - mr) / 2}" y="{h - 12}" '
               'text-anchor="middle" font-family="sans-serif" '
               'font-size="13">cost (USD per 1,000 tasks)</text>')
    out.append(f'<text x="16" y="{(mt + h - mb) / 2}" text-anchor="middle" '
               'font-family="sans-serif" font-size="13" '
               f'transform="rotate(-90 16 {(mt + h - mb) / 2})">'
               'accuracy (% of tasks right)</text>')
    for i, (name, x, y) in enumerate(pts):
        c = col[i % len(col)]
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" '
                   f'fill="{c}"/>')
        ly = mt + 10 + 20 * i
        out.append(f'<circle cx="{w - mr + 20}" cy="{ly}" r="5" '
                   f'fill="{c}"/>')
        out.append(f'<text x="{w - mr + 32}" y="{ly + 4}" '
                   f'font-family="sans-serif" font-size="12">{name}</text>')
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def cmd_table(runs, svg_path):
    by = defaultdict(list)
    for r in read_jsonl(runs):
        by[r["run"]].append(r)
    top = by.get("all-top")
    top_cost = mean_sd([r["usd_per_task"] for r in top])[0] if top else None
    names = [n for n in ORDER if n in by] + \
        sorted(n for n in by if n not in ORDER)
    print("| run | seeds | accuracy | USD per 1,000 tasks | saving vs "
          "all-top | sent up | not recorded |")
    print("|---|---|---|---|---|---|---|")
    pts = []
    for name in names:
        v = by[name]
        q, qs = mean_sd([100 * r["quality"] for r in v])
        c, cs = mean_sd([1000 * r["usd_per_task"] for r in v])
        u, us = mean_sd([100 * r["on_top"] for r in v])
        sv = ""
        if top_cost:
            s, ss = mean_sd([100 * (1 - r["usd_per_task"] / top_cost)
                             for r in v])
            sv = f"{s:.1f}% ± {ss:.1f}"
        bad = sum(r.get("not_recorded", 0) for r in v)
        print(f"| {name} | {len(v)} | {q:.2f}% ± {qs:.2f} | "
              f"{c:.3f} ± {cs:.3f} | {sv} | {u:.1f}% ± {us:.1f} | {bad} |")
        pts.append((name, c, q))
    if svg_path:
        svg(svg_path, pts)


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "replay" and len(a) == 7:
        cmd_replay(a[1], a[2], float(a[4]), int(a[6]))
    elif a[0] == "folds" and len(a) == 4:
        cmd_folds(a[1], int(a[2]), a[3])
    elif a[0] == "tasks" and len(a) == 3:
        cmd_tasks(a[1], a[2])
    elif a[0] == "grade" and len(a) == 5:
        cmd_grade(a[1], a[2], a[3], int(a[4]))
    elif a[0] == "offline" and len(a) == 3:
        cmd_offline(a[1], int(a[2]))
    elif a[0] == "table" and len(a) in (2, 4):
        cmd_table(a[1], a[3] if len(a) == 4 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
