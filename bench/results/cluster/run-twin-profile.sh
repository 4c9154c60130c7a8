#!/usr/bin/env bash
# Single-process --profile rows taken while a twin copy runs beside them: each process then gets what
# one rank of a two-rank run gets on this 2-core machine (a core shared with the other engineers'
# jobs, and half the memory bandwidth), so these rates calibrate the model for this machine's
# validation runs; profile-1proc.jsonl (one process alone) is the dedicated-node calibration.
set -u
cd /work/wt-cluster
out=bench/results/cluster
B=$PWD/.build/release/benchmark_qwen3
for copy in a b; do
  ( $B --method avx2 --threads 1 --phase prefill --prompt-len 64,128,256,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-twin-$copy.jsonl > /dev/null
    $B --method avx2 --threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-twin-$copy.jsonl > /dev/null ) &
done
wait
