#!/usr/bin/env python3
"""results.py - bench/RESULTS.md from the raw outputs of bench/all.sh.

Reads DIR/router.out, DIR/worker.<i>.out, DIR/latency.<i>.out and
DIR/decide.out (the formats printed by bench/run.sh, worker.sh,
latency.sh and decide.sh) and prints Markdown: the machine, the date, the
commit, the commands, and every figure with its baseline and ratio as
mean and min..max over the runs.
"""
import argparse
import datetime
import glob
import os
import platform
import re
import statistics
import sys


def spread(xs, fmt="{:.2f}"):
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return "{} ({}..{})".format(fmt.format(statistics.mean(xs)),
                                fmt.format(min(xs)), fmt.format(max(xs)))


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except OSError:
        mem_kb = 0
    return "{} cores ({}), {:.0f} GiB RAM, {} {}".format(
        os.cpu_count(), model, mem_kb / 2**20, platform.system(),
        platform.release())


def router_section(path):
    out = ["## Router against a raw librdkafka pipe (`bench/run.sh`)", ""]
    text = open(path).read() if os.path.exists(path) else ""
    summary = [l for l in text.splitlines() if l.startswith("all ")]
    rounds = [l for l in text.splitlines() if l.startswith("round ")]
    out.append("Baseline: `bench-pipe`, the same records through a raw "
               "consume-produce pipe with the router's delivery discipline, "
               "in the same run. Target (issue 13): throughput >= 0.9 of "
               "the pipe, CPU per message <= 2x.")
    out.append("")
    out.append("```")
    out.extend(rounds)
    out.extend(summary or ["(no summary: see bench/results/router.log)"])
    out.append("```")
    return out


WORKER = re.compile(
    r"max_inflight (\d+): (\d+) tasks .* = (\d+) tasks/s \(steady (\d+)\); "
    r"ideal (\d+); ratio ([\d.]+) \(steady ([\d.]+)\).* bare client (\d+) "
    r"calls/s, worker/bare ([\d.]+)")


def worker_section(files):
    rows = {}
    for f in files:
        for line in open(f):
            m = WORKER.search(line)
            if m:
                rows.setdefault(int(m.group(1)), []).append(m.groups())
    out = ["## Worker against the ideal and a bare HTTP client "
           "(`bench/worker.sh`, 50 ms model)", "",
           "Baselines in the same run: the ideal max_inflight / latency, "
           "and `bench-curlbase`, a curl-multi client making the same calls "
           "with the same calls in flight, no Kafka, no Redis. Target "
           "(issue 10): >= 0.85 of the ideal at 256, >= 0.5 at 1024.", "",
           "| max_inflight | runs | worker tasks/s | ideal | worker/ideal | "
           "bare client calls/s | bare/ideal | worker/bare |",
           "|---|---|---|---|---|---|---|---|"]
    for m in sorted(rows):
        r = rows[m]
        rate = [float(x[2]) for x in r]
        ideal = float(r[0][4])
        bare = [float(x[7]) for x in r]
        out.append("| {} | {} | {} | {:.0f} | {} | {} | {} | {} |".format(
            m, len(r), spread(rate, "{:.0f}"), ideal,
            spread([float(x[5]) for x in r]), spread(bare, "{:.0f}"),
            spread([b / ideal for b in bare]),
            spread([float(x[8]) for x in r])))
    return out


LAT = re.compile(
    r"latency (\S+) at (\d+)/s: added p50 ([-\d.]+) ms, p95 ([-\d.]+), "
    r"p99 ([-\d.]+), p99.9 ([-\d.]+) \(fleet p99 ([-\d.]+), direct p99 "
    r"([-\d.]+); lost (\d+)\)")
LATK = re.compile(
    r"latency (\S+) at (\d+)/s over kafka-only: added p50 ([-\d.]+) ms, "
    r"p95 ([-\d.]+), p99 ([-\d.]+), p99.9 ([-\d.]+) \(kafka-only p50 "
    r"([-\d.]+), p95 ([-\d.]+), p99 ([-\d.]+), p99.9 ([-\d.]+)\)")


