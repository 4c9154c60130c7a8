#!/usr/bin/env python3
"""A model's decode rows at 128 and 2048 tokens of context stream the same weights through the same
GEMMs, so their GEMMs' GB/s should agree; the context changes only attention. Where the fastest GEMM
of one row streams 1.3x the other's or more, the slower row was measured in a slower minute of this
shared machine (its three iterations alike, so rerun-spread.py does not see it): it is measured again
once, and the new row replaces it. Same command and lock as run-calibration.sh.
  CKPT=/work/ckpt15 BIN=/work/bin15/benchmark_qwen3 bench/results/cluster/projection/rerun-decode-agreement.py"""
import glob
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
B = os.environ.get("BIN", "/work/bin15/benchmark_qwen3")
CKPT = os.environ.get("CKPT", "/work/ckpt15")
COMMON = "--method avx512 --weights bf16 --threads 2 --iters 3 --warmup 1 --profile --quiet -o jsonl".split()
LOG = ("flock /tmp/cpu.lock bash -c 'echo \"$(date +%T) load $(cut -d\" \" -f1 /proc/loadavg) $*\" >> "
       + os.path.join(HERE, "commands.log") + "; exec \"$@\"' _ ")


def stream_gbs(row):
    scale = row["mean_ms"] / row["median_ms"]
    return max(v.get("gbps", 0) * scale for k, v in row["profile"]["decode"].items() if k.startswith("gemm"))


for path in sorted(glob.glob(os.path.join(HERE, "rows-*.jsonl"))):
    name = os.path.basename(path)[len("rows-"):-len(".jsonl")]
    rows = [json.loads(l) for l in open(path) if l.strip()]
    decode = [i for i, r in enumerate(rows) if r["phase"] == "decode"]
    if len(decode) < 2:
        continue
    slow = min(decode, key=lambda i: stream_gbs(rows[i]))
    fast = max(decode, key=lambda i: stream_gbs(rows[i]))
    ratio = stream_gbs(rows[fast]) / stream_gbs(rows[slow])
    print(f"{name}: decode GEMMs {stream_gbs(rows[slow]):.0f} GB/s at {rows[slow]['prompt_len']}, "
          f"{stream_gbs(rows[fast]):.0f} at {rows[fast]['prompt_len']} ({ratio:.2f}x)")
    if ratio < 1.3:
        continue
    row = rows[slow]
    model = [] if name == "0.6b" else ["--model", f"{CKPT}/qwen3-{name}-2l"]
    args = [B] + model + COMMON + ["--phase", "decode", "--prompt-len", str(row["prompt_len"]),
                                   "--gen-len", str(row["gen_len"])]
    out = subprocess.run(LOG + " ".join(args), shell=True, capture_output=True, text=True, check=True).stdout
    rows[slow] = json.loads(out.strip().splitlines()[-1])
    print(f"  measured again: {stream_gbs(rows[slow]):.0f} GB/s")
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
