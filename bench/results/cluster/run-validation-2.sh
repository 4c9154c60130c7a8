#!/usr/bin/env bash
# Second round: 2 and 5 Gbit/s, each MPI run followed at once by a twin-process calibration at the
# same prompt lengths (profile-twin-RATE.jsonl), so the rates and the runs they predict share the
# machine's load of those minutes.
set -u
cd /work/wt-cluster
out=bench/results/cluster
B=$PWD/.build/release/benchmark_qwen3
log=$out/commands.log
run() { echo "$(date +%T) $*" >> $log; "$@"; }
for rate in 2gbit 5gbit; do
  export LINK_RATE=$rate LINK_JSON=$out/link-$rate.jsonl TIMEOUT=900
  run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase prefill --prompt-len 128,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
  LINK_PROBE=0 run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
  echo "$(date +%T) twin calibration for $rate: two concurrent copies of benchmark_qwen3 --method avx2 --threads 1 --profile (prefill 64,128,256,512; decode 128 +16), rows of copy a in profile-twin-$rate.jsonl" >> $log
  for copy in a b; do
    ( $B --method avx2 --threads 1 --phase prefill --prompt-len 64,128,256,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-twin-$rate-$copy.jsonl > /dev/null
      $B --method avx2 --threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-twin-$rate-$copy.jsonl > /dev/null ) &
  done
  wait
done
echo "$(date +%T) round 2 done" >> $log
