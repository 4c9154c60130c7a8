#!/usr/bin/env python3
"""Side-by-side table of /work/perf/{before,after}.jsonl: per test, the median over passes of each
pass's median tokens/s, the best pass, and after/before of the medians."""
import json, statistics, collections
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for side in ("before", "after"):
    for line in open(f"{side}.jsonl"):
        r = json.loads(line)
        key = (r["phase"], r["method"], r["weights"], r["test"])
        tps = r["tokens_per_s"]  # decode rows: decode tokens/s
        rows[key][side].append(tps)
print("| phase | method | weights | test | before tok/s (median; best) | after tok/s (median; best) | after/before | passes |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    b, a = rows[key]["before"], rows[key]["after"]
    if not b or not a: continue
    mb, ma = statistics.median(b), statistics.median(a)
    print(f"| {' | '.join(key)} | {mb:.1f}; {max(b):.1f} | {ma:.1f}; {max(a):.1f} | {ma/mb:.2f} | {min(len(a), len(b))} |")
