#!/usr/bin/env bash
# The quiet round's decode validation again, in one quiet window under /tmp/cpu.lock: the solo
# calibration row, the 1 Gbit/s two-host decode runs (heads and sequence), the solo row again.
#   bench/scaling_model --rows rerun-solo.jsonl --comm ../link-1gbit.jsonl --compare rerun-measured-1gbit.jsonl
set -u
cd "$(dirname "$0")"
B=${BIN:-/work/bin15/benchmark_qwen3}
root=$(cd ../../../../.. && pwd)
log=commands.log
args="--threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl"
step() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*; busiest: $(top -b -n 1 -o %CPU | sed -n 8,9p | awk '{print $9"% "$12}' | tr '\n' ';')" >> $log; }
flock /tmp/cpu.lock bash -c "
  $(declare -f step); log=$log
  step rerun: solo; $B --method avx2 $args --json rerun-solo.jsonl > /dev/null
  step rerun: 1gbit decode; LINK_RATE=1gbit LINK_PROBE=0 TIMEOUT=300 $root/Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --parallel heads,sequence $args --json $PWD/rerun-measured-1gbit.jsonl > /dev/null
  step rerun: solo again; $B --method avx2 $args --json rerun-solo.jsonl > /dev/null
  step rerun: done"
