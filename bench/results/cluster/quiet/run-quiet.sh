#!/usr/bin/env bash
# Third round, started when the other engineers' jobs had stopped (load average 1.5, nothing else
# running in top): the two-host runs at 1, 2, 5, 10 Gbit/s, then the solo and twin calibrations.
set -u
cd /work/wt-cluster
out=bench/results/cluster/quiet
B=$PWD/.build/release/benchmark_qwen3
log=$out/commands.log
run() { echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*" >> $log; "$@"; }
for rate in 1gbit 10gbit 2gbit 5gbit; do
  export LINK_RATE=$rate LINK_JSON=$out/link-$rate.jsonl TIMEOUT=900
  run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase prefill --prompt-len 128,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
  LINK_PROBE=0 run Tests/multihost/run-two-hosts.sh $B --method mpi+avx2 --threads 1 --parallel heads,sequence --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/measured-$rate.jsonl > /dev/null 2>> $out/probe-$rate.txt
done
unset LINK_RATE LINK_JSON
echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) twin: two concurrent copies of the solo commands below, rows in profile-twin-{a,b}.jsonl" >> $log
for copy in a b; do
  ( $B --method avx2 --threads 1 --phase prefill --prompt-len 64,128,256,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-twin-$copy.jsonl > /dev/null
    $B --method avx2 --threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-twin-$copy.jsonl > /dev/null ) &
done
wait
run $B --method avx2 --threads 1 --phase prefill --prompt-len 64,128,256,512 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-1proc.jsonl > /dev/null
run $B --method avx2 --threads 1 --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile --quiet -o jsonl --json $out/profile-1proc.jsonl > /dev/null
echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) done" >> $log
