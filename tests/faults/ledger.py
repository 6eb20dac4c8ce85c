#!/usr/bin/env python3
"""The fault suite's ledger: what one run sent, what came out, what the
providers billed and what Redis charged; and the verdict.

usage: ledger.py --scenario NAME --faults "kill ..." --dir RUN_DIR
                 --tasks N --kills N --kills-mid N --kills-frontier N
                 --kills-router N --deaths N --inflight N
                 --price TIER:IN:OUT ... --done-at S --elapsed S
                 [--append FILE]
       ledger.py --header      print the table's header lines

RUN_DIR holds the evidence tests/faults/fleet.sh collected: tasks.tsv
(id TAB task JSON), result-keys (the results topic's keys, one a line),
dlq (key TAB headers), budget.json (`kascade budget show --json`),
stats-TIER.json (each simulator's /stats), deaths, sanitizer.

Checks (each failure is printed; the exit status is 1 if any):
- lost: every task id has a Result or a DLQ entry;
- spent >= billed: Redis `spent` (summed over the tiers) is at least what
  the simulators billed (their billed tokens x the config's prices);
- spent <= billed + slack, slack = sum over tiers of (reservations in
  doubt at the kills + W x requests the simulator did not answer
  normally), W the tier's worst-case cost of one call (what a worker
  reserves: every prompt byte a token plus the chat template, and
  max_output_tokens). Reservations in doubt at a worker's kill: the
  tier's `reserved` (all its workers', so at least the victim's, which
  expire and are charged at their worst case) read right before the kill,
  plus RACE_CALLS x W, capped at max_inflight x W (that cap alone when the
  read failed). A killed worker's reservations may be charged in full and
  billed at less; a request that failed (refused, or billed and then lost
  on its way) may be charged at W too. The looser kills x max_inflight x
  W bound is in ledger.json as bound_strict_micro;
- no daemon died without being killed (deaths), no sanitizer report.
"""
import argparse
import json
import os
import sys

# Chat template tokens of a call with a system prompt and one user turn
# (common/config/pricing.h: 16 per message, twice that per request), and
# the executor prompt the suite configures.
TEMPLATE_TOKENS = 2 * 16 + 2 * 16
SYSTEM_PROMPT = "Answer."
TIER_OF = {"answer": "mid", "review": "frontier"}
# Calls a worker may reserve between the suite's read of the reservations
# and its SIGKILL (a few ms): a margin of worst cases per kill.
RACE_CALLS = 8

HEADER = ("| fault | tasks | lost | results (unique) | duplicate result msgs "
          "| DLQ | calls answered | calls beyond one per task | billed µ$ "
          "| charged µ$ | bound µ$ | kills | deaths | verdict |")
RULE = "|" + "---|" * 14


