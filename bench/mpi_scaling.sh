#!/usr/bin/env bash
# Process scaling of the tensor-parallel prefill: the same prompt at 1, 2, 4... MPI processes, plus a
# one-process OpenMP run with as many threads as the machine has cores, side by side; Markdown out.
# Usage: bench/mpi_scaling.sh [BENCHMARK_QWEN3]   Environment: PROCS ("1 2 4"), PROMPT_LEN (256),
# ITERS (5), ATTENTION (streaming), METHOD (mpi+avx2), PARALLEL (heads; "heads,sequence" runs both at
# each process count), MCA (extra mpirun options), OUT (a folder: keep the rows as OUT/scaling.jsonl and
# draw OUT/scaling.png with bench/plot).
set -euo pipefail
tool=${1:-.build/release/benchmark_qwen3}
here=$(cd "$(dirname "$0")" && pwd)
procs=${PROCS:-"1 2 4"}
len=${PROMPT_LEN:-256}
iters=${ITERS:-5}
attention=${ATTENTION:-streaming}
method=${METHOD:-mpi+avx2}
parallel=${PARALLEL:-heads}
cores=$(nproc)
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  jsonl="$OUT/scaling.jsonl"
  : > "$jsonl"
else
  jsonl=$(mktemp)
  trap 'rm -f "$jsonl"' EXIT
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

single=avx2
[ "$method" = mpi ] && single=baseline
echo "one process, $cores threads" >&2
"$tool" --method "$single" --attention "$attention" --prompt-len "$len" --iters "$iters" --threads "$cores" --json "$jsonl" > /dev/null
for n in $procs; do
  threads=$(( cores / n )); [ "$threads" -lt 1 ] && threads=1
  extra=(); [ "$n" -gt "$cores" ] && extra=(--oversubscribe)
  echo "$n processes x $threads threads" >&2
  # shellcheck disable=SC2086
  mpirun -np "$n" --bind-to none "${extra[@]}" ${MCA:-} "$tool" --method "$method" --attention "$attention" \
    --parallel "$parallel" --prompt-len "$len" --iters "$iters" --threads "$threads" --json "$jsonl" > /dev/null
done
python3 "$here/summarize.py" --scaling "$jsonl"
[ -n "${OUT:-}" ] && "$here/plot" "$jsonl" --out "$OUT" >&2
exit 0
