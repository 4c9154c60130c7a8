#!/usr/bin/env python3
"""Markdown tables of benchmark_qwen3 --json results.

summarize.py RESULTS.jsonl            one row per run: median tokens/s per configuration
summarize.py --scaling RESULTS.jsonl  process scaling against the first run (the baseline row)
"""
import json
import sys


def machine_line(r):
    model = f"{'synthetic ' if r['synthetic'] else ''}{r['config']['layers']} layers / hidden {r['config']['hidden']}"
    return (f"Machine: {r['cpu']} [{r['cpu_features']}], commit {r['commit']}, model {model}, "
            f"{r['checkpoint_dtype']} checkpoint.\n")


def runs(rows):
    print("| test | method | weights | attention | procs x threads | median ms | tokens/s | stddev ms | samples |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["timing"]
        print(f"| {r['test']} | {r['method']} | {r.get('weights', 'f32')} | {r['attention']} | {r['procs']} x {r['threads']} | "
              f"{t['median_ms']:.1f} | {r['tokens_per_s']:.1f} | {t['stddev_ms']:.1f} | {len(t['samples_ms'])} |")


def scaling(rows):
    base = rows[0]
    print(f"Reference: {base['method']}, 1 process x {base['threads']} threads.\n")
    print("| procs x threads | method | median ms | tokens/s | vs reference | vs 1 MPI process | MPI share (max rank) |")
    print("|---|---|---|---|---|---|---|")
    one = next((r for r in rows if r["procs"] == 1 and r["method"].startswith("mpi")), base)
    for r in rows:
        t = r["timing"]["median_ms"]
        total = sum(r["timing"]["samples_ms"])
        share = max((k["mpi_ms"] for k in r.get("ranks", [])), default=0) / total * 100 if total else 0
        print(f"| {r['procs']} x {r['threads']} | {r['method']} | {t:.1f} | {r['tokens_per_s']:.1f} | "
              f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['tokens_per_s'] / one['tokens_per_s']:.2f}x | "
              f"{share:.1f}% |")


def main(args):
    mode = runs
    if args and args[0] == "--scaling":
        mode, args = scaling, args[1:]
    rows = [json.loads(line) for line in open(args[0]) if line.strip()]
    if not rows:
        sys.exit(f"{args[0]}: no results")
    print(machine_line(rows[0]))
    mode(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
