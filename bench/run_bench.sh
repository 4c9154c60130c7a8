#!/usr/bin/env bash
# make bench: kernel microbenchmarks, then an end-to-end sweep of benchmark_qwen3 on the synthetic
# Qwen3-0.6B (methods x attention x prompt lengths x threads, prefill and decode), then a Markdown
# summary. Usage: bench/run_bench.sh BENCH_KERNELS BENCHMARK_QWEN3 OUT_DIR  (BENCH_KERNELS "-" skips them)
# Environment: METHODS, WEIGHTS, ATTENTIONS, PROMPT_LENS, THREADS, PHASES, ITERS override the grid;
# method and weight combinations the CPU or kernels cannot run are skipped.
set -euo pipefail
kernels=$1 tool=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
methods=${METHODS:-"baseline avx2 avx512"}
weights=${WEIGHTS:-"f32 bf16"}
attentions=${ATTENTIONS:-"standard streaming"}
lens=${PROMPT_LENS:-"32 128 512"}
threads=${THREADS:-"1 2"}
phases=${PHASES:-"prefill decode"}
iters=${ITERS:-3}

if [ "$kernels" != - ]; then
  echo "== kernel microbenchmarks ==" >&2
  "$kernels" --csv > "$out/kernels.csv"
  "$kernels" | tee "$out/kernels.txt" >&2
fi

echo "== end-to-end sweep ==" >&2
jsonl="$out/e2e.jsonl"
: > "$jsonl"
for phase in $phases; do
  for method in $methods; do
    for w in $weights; do
      # bf16 needs a bf16 kernel: AVX512_BF16 for avx512 (baseline's plain loops are too slow to sweep).
      [ "$w" = bf16 ] && [ "$method" != avx512 ] && continue
      [ "$w" = bf16 ] && ! grep -q avx512_bf16 /proc/cpuinfo && continue
      [ "$method" = avx512 ] && ! grep -q avx512f /proc/cpuinfo && continue
      for len in $lens; do
        # The baseline's plain loops take minutes per pass at 512 tokens; it is measured up to 128.
        if [ "$method" = baseline ] && [ "$len" -gt 128 ]; then continue; fi
        for attention in $attentions; do
          for t in $threads; do
            echo "$phase $method $w $attention prompt=$len threads=$t" >&2
            extra=()
            [ "$phase" = decode ] && extra=(--gen-len 16)
            "$tool" --phase "$phase" --method "$method" --weights "$w" --attention "$attention" --prompt-len "$len" \
              --threads "$t" --iters "$iters" --warmup 1 --json "$jsonl" "${extra[@]}" > /dev/null
          done
        done
      done
    done
  done
done
python3 "$here/summarize.py" "$jsonl" > "$out/summary.md"
cat "$out/summary.md"
