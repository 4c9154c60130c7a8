#!/usr/bin/env python3
"""Markdown table of benchmark_qwen3 --json results: median tokens/s per configuration."""
import json
import sys


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    if not rows:
        sys.exit(f"{path}: no results")
    first = rows[0]
    print(f"Machine: {first['cpu']} [{first['cpu_features']}], commit {first['commit']}, "
          f"model {'synthetic ' if first['synthetic'] else ''}{first['config']['layers']} layers / "
          f"hidden {first['config']['hidden']}, {first['checkpoint_dtype']} checkpoint, f32 compute.\n")
    print("| test | method | attention | threads | median ms | tokens/s | stddev ms | samples |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["timing"]
        print(f"| {r['test']} (prompt {r['prompt_len']}) | {r['method']} | {r['attention']} | {r['threads']} | "
              f"{t['median_ms']:.1f} | {r['tokens_per_s']:.1f} | {t['stddev_ms']:.1f} | {len(t['samples_ms'])} |")


if __name__ == "__main__":
    main(sys.argv[1])
