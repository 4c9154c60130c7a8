#!/usr/bin/env bash
# Per-layer compute of the projection (issue 15, item 5): single-process --profile rows of 2-layer
# synthetic checkpoints at Qwen3-8B's and Qwen3-32B's shapes (and the built-in Qwen3-0.6B), bf16
# weights, avx512 (vdpbf16ps), 2 threads: the whole of this machine. bench/scaling_model scales them
# to the real layer counts with --config (configs/). Every measurement holds /tmp/cpu.lock, the
# lock the machine's other benchmark runs take, so no two measurements overlap.
#   CKPT=/work/ckpt15 BIN=/work/bin15/benchmark_qwen3 bench/results/cluster/projection/run-calibration.sh
set -u
cd "$(dirname "$0")"
B=${BIN:-/work/bin15/benchmark_qwen3}
CKPT=${CKPT:-/work/ckpt15}
log=commands.log
# The log line is written once the lock is held, with the load and the two busiest processes of the
# moment (top's second frame: its first counts since each process started). Other sessions' jobs are
# niced, but with sched_autogroup on nice does not reach across sessions, so a build elsewhere still
# takes its share of the two cores.
run() { flock /tmp/cpu.lock bash -c 'echo "$(date +%T) load $(cut -d" " -f1 /proc/loadavg) busiest: $(top -b -n 2 -d 0.5 -o %CPU | awk "/^ *PID/ {f++; next} f == 2 && n < 2 {print \$9\"% \"\$12; n++}" | tr "\n" " ") $*" >> '$log'; exec "$@"' _ "$@"; }
if [ ! -d "$CKPT/qwen3-8b-2l" ]; then
  nice -n 19 $B generate-synthetic --out $CKPT/qwen3-8b-2l --layers 2 --hidden 4096 --heads 32 --kv-heads 8 --head-dim 128 --intermediate 12288
fi
if [ ! -d "$CKPT/qwen3-32b-2l" ]; then
  nice -n 19 $B generate-synthetic --out $CKPT/qwen3-32b-2l --layers 2 --hidden 5120 --heads 64 --kv-heads 8 --head-dim 128 --intermediate 25600
fi
common="--method avx512 --weights bf16 --threads 2 --iters 3 --warmup 1 --profile --quiet -o jsonl"
for m in 8b 32b 0.6b; do
  model=(--model $CKPT/qwen3-$m-2l); [ $m = 0.6b ] && model=()
  run $B "${model[@]}" $common --phase prefill --prompt-len 16,64,128,256,512 --json rows-$m.jsonl > /dev/null
  run $B "${model[@]}" $common --phase decode --prompt-len 128 --gen-len 16 --json rows-$m.jsonl > /dev/null
done
# Decode at a long context too: attention's decode rate at 128 keys is mostly per-call overhead
# (1-2 GB/s), not its streaming rate, so the model takes a context's rate from the nearest row.
for m in 8b 32b 0.6b; do
  model=(--model $CKPT/qwen3-$m-2l); [ $m = 0.6b ] && model=()
  run $B "${model[@]}" $common --phase decode --prompt-len 2048 --gen-len 16 --json rows-$m.jsonl > /dev/null
done
echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) done" >> $log
