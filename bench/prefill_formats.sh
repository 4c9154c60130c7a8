#!/usr/bin/env bash
# prefill_formats.sh — prefill speed of the weight formats against each other, in rounds: each round
# is one process that runs every format, KV cache type and length in turn, so a round's ratios
# compare like with like on a host whose speed changes from process to process. Rows go to
# OUT/rows.jsonl with the commands in OUT/commands; bench/prefill_formats_table.py OUT prints the
# median over rounds of tokens/s and of each round's ratio to the first format.
# Each round starts once the last one's freed memory has been reported to the hypervisor (settle.sh).
#
#   ROUNDS=6 WEIGHTS=bf16,q8_0,q4_0 KV=f32,bf16 PREFILL=128,512 LOCK=/tmp/cpu.lock \
#       bench/prefill_formats.sh OUT [path/to/benchmark_qwen3]
set -euo pipefail
out=${1:?usage: bench/prefill_formats.sh OUT [benchmark_qwen3]}
tool=${2:-"$(dirname "$0")/../.build/release/benchmark_qwen3"}
mkdir -p "$out"
: > "$out/rows.jsonl"
: > "$out/commands"
cmd=("$tool" --weights "${WEIGHTS:-bf16,q8_0,q4_0}" --kv-dtype "${KV:-f32,bf16}" --attention streaming
     --phase prefill --prompt-len "${PREFILL:-128,512}" --iters "${ITERS:-3}" --warmup 1
     --threads "${THREADS:-2}" -o jsonl --quiet)
if [ -n "${LOCK:-}" ]; then cmd=(flock "$LOCK" "${cmd[@]}"); fi
source "$(dirname "$0")/settle.sh"
for round in $(seq 1 "${ROUNDS:-6}"); do
    echo "round $round" >&2
    settle_freed_memory  # the last round's process freed its models as it exited
    echo "${cmd[*]}" >> "$out/commands"
    "${cmd[@]}" >> "$out/rows.jsonl"
done
python3 "$(dirname "$0")/prefill_formats_table.py" "$out"
