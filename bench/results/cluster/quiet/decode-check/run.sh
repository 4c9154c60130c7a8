#!/usr/bin/env bash
# Why does the model predict two-rank decode 24-26% fast on a quiet machine? Same 0.6B f32 avx2
# decode (1 thread per process, 128 + 16 tokens), in one window under /tmp/cpu.lock: one process
# alone, two copies at once (the twin calibration), and two MPI ranks on this host (shared memory,
# no TCP) split by sequence (each rank runs every step whole: two copies that also call MPI) and
# by heads.
set -u
cd "$(dirname "$0")"
B=${BIN:-/work/bin15/benchmark_qwen3}
log=commands.log
args="--threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
step() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*" >> $log; }
flock /tmp/cpu.lock bash -c "
  $(declare -f step); log=$log
  step solo; $B --method avx2 $args --json solo.jsonl > /dev/null
  step twin; ( $B --method avx2 $args --json twin-a.jsonl > /dev/null & $B --method avx2 $args --json twin-b.jsonl > /dev/null & wait )
  step mpi sequence; mpirun -np 2 --bind-to none $B --method mpi+avx2 --parallel sequence $args --json mpi.jsonl > /dev/null
  step mpi heads; mpirun -np 2 --bind-to none $B --method mpi+avx2 --parallel heads $args --json mpi.jsonl > /dev/null
  step solo again; $B --method avx2 $args --json solo.jsonl > /dev/null
  step done"
