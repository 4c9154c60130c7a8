#!/usr/bin/env bash
# Before/after, alternating: BIN_DIR/before/benchmark_qwen3 (a release build of fe39678, before
# issue 11) and BIN_DIR/after/benchmark_qwen3 (this commit's). Each pass runs the same sweeps with
# each binary, one after the other; rows are appended to OUT/before.jsonl and OUT/after.jsonl.
set -u
out=${OUT:-.}
passes=${PASSES:-4}
for pass in $(seq 1 $passes); do
  for side in before after; do
    bin=${BIN_DIR:?}/$side/benchmark_qwen3
    env=(); [ $side = before ] && env=(QWEN3_BENCH_COMMIT=fe39678)
    env "${env[@]}" $bin --method avx2,avx512 --weights f32 --prompt-len 32,128,512 --threads 2 --iters 3 --quiet -o jsonl >> $out/$side.jsonl
    env "${env[@]}" $bin --method avx512 --weights bf16 --prompt-len 32,128,512 --threads 2 --iters 3 --quiet -o jsonl >> $out/$side.jsonl
    env "${env[@]}" $bin --method avx512 --weights f32,bf16 --phase decode --prompt-len 128 --gen-len 32 --threads 2 --iters 2 --quiet -o jsonl >> $out/$side.jsonl
    echo "pass $pass $side done $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)" >> $out/progress.txt
  done
done
