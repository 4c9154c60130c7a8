#!/usr/bin/env bash
# After run-validation.sh: bench_comm's full sweep (4 B .. 64 MiB, x4 steps) on each shaped link.
set -u
cd /work/wt-cluster
out=bench/results/cluster
until grep -q " done$" $out/commands.log; do sleep 5; done
for rate in 1gbit 10gbit unshaped; do
  if [ $rate = unshaped ]; then unset LINK_RATE; else export LINK_RATE=$rate; fi
  echo "$(date +%T) LINK_RATE=$rate LINK_PROBE=0 Tests/multihost/run-two-hosts.sh build-cluster/bench_comm --iters 10 --budget-ms 1500 --json $out/comm-$rate.jsonl" >> $out/commands.log
  LINK_PROBE=0 TIMEOUT=600 Tests/multihost/run-two-hosts.sh build-cluster/bench_comm --iters 10 --budget-ms 1500 --json $out/comm-$rate.jsonl > $out/comm-$rate.txt 2>&1
done
echo "$(date +%T) comm done" >> $out/commands.log