def latency_section(files):
    rows, kafka = {}, {}
    for f in files:
        for line in open(f):
            m = LAT.search(line)
            if m:
                rows.setdefault((m.group(1), int(m.group(2))), []).append(
                    [float(x) for x in m.groups()[2:]])
            m = LATK.search(line)
            if m:
                kafka.setdefault((m.group(1), int(m.group(2))), []).append(
                    [float(x) for x in m.groups()[2:]])
    out = ["## Latency kascade adds (`bench/latency.sh`, 0 ms model)", "",
           "Open loop, from each task's due send time to its Result's "
           "arrival, minus the same percentile of direct HTTP calls to the "
           "same simulator at the same rate in the same run. Second "
           "baseline, same run and rate: Kafka alone (the same producer "
           "and consumer on one topic, one hop where the fleet has "
           "three). Target (issue 13): p99 added <= 20 ms at 1,000 "
           "tasks/s.", "",
           "| setting | tasks/s | runs | added p50 ms | added p95 | "
           "added p99 | added p99.9 | direct p99 | Kafka-only p99 | "
           "added p99 over Kafka-only | lost |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (name, rate) in sorted(rows, key=lambda k: (k[1], k[0])):
        r = rows[(name, rate)]
        k = kafka.get((name, rate), [])
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |"
                   .format(name, rate, len(r),
                           spread([x[0] for x in r], "{:.1f}"),
                           spread([x[1] for x in r], "{:.1f}"),
                           spread([x[2] for x in r], "{:.1f}"),
                           spread([x[3] for x in r], "{:.1f}"),
                           spread([x[5] for x in r], "{:.1f}"),
                           spread([x[6] for x in k], "{:.1f}") if k else "-",
                           spread([x[2] for x in k], "{:.1f}") if k else "-",
                           int(sum(x[6] for x in r))))
    return out


def decide_section(path):
    out = ["## One routing decision (`bench/decide.sh`, callgrind)", "",
           "Instructions per decision, decode included, Kafka excluded; "
           "baseline: cJSON parsing and freeing the same bytes. "
           "Deterministic, so one run. Target (issue 13): <= 20,000 "
           "instructions for the small task.", "",
           "| case | bytes | tier | instructions | baseline | ratio |",
           "|---|---|---|---|---|---|"]
    if os.path.exists(path):
        for line in open(path):
            kv = dict(re.findall(r"(\S+)=(\S+)", line))
            if line.startswith("decide "):
                out.append("| {} | {} | {} | {} | {} | {} |".format(
                    line.split()[1], kv.get("bytes"), kv.get("tier"),
                    kv.get("instr/decision"), kv.get("baseline"),
                    kv.get("ratio")))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--commit", default="unknown")
    a = ap.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = ["# kascade benchmark results", "",
             "Written by `make bench` (bench/all.sh); do not edit by hand.",
             "", "- machine: " + machine(),
             "- date: " + now.strftime("%Y-%m-%d %H:%M UTC"),
             "- commit: " + a.commit,
             "- command: `make bench` (BENCH_REPEAT={})".format(a.repeat),
             "- load average when written (1, 5, 15 min): {:.1f}, {:.1f}, "
             "{:.1f}: other work on the machine moves absolute figures; "
             "the ratios compare runs made side by side".format(
                 *os.getloadavg()),
             "- figures: mean (min..max) over the runs; each baseline is "
             "measured in the same run as its figure", ""]
    lines += router_section(os.path.join(a.dir, "router.out")) + [""]
    lines += worker_section(sorted(glob.glob(
        os.path.join(a.dir, "worker.*.out")))) + [""]
    lines += latency_section(sorted(glob.glob(
        os.path.join(a.dir, "latency.*.out")))) + [""]
    lines += decide_section(os.path.join(a.dir, "decide.out"))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
