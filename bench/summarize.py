#!/usr/bin/env python3
"""Markdown tables of benchmark_qwen3 --json results.

summarize.py RESULTS.jsonl            one row per run: median tokens/s per configuration
summarize.py --scaling RESULTS.jsonl  process scaling against the first run (the baseline row)
"""
import json
import sys


def machine_line(rows):
    r = rows[0]
    model = r.get("model_name") or f"{r['config']['layers']} layers / hidden {r['config']['hidden']}"
    commits = ", ".join(sorted({x["commit"] for x in rows}))
    return (f"Machine: {r['cpu']} [{r['cpu_features']}], commit {commits}, {r.get('build', 'release')} build, "
            f"model {model}{' (synthetic weights)' if r['synthetic'] and 'synthetic' not in model else ''}, "
            f"{r['checkpoint_dtype']} checkpoint.\n")


def attention(r):
    return f"{r['attention']} {r['q_block']}/{r['kv_block']}" if "q_block" in r else r["attention"]


def runs(rows):
    print("| test | prompt | method | weights | attention (q/kv block) | parallel | procs x threads | median ms | mean ms "
          "| stddev ms | min..max ms | tokens/s | TTFT ms | GFLOP/s | samples |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["timing"]
        ttft = r.get("ttft_ms", r["prefill"]["median_ms"])
        gflops = f"{r['gflops']:.1f}" if "gflops" in r else ""
        print(f"| {r['test']} | {r['prompt_len']} | {r['method']} | {r.get('weights', 'f32')} | {attention(r)} | {r.get('parallel', '')} | "
              f"{r['procs']} x {r['threads']} | {t['median_ms']:.1f} | {t['mean_ms']:.1f} | {t['stddev_ms']:.1f} | "
              f"{t['min_ms']:.1f}..{t['max_ms']:.1f} | {r['tokens_per_s']:.1f} | {ttft:.1f} | {gflops} | "
              f"{len(t['samples_ms'])} |")


def scaling(rows):
    base = rows[0]
    print(f"Reference: {base['method']}, 1 process x {base['threads']} threads.\n")
    print("| procs x threads | method | parallel | median ms | tokens/s | vs reference | vs 1 MPI process | MPI share (max rank) |")
    print("|---|---|---|---|---|---|---|---|")
    one = next((r for r in rows if r["procs"] == 1 and r["method"].startswith("mpi")), base)
    for r in rows:
        t = r["timing"]["median_ms"]
        total = sum(r["timing"]["samples_ms"])
        share = max((k["mpi_ms"] for k in r.get("ranks", [])), default=0) / total * 100 if total else 0
        print(f"| {r['procs']} x {r['threads']} | {r['method']} | {r.get('parallel', '')} | {t:.1f} | {r['tokens_per_s']:.1f} | "
              f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['tokens_per_s'] / one['tokens_per_s']:.2f}x | "
              f"{share:.1f}% |")


def main(args):
    mode = runs
    if args and args[0] == "--scaling":
        mode, args = scaling, args[1:]
    rows = [json.loads(line) for line in open(args[0]) if line.strip()]
    if not rows:
        sys.exit(f"{args[0]}: no results")
    print(machine_line(rows))
    mode(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
