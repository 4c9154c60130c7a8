#!/usr/bin/env bash
# load_spike.sh — what a model load leaves behind for the timed loop that follows it: the
# process's peak resident memory (/usr/bin/time -v) and, every 50 ms, how much freed memory the
# guest has reported to the host (virtio-balloon free page reporting: 2 MiB blocks free for about
# 2 s are handed back, and the vCPUs stall while the host discards them). Writes OUT/rows.jsonl
# (the benchmark's rows), OUT/time.txt, OUT/reported_kib.tsv (ms since start, KiB reported since
# start), OUT/ended_ms (when the command ended) and OUT/command; prints the peak RSS, the reported
# MiB and the timed samples.
#
#   LOCK=/tmp/cpu.lock bench/load_spike.sh OUT [benchmark_qwen3] [benchmark arguments...]
# Default arguments: q8_0 prefill of 128 tokens, 12 iterations after one warm-up, 2 threads.
set -euo pipefail
# Under LOCK the whole measurement holds it, so other jobs' frees are not sampled.
if [ -n "${LOCK:-}" ] && [ -z "${LOAD_SPIKE_LOCKED:-}" ]; then
    LOAD_SPIKE_LOCKED=1 exec flock "$LOCK" "$0" "$@"
fi
out=${1:?usage: bench/load_spike.sh OUT [benchmark_qwen3] [arguments...]}
tool=${2:-"$(dirname "$0")/../.build/release/benchmark_qwen3"}
shift $(( $# >= 2 ? 2 : 1 ))
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
    args=(--weights q8_0 --phase prefill --prompt-len 128 --iters 12 --warmup 1 --threads 2
          --attention streaming -o jsonl --quiet)
fi
counter=/sys/module/page_reporting/parameters/reported_kib
mkdir -p "$out"
cmd=(/usr/bin/time -v -o "$out/time.txt" "$tool" "${args[@]}")
echo "${cmd[*]}" > "$out/command"

start_kib=$(cat "$counter")
start_ns=$(date +%s%N)
(
    while :; do
        echo "$(( ($(date +%s%N) - start_ns) / 1000000 ))	$(( $(cat "$counter") - start_kib ))"
        sleep 0.05
    done
) > "$out/reported_kib.tsv" &
sampler=$!
"${cmd[@]}" > "$out/rows.jsonl"
ended_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
sleep 3  # what the load freed is reported about 2 s later
kill "$sampler"

echo "$ended_ms" > "$out/ended_ms"
echo "command ended at $ended_ms ms"
echo "peak RSS: $(awk -F': ' '/Maximum resident/ {printf "%.0f MiB", $2 / 1024}' "$out/time.txt")"
echo "reported to the host: $(tail -1 "$out/reported_kib.tsv" | awk '{printf "%.0f MiB by %d ms", $2 / 1024, $1}')"
awk 'prev != "" && $2 - prev >= 65536 {printf "  +%.0f MiB at %d ms\n", ($2 - prev) / 1024, $1} {prev = $2}' \
    "$out/reported_kib.tsv"
python3 - "$out/rows.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    samples = row.get("samples_ms") or []
    print(row.get("test", ""), row.get("weights", ""), "samples_ms:", " ".join(f"{s:.0f}" for s in samples))
EOF
