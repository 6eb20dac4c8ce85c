#!/usr/bin/env python3
"""gsm8k_prep.py - the RouteLLM GSM8K outcomes as kascade train/eval input.

Reads gsm8k_responses.csv (one row per GSM8K test question: the prompt and
whether Mixtral-8x7B, the weak model, and GPT-4, the strong one, answered
it correctly), drops the prompts RouteLLM lists as eval_prompt in
contaminated_prompts.jsonl, shuffles the rest with a fixed seed and writes

  OUT/train.jsonl  {"input": prompt, "label": 1 if the weak model is wrong}
  OUT/test.jsonl   {"input": prompt, "weak_correct": b, "strong_correct": b}
  OUT/outcomes_train.jsonl, OUT/outcomes_test.jsonl
                   the same split as labelled outcomes (the JSONL of
                   `kascade eval -i`, `kascade tune` and `kascade train
                   --kind verifier`, learn/verify.h): type "math", the
                   prompt, and per tier ("cheap": Mixtral, "top": GPT-4)
                   the recorded answer, whether it was right, token
                   counts and cost_usd.

With --tune-share S (default 0.5) the training part is split once more,
for models and thresholds fitted on different tasks (a verifier's scores
on its own training tasks are optimistic, and thresholds tuned on them
escalate too little):

  OUT/outcomes_fit.jsonl   the first (1 - S) of it: train the verifier
  OUT/router_fit.jsonl     the same tasks as router labels
  OUT/outcomes_tune.jsonl  the rest: `kascade tune` picks thresholds here

Token counts are not in the CSV: they are estimated as ceil(bytes / 4),
the estimate kascade's own pricing uses (common/config/pricing.c), over
the question (input) and the recorded answer (output). Prices are public
list prices in USD per million tokens, input/output: Mixtral-8x7B-Instruct
0.60/0.60 (Together AI's serverless list price), gpt-4-1106-preview
10/30 (OpenAI's list price for GPT-4 Turbo). The CSV records neither
latency nor finish_reason, so the outcomes leave them out.

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
# USD per million tokens (input, output); see the docstring.
PRICES = {"cheap": (0.60, 0.60), "top": (10.0, 30.0)}


def est_tokens(text):
    return max(1, -(-len(text.encode("utf-8")) // 4))


def tier_outcome(tier, model, prompt, answer, correct):
    tin, tout = est_tokens(prompt), est_tokens(answer)
    pin, pout = PRICES[tier]
    return {"model": model, "answer": answer, "correct": correct,
            "input_tokens": tin, "output_tokens": tout,
            "cost_usd": round((tin * pin + tout * pout) / 1e6, 10)}


def write_outcomes(path, rows, first_id):
    with open(path, "w", encoding="utf-8") as f:
        for i, (prompt, weak, strong, wans, sans) in enumerate(rows):
            f.write(json.dumps({
                "id": f"gsm8k-{first_id + i}", "type": "math",
                "prompt": prompt,
                "tiers": {
                    "cheap": tier_outcome("cheap", WEAK, prompt, wans, weak),
                    "top": tier_outcome("top", STRONG, prompt, sans, strong),
                }}) + "\n")


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
    ap.add_argument("--tune-share", type=float, default=0.5)
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
            rows.append((r["prompt"], flag(r[WEAK], i), flag(r[STRONG], i),
                         r[WEAK + "_response"], r[STRONG + "_response"]))

    random.Random(args.seed).shuffle(rows)
    n_train = int(round(args.train_share * len(rows)))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train.jsonl"), "w",
              encoding="utf-8") as f:
        for prompt, weak, *_ in rows[:n_train]:
            f.write(json.dumps({"input": prompt, "label": 0 if weak else 1})
                    + "\n")
    with open(os.path.join(args.out, "test.jsonl"), "w",
              encoding="utf-8") as f:
        for prompt, weak, strong, *_ in rows[n_train:]:
            f.write(json.dumps({"input": prompt, "weak_correct": weak,
                                "strong_correct": strong}) + "\n")
    write_outcomes(os.path.join(args.out, "outcomes_train.jsonl"),
                   rows[:n_train], 0)
    write_outcomes(os.path.join(args.out, "outcomes_test.jsonl"),
                   rows[n_train:], n_train)
    n_fit = int(round((1 - args.tune_share) * n_train))
    write_outcomes(os.path.join(args.out, "outcomes_fit.jsonl"),
                   rows[:n_fit], 0)
    write_outcomes(os.path.join(args.out, "outcomes_tune.jsonl"),
                   rows[n_fit:n_train], n_fit)
    with open(os.path.join(args.out, "router_fit.jsonl"), "w",
              encoding="utf-8") as f:
        for prompt, weak, *_ in rows[:n_fit]:
            f.write(json.dumps({"input": prompt, "label": 0 if weak else 1})
                    + "\n")
    print(f"gsm8k_prep: {len(rows) + dropped} prompts, {dropped} contaminated "
          f"dropped, {n_train} train, {len(rows) - n_train} test "
          f"(seed {args.seed})", file=sys.stderr)


if __name__ == "__main__":
    main()
