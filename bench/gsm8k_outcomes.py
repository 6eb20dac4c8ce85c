#!/usr/bin/env python3
"""gsm8k_outcomes.py - the RouteLLM GSM8K outcomes as labelled outcome lines.

Reads gsm8k_responses.csv (bench/data/routellm-gsm8k: each GSM8K test
question, the answers of Mixtral-8x7B and GPT-4 and whether each is right),
drops the prompts RouteLLM lists as contaminated, shuffles the rest with the
seed and writes OUT/train.jsonl and OUT/test.jsonl in the labelled-outcome
format of `kascade train --kind verifier` and `kascade eval`
(docs/design.md section 6):

  {"id": "gsm8k-<row>", "type": "math", "prompt": "...",
   "tiers": {"cheap": {"answer": "<Mixtral>", "correct": true},
             "top":   {"answer": "<GPT-4>",   "correct": true}}}

The data has no usage, latency, finish reason or logprobs: those fields are
left out (unknown), not invented.

usage: gsm8k_outcomes.py [--data DIR] [--out DIR] [--train-share 0.6] [--seed 1]
Standard library only.
"""
import argparse
import csv
import json
import os
import random
import sys

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


def flag(value, row_no):
    if value in ("True", "False"):
        return value == "True"
    sys.exit(f"gsm8k_outcomes: row {row_no}: expected True/False, "
             f"got {value!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data",
                    default=os.path.join(here, "data", "routellm-gsm8k"))
    ap.add_argument("--out", default=".")
    ap.add_argument("--train-share", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    contaminated = set()
    with open(os.path.join(args.data, "contaminated_prompts.jsonl"),
              encoding="utf-8") as f:
        for line in f:
            if line.strip():
                contaminated.add(json.loads(line)["eval_prompt"])

    rows = []
    csv.field_size_limit(1 << 24)
    with open(os.path.join(args.data, "gsm8k_responses.csv"),
              encoding="utf-8", newline="") as f:
        for i, r in enumerate(csv.DictReader(f), start=2):
            if r["prompt"] in contaminated:
                continue
            rows.append({
                "id": f"gsm8k-{i}", "type": "math", "prompt": r["prompt"],
                "tiers": {
                    "cheap": {"answer": r[WEAK + "_response"],
                              "correct": flag(r[WEAK], i)},
                    "top": {"answer": r[STRONG + "_response"],
                            "correct": flag(r[STRONG], i)}}})

    random.Random(args.seed).shuffle(rows)
    n_train = int(round(args.train_share * len(rows)))
    os.makedirs(args.out, exist_ok=True)
    for name, part in (("train", rows[:n_train]), ("test", rows[n_train:])):
        with open(os.path.join(args.out, name + ".jsonl"), "w",
                  encoding="utf-8") as f:
            for row in part:
                f.write(json.dumps(row) + "\n")
    print(f"gsm8k_outcomes: {len(rows)} outcomes, {n_train} train, "
          f"{len(rows) - n_train} test (seed {args.seed})", file=sys.stderr)


if __name__ == "__main__":
    main()
