#!/usr/bin/env bash
# MPI prefill (or decode) benchmark of Qwen3, standard vs streaming attention, side by side.
#   ./run_mpi_benchmark.sh                                  # 2 processes, 128 tokens, prefill
#   NUM_PROCS=4 PROMPT_LEN=256 ITERS=10 ./run_mpi_benchmark.sh
# Settings (environment): NUM_PROCS (2), PROMPT_LEN (128), ITERS (5), NUM_THREADS (OpenMP threads per
# process; default: the host's cores shared by the processes), METHOD (mpi+avx2; or mpi for the plain
# loops, or mpi+avx512), WEIGHTS (f32, bf16, q8_0 or q4_0), PHASE (prefill or decode), MODEL_PATH (default: the
# built-in synthetic Qwen3-0.6B), PARALLEL (heads or sequence), MPIRUN (the launcher; default mpirun),
# MPIRUN_ARGS (extra mpirun options, e.g. a hostfile).
set -euo pipefail
cd "$(dirname "$0")"

NUM_PROCS=${NUM_PROCS:-2}
PROMPT_LEN=${PROMPT_LEN:-128}
ITERS=${ITERS:-5}
METHOD=${METHOD:-mpi+avx2}
PHASE=${PHASE:-prefill}
WEIGHTS=${WEIGHTS:-f32}
NUM_THREADS=${NUM_THREADS:-}
MODEL_PATH=${MODEL_PATH:-}
PARALLEL=${PARALLEL:-heads}
MPIRUN=${MPIRUN:-mpirun}

scripts/install-deps.sh
if ! command -v "$MPIRUN" >/dev/null 2>&1; then
  echo "run_mpi_benchmark.sh: error: $MPIRUN not found; install Open MPI (scripts/install-deps.sh installs openmpi-bin) or set MPIRUN to its path" >&2
  exit 1
fi
swift build -c release --product benchmark_qwen3 >&2
tool=.build/release/benchmark_qwen3

# Hybrid MPI+OpenMP: Open MPI must not pin each rank to one core, or its OpenMP threads share it.
launcher=("$MPIRUN" --bind-to none -np "$NUM_PROCS")
[ "$(id -u)" -eq 0 ] && launcher+=(--allow-run-as-root)
cores=$(nproc)
if [ "$NUM_PROCS" -gt "$cores" ]; then
  echo "warning: $NUM_PROCS processes on $cores cores: oversubscribed, the timings below are meaningless" >&2
  launcher+=(--oversubscribe)
fi
# shellcheck disable=SC2206
launcher+=(${MPIRUN_ARGS:-})

args=(--method "$METHOD" --weights "$WEIGHTS" --parallel "$PARALLEL" --phase "$PHASE" --prompt-len "$PROMPT_LEN" --iters "$ITERS")
[ -n "$NUM_THREADS" ] && args+=(--threads "$NUM_THREADS")
[ -n "$MODEL_PATH" ] && args+=(--model "$MODEL_PATH")

median() { awk '/^Per iteration: median/ { print $4 }' "$1"; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
source bench/settle.sh
for attention in standard streaming; do
  # The run before (or the build) freed its memory as it exited; wait until the host has taken it
  # back, or the next run's first iterations are timed while the vCPUs stall (bench/settle.sh).
  settle_freed_memory
  echo "== $attention attention: ${launcher[*]} $tool ${args[*]} --attention $attention"
  "${launcher[@]}" "$tool" "${args[@]}" --attention "$attention" | tee "$out/$attention.txt"
  echo
done

standard=$(median "$out/standard.txt")
streaming=$(median "$out/streaming.txt")
tokens=$PROMPT_LEN
[ "$PHASE" = decode ] && tokens=32
echo "============================================"
echo "  Standard vs streaming ($NUM_PROCS processes, $METHOD, $PHASE, prompt $PROMPT_LEN)"
echo "============================================"
awk -v a="$standard" -v b="$streaming" -v n="$tokens" 'BEGIN {
  printf "standard : median %.2f ms per iteration (%.2f tokens/sec)\n", a, n / a * 1000
  printf "streaming: median %.2f ms per iteration (%.2f tokens/sec)\n", b, n / b * 1000
  printf "streaming is %.2fx the speed of standard\n", a / b
}'
