#!/usr/bin/env bash
# make bench: kernel microbenchmarks, then an end-to-end sweep of benchmark_qwen3 on the synthetic
# Qwen3-0.6B (methods x attention x prompt lengths x threads, prefill and decode), then a Markdown
# summary, a CSV and the figures of bench/plot.
# Usage: bench/run_bench.sh BENCH_KERNELS BENCHMARK_QWEN3 OUT_DIR  (BENCH_KERNELS "-" skips them)
# Environment: METHODS, WEIGHTS, ATTENTIONS, PROMPT_LENS, THREADS, PHASES (space- or comma-separated),
# ITERS, WARMUP, GEN_LEN override the grid, KERNEL_ARGS is passed to bench_kernels (e.g. --quick), MODEL_PATH picks a checkpoint (default: synthetic Qwen3-0.6B); methods and weights the CPU or kernels cannot run are
# left out. Writes OUT_DIR/e2e.jsonl (every row), e2e.csv, summary.md, figures/*.png and, with the
# kernels, kernels.csv and kernels.txt.
set -euo pipefail
kernels=$1 tool=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
list() { echo "$1" | tr ' ' ',' | sed 's/,,*/,/g; s/^,//; s/,$//'; }
methods=$(list "${METHODS:-baseline avx2 avx512}")
weights=$(list "${WEIGHTS:-f32 bf16}")
attentions=$(list "${ATTENTIONS:-standard streaming}")
lens=$(list "${PROMPT_LENS:-32 128 512}")
threads=$(list "${THREADS:-1 2}")
phases=$(list "${PHASES:-prefill decode}")
iters=${ITERS:-3}
warmup=${WARMUP:-1}
gen_len=${GEN_LEN:-16}
model=()
[ -n "${MODEL_PATH:-}" ] && model=(--model "$MODEL_PATH")

if [ "$kernels" != - ]; then
  echo "== kernel microbenchmarks ==" >&2
  # One run, both files: the text as it goes, the same measurements as CSV.
  # shellcheck disable=SC2086
  "$kernels" ${KERNEL_ARGS:-} --csv-file "$out/kernels.csv" | tee "$out/kernels.txt" >&2
fi

has() { case ",$1," in *",$2,"*) return 0;; *) return 1;; esac; }
cpu_has() { grep -qw "$1" /proc/cpuinfo; }

# Which methods run, with which weights: f32 everywhere the CPU allows; bf16 needs AVX512_BF16 and the
# avx512 kernels (avx2 has none; baseline's plain loops are too slow to sweep). The baseline takes
# minutes per pass at 512 tokens, so it gets the prompt lengths up to 128 in a sweep of its own.
fast=()
has "$methods" avx2 && cpu_has avx2 && fast+=(avx2)
has "$methods" avx512 && cpu_has avx512f && fast+=(avx512)
short=$(echo "$lens" | tr ',' '\n' | awk '$1 <= 128' | paste -sd, -)
sweeps=()
[ ${#fast[@]} -gt 0 ] && has "$weights" f32 && sweeps+=("--method $(IFS=,; echo "${fast[*]}") --weights f32 --prompt-len $lens")
has "$methods" avx512 && has "$weights" bf16 && cpu_has avx512_bf16 && sweeps+=("--method avx512 --weights bf16 --prompt-len $lens")
has "$methods" baseline && has "$weights" f32 && [ -n "$short" ] && sweeps+=("--method baseline --weights f32 --prompt-len $short")

echo "== end-to-end sweep ==" >&2
jsonl="$out/e2e.jsonl" csv="$out/e2e.csv"
: > "$jsonl"
rm -f "$csv"
for phase in ${phases//,/ }; do
  extra=()
  [ "$phase" = decode ] && extra=(--gen-len "$gen_len")
  for sweep in "${sweeps[@]}"; do
    # shellcheck disable=SC2086
    set -- $sweep
    echo "$phase: $tool $* --attention $attentions --threads $threads --iters $iters --warmup $warmup ${extra[*]}" >&2
    part=$(mktemp)
    "$tool" "${model[@]}" --phase "$phase" "$@" --attention "$attentions" --threads "$threads" --iters "$iters" --warmup "$warmup" \
      "${extra[@]}" --json "$jsonl" -o csv > "$part"
    # One CSV: the header once, then every sweep's rows (the tool writes the same columns each time).
    if [ -s "$csv" ]; then tail -n +2 "$part" >> "$csv"; else cat "$part" > "$csv"; fi
    rm -f "$part"
  done
done
python3 "$here/summarize.py" "$jsonl" > "$out/summary.md"
cat "$out/summary.md"
plot_args=(--out "$out/figures")
[ -s "$out/kernels.csv" ] && plot_args+=(--kernels "$out/kernels.csv")
if "$here/plot" "$jsonl" "${plot_args[@]}" > "$out/figures.txt"; then
  echo "figures:" >&2
  cat "$out/figures.txt" >&2
else
  echo "run_bench.sh: no figures (bench/plot failed; see above)" >&2
fi
