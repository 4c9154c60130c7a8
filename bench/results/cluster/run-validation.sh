#!/usr/bin/env bash
# validation queue: single-process profiles, then two-host runs per link rate
set -u
cd /work/wt-cluster
out=bench/results/cluster
B=$PWD/.build/release/benchmark_qwen3
log=$out/commands.log
run() { echo "$(date +%T) $*" >> $log; "$@"; }
run $B --method avx2 --threads 1 --phase prefill --prompt-len 64,128,256,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-1proc.jsonl > /dev/null 2>> $out/errors.log
run $B --method avx2 --threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-1proc.jsonl > /dev/null 2>> $out/errors.log
for rate in 1gbit 10gbit; do
  export LINK_RATE=$rate LINK_JSON=$out/link-$rate.jsonl TIMEOUT=900
  run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase prefill --prompt-len 128,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
  LINK_PROBE=0 run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
done
echo "$(date +%T) done" >> $log