def load_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_lines(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n") for line in f]
    except OSError:
        return []


def worst_case(tasks, prices):
    """W per tier: the largest worst-case cost of one of its tasks' calls,
    in micro-dollars (prices are micro-dollars per token)."""
    worst = {t: 0 for t in prices}
    for task in tasks.values():
        tier = TIER_OF.get(task.get("type"), "mid")
        if tier not in prices:
            continue
        pin, pout = prices[tier]
        prompt = TEMPLATE_TOKENS + len(SYSTEM_PROMPT) + \
            len(task.get("input", "").encode())
        out = task.get("hints", {}).get("max_output_tokens", 256)
        worst[tier] = max(worst[tier], prompt * pin + out * pout)
    return worst


def spent_by_tier(budget):
    spent, reserved = {}, {}
    for b in budget.get("budgets", []):
        if b.get("kind") == "tier":
            spent[b["name"]] = round(b.get("spent_usd", 0) * 1e6)
            reserved[b["name"]] = round(b.get("reserved_usd", 0) * 1e6)
    return spent, reserved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--header", action="store_true")
    ap.add_argument("--scenario")
    ap.add_argument("--faults", default="")
    ap.add_argument("--dir")
    ap.add_argument("--tasks", type=int)
    ap.add_argument("--kills", type=int, default=0)
    ap.add_argument("--kills-mid", type=int, default=0)
    ap.add_argument("--kills-frontier", type=int, default=0)
    ap.add_argument("--kills-router", type=int, default=0)
    ap.add_argument("--deaths", type=int, default=0)
    ap.add_argument("--inflight", type=int)
    ap.add_argument("--price", action="append", default=[])
    ap.add_argument("--done-at", type=int, default=0)
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--append")
    a = ap.parse_args()
    if a.header:
        print(HEADER)
        print(RULE)
        return 0

    d = a.dir
    prices = {}
    for p in a.price:
        tier, pin, pout = p.split(":")
        prices[tier] = (int(pin), int(pout))
    tasks = {}
    for line in read_lines(os.path.join(d, "tasks.tsv")):
        tid, _, body = line.partition("\t")
        tasks[tid] = json.loads(body)
    result_keys = [k for k in read_lines(os.path.join(d, "result-keys")) if k]
    dlq_keys = [line.split("\t", 1)[0]
                for line in read_lines(os.path.join(d, "dlq")) if line]
    unique = set(result_keys)
    accounted = unique | set(dlq_keys)
    lost = sorted(set(tasks) - accounted)
    strays = sorted(k for k in accounted if k not in tasks)

    stats = {t: load_json(os.path.join(d, "stats-%s.json" % t), {})
             for t in prices}
    kills = {"mid": a.kills_mid, "frontier": a.kills_frontier}
    worst = worst_case(tasks, prices)
    # Per worker kill: what its reservations may add, the tier's reserved
    # micro-dollars read right before the kill plus RACE_CALLS worst cases
    # (reservations made between the read and the kill), capped at
    # max_inflight worst cases; max_inflight worst cases when unread.
    in_doubt = {t: 0 for t in prices}
    at_kills = {t: 0 for t in prices}
    for line in read_lines(os.path.join(d, "kill-inflight")):
        parts = line.split() + ["?", "?"]
        t = parts[0]
        if t not in in_doubt:
            continue
        cap = a.inflight * worst[t]
        if parts[1].isdigit():
            in_doubt[t] += min(cap, int(parts[1]) + RACE_CALLS * worst[t])
        else:
            in_doubt[t] += cap
        if parts[2].isdigit():
            at_kills[t] += int(parts[2])
    strict = 0
    billed = billed_calls = answered = requests = slack = 0
    per_tier = {}
    for t, (pin, pout) in prices.items():
        s = stats[t]
        b = s.get("billed", {})
        cost = b.get("input_tokens", 0) * pin + b.get("output_tokens", 0) * pout
        unanswered = s.get("requests", 0) - s.get("ok", 0)
        tier_slack = in_doubt[t] + worst[t] * unanswered
        strict += worst[t] * (kills.get(t, 0) * a.inflight + unanswered)
        billed += cost
        billed_calls += b.get("calls", 0)
        answered += s.get("ok", 0)
        requests += s.get("requests", 0)
        slack += tier_slack
        per_tier[t] = {"billed": cost, "calls_billed": b.get("calls", 0),
                       "requests": s.get("requests", 0), "ok": s.get("ok", 0),
                       "errors": {k: v for k, v in s.get("errors", {}).items()
                                  if v},
                       "worst_call": worst[t], "slack": tier_slack,
                       "inflight_at_kills": at_kills[t],
                       "reserved_at_kills_bound": in_doubt[t],
                       "kills": kills.get(t, 0)}
    budget = load_json(os.path.join(d, "budget.json"), {})
    spent, reserved = spent_by_tier(budget)
    charged = sum(spent.get(t, 0) for t in prices)
    for t in prices:
        per_tier[t]["spent"] = spent.get(t)
        per_tier[t]["reserved"] = reserved.get(t)
    bound = billed + slack
    sanitizer = [x for x in read_lines(os.path.join(d, "sanitizer")) if x]
    restarts = read_lines(os.path.join(d, "restarts"))
    injected = {
        "kills": a.kills, "kills_router": a.kills_router,
        "redis_sleeps_ok": sum(1 for x in read_lines(
            os.path.join(d, "sleeps")) if x.strip() == "OK"),
        "broker_restarts": restarts.count("broker"),
        "redis_restarts": restarts.count("redis"),
        "provider_faults": {},
    }
    for t in prices:
        for k, v in stats[t].get("errors", {}).items():
            if v:
                injected["provider_faults"][k] = \
                    injected["provider_faults"].get(k, 0) + v
    deaths = read_lines(os.path.join(d, "deaths"))

    problems = []
    if lost:
        problems.append("%d task(s) lost (no Result, no DLQ entry), e.g. %s"
                        % (len(lost), ", ".join(lost[:5])))
    if strays:
        problems.append("%d Result/DLQ key(s) of no task, e.g. %s"
                        % (len(strays), ", ".join(strays[:5])))
    if not budget:
        problems.append("could not read the budget (kascade budget show "
                        "--json): see budget.err")
    elif charged < billed:
        problems.append("spent < billed: Redis charged %d micro-dollars, the "
                        "providers billed %d (%d short)"
                        % (charged, billed, billed - charged))
    elif charged > bound:
        problems.append("spent > billed + the worst case of the calls that "
                        "may have been lost: charged %d, bound %d"
                        % (charged, bound))
    if a.deaths or deaths:
        problems.append("%d daemon(s) died without being killed: %s"
                        % (max(a.deaths, len(deaths)), "; ".join(deaths[:5])))
    if sanitizer:
        problems.append("sanitizer reports: %s" % sanitizer[0])
    if any(not stats[t] for t in prices):
        problems.append("a simulator's /stats could not be read")

    row = {
        "scenario": a.scenario, "faults": a.faults.split(),
        "tasks": len(tasks), "lost": len(lost),
        "result_messages": len(result_keys), "results_unique": len(unique),
        "duplicate_result_messages": len(result_keys) - len(unique),
        "dlq_entries": len(dlq_keys), "requests": requests,
        "calls_answered": answered, "calls_billed": billed_calls,
        "calls_beyond_one_per_task": billed_calls - len(tasks),
        "billed_micro": billed, "charged_micro": charged,
        "bound_micro": bound, "bound_strict_micro": billed + strict,
        "kills": a.kills,
        "kills_router": a.kills_router, "deaths": max(a.deaths, len(deaths)),
        "done_after_s": a.done_at, "elapsed_s": a.elapsed,
        "tiers": per_tier, "injected": injected, "problems": problems,
    }
    with open(os.path.join(d, "ledger.json"), "w") as f:
        json.dump(row, f, indent=1)
    verdict = "PASS" if not problems else "FAIL"
    line = ("| %s | %d | %d | %d (%d) | %d | %d | %d | %d | %d | %d | %d "
            "| %d | %d | %s |" % (
                a.scenario, len(tasks), len(lost), len(result_keys),
                len(unique), len(result_keys) - len(unique), len(dlq_keys),
                answered, billed_calls - len(tasks), billed, charged, bound,
                a.kills, row["deaths"], verdict))
    print(HEADER)
    print(RULE)
    print(line)
    print("  injected: %s" % json.dumps(injected, sort_keys=True))
    for t, v in per_tier.items():
        print("  %s: %s" % (t, json.dumps(v, sort_keys=True)))
    for p in problems:
        print("FAIL: %s" % p)
    if a.append:
        with open(a.append, "a") as f:
            f.write(line + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
