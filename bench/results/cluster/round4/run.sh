#!/usr/bin/env bash
# Issue 15, item 4 in a quiet hour (the helpers' jobs done; each run under /tmp/cpu.lock): solo
# calibration rows, the two-host runs at 1, 2, 5 and 10 Gbit/s (prefill 128 and 512, decode 16
# after 128; heads and sequence), and the calibration again, so each run has rows from both sides.
set -u
cd "$(dirname "$0")/../../../.."
out=bench/results/cluster/round4
B=$PWD/.build/release/benchmark_qwen3
log=$out/commands.log
run() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*" >> $log; flock /tmp/cpu.lock "$@"; }
solo() {
  run $B --method avx2 --threads 1 --phase prefill --prompt-len 64,128,256,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/$1 > /dev/null
  run $B --method avx2 --threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/$1 > /dev/null
}
solo profile-1proc.jsonl
for rate in 1gbit 2gbit 5gbit 10gbit; do
  export LINK_RATE=$rate LINK_JSON=$out/link-$rate.jsonl TIMEOUT=900
  run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase prefill --prompt-len 128,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
  LINK_PROBE=0 run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
done
unset LINK_RATE LINK_JSON
solo profile-1proc-after.jsonl
echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) done" >> $log
