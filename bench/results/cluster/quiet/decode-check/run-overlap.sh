#!/usr/bin/env bash
# Do two processes decoding at the same moment slow each other's decode GEMMs (one memory system for
# both emulated hosts)? 0.6B f32 avx2, 1 thread per process, 128-token prompt and 64 decode steps per
# iteration, so two copies started together spend most of their time decoding side by side (the
# quiet round's twin copies decoded 16 steps between prefills, and their phases could interleave).
# One window under /tmp/cpu.lock: one process alone, two copies at once, two MPI ranks on this host
# by sequence (each rank runs every step whole), one alone again.
set -u
cd "$(dirname "$0")"
B=${BIN:-/work/bin15/benchmark_qwen3}
log=commands.log
args="--threads 1 --phase decode --prompt-len 128 --gen-len 64 --iters 3 --warmup 1 --profile --quiet -o jsonl"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
step() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*; busiest: $(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,3p | tr -s ' ' | tr '\n' ';')" >> $log; }
flock /tmp/cpu.lock bash -c "
  $(declare -f step); log=$log
  step overlap: solo; $B --method avx2 $args --json overlap-solo.jsonl > /dev/null
  step overlap: twin; ( $B --method avx2 $args --json overlap-twin-a.jsonl > /dev/null & $B --method avx2 $args --json overlap-twin-b.jsonl > /dev/null & wait )
  step overlap: mpi sequence; mpirun -np 2 --bind-to none $B --method mpi+avx2 --parallel sequence $args --json overlap-mpi.jsonl > /dev/null
  step overlap: solo again; $B --method avx2 $args --json overlap-solo.jsonl > /dev/null
  step overlap: done"
