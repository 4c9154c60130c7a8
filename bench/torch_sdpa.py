#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on benchmark_mpi_attention's shapes, for comparison.

Causal prefill of S queries over S keys (and optionally a decode step: one query at S-1 over S
keys), grouped-query heads (--heads/--kv-heads), head_dim --head-dim, in float32 and bfloat16,
with --threads intra-op threads. --gqa repeat (default) expands K and V to every query head before
the timed calls, which lets PyTorch take its fused flash-attention CPU kernel (enable_gqa=True
falls back to the unfused math path, 2-3x slower here): the faster of PyTorch's two ways. Prints one row per (phase, S, dtype): the median and
min of --iters timed calls after --warmup, and GFLOP/s over the causal part only (prefill
4 * head_dim * heads * S * (S + 1) / 2, decode 4 * head_dim * heads * S), as the attention tool
counts them. PyTorch is a peer measured against, never a dependency: `pip install torch`.

    python3 bench/torch_sdpa.py --seq-len 2048,4096 --dtype float32,bfloat16 --threads 2
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-len", default="512,2048,4096")
    p.add_argument("--phase", default="prefill", help="prefill, decode, or both (comma-separated)")
    p.add_argument("--dtype", default="float32,bfloat16")
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--gqa", default="repeat", choices=["repeat", "native"],
                   help="repeat: K/V expanded to every query head outside the timing; native: enable_gqa=True")
    p.add_argument("--jsonl", action="store_true", help="one JSON object per row instead of a Markdown table")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    for s in [int(x) for x in a.seq_len.split(",")]:
        for phase in a.phase.split(","):
            for name in a.dtype.split(","):
                dtype = getattr(torch, name)
                t = s if phase == "prefill" else 1
                q = torch.rand(1, a.heads, t, a.head_dim, dtype=torch.float32).mul(2).sub(1).to(dtype)
                k = torch.rand(1, a.kv_heads, s, a.head_dim, dtype=torch.float32).mul(2).sub(1).to(dtype)
                v = torch.rand(1, a.kv_heads, s, a.head_dim, dtype=torch.float32).mul(2).sub(1).to(dtype)
                # Decode: the one query sees every key, so no mask is needed.
                causal = phase == "prefill"
                native = a.gqa == "native"
                if not native:
                    k = k.repeat_interleave(a.heads // a.kv_heads, dim=1)
                    v = v.repeat_interleave(a.heads // a.kv_heads, dim=1)
                samples = []
                with torch.inference_mode():
                    for i in range(a.warmup + a.iters):
                        start = time.perf_counter()
                        F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=native)
                        ms = (time.perf_counter() - start) * 1e3
                        if i >= a.warmup:
                            samples.append(ms)
                per_key = 4 * a.head_dim * a.heads
                flops = per_key * s * (s + 1) / 2 if phase == "prefill" else per_key * s
                median = statistics.median(samples)
                rows.append({"peer": "pytorch", "torch": torch.__version__, "op": "scaled_dot_product_attention",
                             "phase": phase, "seq_len": s, "dtype": name, "threads": a.threads, "gqa": a.gqa,
                             "heads": a.heads, "kv_heads": a.kv_heads, "head_dim": a.head_dim,
                             "median_ms": median, "min_ms": min(samples), "samples_ms": samples,
                             "gflops": flops / (median * 1e6)})
    if a.jsonl:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"PyTorch {torch.__version__} scaled_dot_product_attention, {a.heads}/{a.kv_heads} heads, "
          f"d{a.head_dim}, GQA {a.gqa}, {a.threads} threads, median of {a.iters}")
    print("| phase | S | dtype | median ms | min ms | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['phase']} | {r['seq_len']} | {r['dtype']} | {r['median_ms']:.3f} | {r['min_ms']:.3f} | {r['gflops']:.1f} |")


if __name__ == "__main__":
    main()
