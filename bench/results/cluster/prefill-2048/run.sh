#!/usr/bin/env bash
# Issue 15, item 4's missing rows: prefill of 2048 tokens on shaped links (1, 2, 5 and 10 Gbit/s, one rank
# per namespace, heads and sequence), with this hour's single-process calibration rows at the same
# lengths. Every run under the CPU lock other measurements take (/tmp/cpu.lock), so none overlapped.
set -u
cd "$(dirname "$0")/../../../.."
out=bench/results/cluster/prefill-2048
B=$PWD/.build/release/benchmark_qwen3
log=$out/commands.log
run() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*" >> $log; flock /tmp/cpu.lock "$@"; }
# RATES: the links to run (all four by default; this folder's rows came from "1gbit 10gbit" with the
# calibrations, then "2gbit 5gbit" with SOLO=0).
if [ "${SOLO:-1}" = 1 ]; then
  run $B --method avx2 --threads 1 --phase prefill --prompt-len 512,1024,2048 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-1proc.jsonl > /dev/null
fi
for rate in ${RATES:-1gbit 10gbit 2gbit 5gbit}; do
  export LINK_RATE=$rate LINK_JSON=$out/link-$rate.jsonl TIMEOUT=1200
  run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase prefill --prompt-len 2048 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
done
unset LINK_RATE LINK_JSON
[ "${SOLO:-1}" = 1 ] && run $B --method avx2 --threads 1 --phase prefill --prompt-len 1024,2048 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-1proc-after.jsonl > /dev/null
echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) done" >> $log
