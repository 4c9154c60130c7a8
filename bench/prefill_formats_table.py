#!/usr/bin/env python3
"""Prints prefill tokens/s per weight format from bench/prefill_formats.sh's rows: the median over
rounds (min-max), and the median over rounds of each round's ratio to the first format listed.
Several OUT folders pool their rounds: prefill_formats_table.py OUT [OUT ...]"""
import collections
import json
import statistics
import sys

rows = [json.loads(line) for out in sys.argv[1:] for line in open(f"{out}/rows.jsonl")]
formats = list(dict.fromkeys(r["weights"] for r in rows))
tests = list(dict.fromkeys((r["kv_dtype"], r["prompt_len"]) for r in rows))
speed = collections.defaultdict(list)  # (format, kv, len) -> tokens/s per round, in round order
for r in rows:
    speed[(r["weights"], r["kv_dtype"], r["prompt_len"])].append(r["tokens_per_s"])
rounds = len(speed[(formats[0],) + tests[0]])
commits = sorted({r["commit"] for r in rows})
print(f"Prefill tokens/s, median over {rounds} rounds (min-max); each round one process running every "
      f"row; commit {', '.join(commits)}")
header = [f"pp{n}, {kv} KV" for kv, n in tests]
print("| weights | " + " | ".join(header) + " |")
print("|---" * (len(header) + 1) + "|")
for f in formats:
    cells = []
    for kv, n in tests:
        v = speed[(f, kv, n)]
        cells.append(f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})")
    print(f"| {f} | " + " | ".join(cells) + " |")
print()
print(f"| ratio to {formats[0]}, median of the rounds' ratios (min-max) | " + " | ".join(header) + " |")
print("|---" * (len(header) + 1) + "|")
for f in formats[1:]:
    cells = []
    for kv, n in tests:
        ratios = [a / b for a, b in zip(speed[(f, kv, n)], speed[(formats[0], kv, n)])]
        cells.append(f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}-{max(ratios):.2f})")
    print(f"| {f} / {formats[0]} | " + " | ".join(cells) + " |")
