#!/usr/bin/env bash
# attention_vs_torch.sh — causal prefill attention alone, ours (f32 and bf16 caches, standard and
# streaming) against PyTorch's scaled_dot_product_attention (float32 and bfloat16), in alternating
# rounds so that a busy machine's noise falls on every column alike; prints the median over rounds
# of each one's per-round median, as a Markdown table.
#
#   SEQ=2048,4096 ROUNDS=3 THREADS=2 [RAW=DIR] bench/attention_vs_torch.sh [path/to/benchmark_mpi_attention]
#
# RAW=DIR keeps every row (DIR/ours.jsonl, DIR/torch.jsonl) with the commands (DIR/commands), so
# that several runs can be pooled: bench/attention_vs_torch.sh --table DIR... prints the table of
# their rows together.
set -euo pipefail
if [ "${1:-}" = "--table" ]; then
    shift
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    pooled=0
    for d in "$@"; do
        cat "$d/ours.jsonl" >> "$out/ours.jsonl"
        cat "$d/torch.jsonl" >> "$out/torch.jsonl"
        pooled=$((pooled + $(grep -c "^round" "$d/commands")))
    done
    table_only=1
else
    table_only=0
fi
tool=${1:-"$(dirname "$0")/../.build/release/benchmark_mpi_attention"}
seq=${SEQ:-512,2048,4096,8192}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
iters=${ITERS:-3}
kernels=${KERNELS:-standard,streaming}
if [ "$table_only" = 1 ]; then rounds=$pooled; fi
if [ "$table_only" = 0 ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    ours=("$tool" --seq-len "$seq" --phase prefill --kernel "$kernels" --kv-dtype f32,bf16
          --threads "$threads" --iters "$iters" --warmup 1 -o jsonl --quiet)
    torch=(python3 "$(dirname "$0")/torch_sdpa.py" --seq-len "$seq" --phase prefill
           --threads "$threads" --iters "$iters" --jsonl)
    for round in $(seq 1 "$rounds"); do
        echo "round $round: ${ours[*]}; ${torch[*]}" >> "$out/commands"
        "${ours[@]}" >> "$out/ours.jsonl"
        "${torch[@]}" >> "$out/torch.jsonl"
    done
    if [ -n "${RAW:-}" ]; then
        mkdir -p "$RAW"
        cp "$out/ours.jsonl" "$out/torch.jsonl" "$out/commands" "$RAW/"
    fi
fi
python3 - "$out" "$rounds" <<'EOF'
import collections, json, statistics, sys
out, rounds = sys.argv[1], sys.argv[2]
runs = collections.defaultdict(list)
for line in open(f"{out}/ours.jsonl"):
    r = json.loads(line)
    runs[(r["seq_len"], f"ours {r['kernel']} {r['kv_dtype']}")].append(r["median_ms"])
for line in open(f"{out}/torch.jsonl"):
    r = json.loads(line)
    runs[(r["seq_len"], f"torch sdpa {r['dtype']}")].append(r["median_ms"])
columns = ["ours standard f32", "ours streaming f32", "ours standard bf16", "ours streaming bf16",
           "torch sdpa float32", "torch sdpa bfloat16"]
print(f"Causal prefill attention, ms (median over {rounds} alternating rounds)")
print("| S | " + " | ".join(columns) + " | bf16/f32 streaming | bf16 streaming vs torch bf16 |")
print("|---" * (len(columns) + 3) + "|")
for s in sorted({k[0] for k in runs}):
    m = {c: statistics.median(runs[(s, c)]) for c in columns if runs.get((s, c))}
    cells = [f"{m[c]:.1f}" if c in m else "" for c in columns]
    ratio = lambda a, b: f"{m[a] / m[b]:.3f}x" if a in m and b in m else ""
    print(f"| {s} | " + " | ".join(cells) + f" | {ratio('ours streaming f32', 'ours streaming bf16')} | "
          f"{ratio('torch sdpa bfloat16', 'ours streaming bf16')} |")
EOF
