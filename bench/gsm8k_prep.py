#!/usr/bin/env python3
"""gsm8k_prep.py - the RouteLLM GSM8K outcomes as kascade train/eval input.

Reads gsm8k_responses.csv (one row per GSM8K test question: the prompt and
whether Mixtral-8x7B, the weak model, and GPT-4, the strong one, answered
it correctly), drops the prompts RouteLLM lists as eval_prompt in
contaminated_prompts.jsonl, shuffles the rest with a fixed seed and writes

  OUT/train.jsonl  {"input": prompt, "label": 1 if the weak model is wrong}
  OUT/test.jsonl   {"input": prompt, "weak_correct": b, "strong_correct": b}

usage: gsm8k_prep.py [--data DIR (bench/data/routellm-gsm8k)] [--out DIR] [--train-share 0.6] [--seed 1]
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
    if value == "True":
        return True
    if value == "False":
        return False
    sys.exit(f"gsm8k_prep: row {row_no}: expected True/False, got {value!r}")


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

    rows, dropped = [], 0
    csv.field_size_limit(1 << 24)
    with open(os.path.join(args.data, "gsm8k_responses.csv"),
              encoding="utf-8", newline="") as f:
        for i, r in enumerate(csv.DictReader(f), start=2):
            if r["prompt"] in contaminated:
                dropped += 1
                continue
            rows.append((r["prompt"], flag(r[WEAK], i), flag(r[STRONG], i)))

    random.Random(args.seed).shuffle(rows)
    n_train = int(round(args.train_share * len(rows)))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train.jsonl"), "w",
              encoding="utf-8") as f:
        for prompt, weak, _ in rows[:n_train]:
            f.write(json.dumps({"input": prompt, "label": 0 if weak else 1})
                    + "\n")
    with open(os.path.join(args.out, "test.jsonl"), "w",
              encoding="utf-8") as f:
        for prompt, weak, strong in rows[n_train:]:
            f.write(json.dumps({"input": prompt, "weak_correct": weak,
                                "strong_correct": strong}) + "\n")
    print(f"gsm8k_prep: {len(rows) + dropped} prompts, {dropped} contaminated "
          f"dropped, {n_train} train, {len(rows) - n_train} test "
          f"(seed {args.seed})", file=sys.stderr)


if __name__ == "__main__":
    main()
