#!/usr/bin/env bash
# accuracy_table.sh — the quantized formats' error against the float32 model of the same method on
# the same tokens (benchmark_qwen3 --accuracy), on every committed fixture and on the full-width
# test checkpoint (Tests/Fixtures/width-1024-f32: generated here from its reference.json's
# generate-synthetic arguments), at 1 to 4 processes for the latter: a Markdown table.
#
#   bench/accuracy_table.sh [WEIGHTS] > table.md      (WEIGHTS default q8_0,q4_0; also bf16)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/.build/release/benchmark_qwen3"
weights=${1:-q8_0,q4_0}
method=$(python3 -c "import sys; print('avx512' if 'avx512_vnni' in open('/proc/cpuinfo').read() else 'avx2')")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
tokens() { python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['tokens'])))" "$1/reference.json"; }
run() {  # name procs model tokens
    local args=(--model "$3" --weights "$weights" --tokens "$4" --threads 1 --iters 1 --warmup 0 --accuracy -o jsonl --quiet)
    if [ "$2" = 1 ]; then "$tool" --method "$method" "${args[@]}"
    else mpirun -np "$2" --oversubscribe --bind-to none "$tool" --method "mpi+$method" "${args[@]}"; fi |
        python3 -c "import json,sys
for l in sys.stdin:
    r = json.loads(l); r['checkpoint'] = sys.argv[1]; r['procs'] = int(sys.argv[2]); print(json.dumps(r))" "$1" "$2" >> "$work/rows.jsonl"
}
for fixture in "$root"/Tests/Fixtures/*/; do
    fixture=${fixture%/}
    [ -f "$fixture/model.safetensors" ] || [ -f "$fixture/model.safetensors.index.json" ] || continue
    [ "$(basename "$fixture")" = text-tiny-f32 ] && continue  # a tokenizer fixture, no reference logits
    run "$(basename "$fixture")" 1 "$fixture" "$(tokens "$fixture")"
done
width="$root/Tests/Fixtures/width-1024-f32"
eval "generate=($(python3 -c "import json,shlex,sys; print(' '.join(map(shlex.quote, json.load(open(sys.argv[1]))['generate_synthetic'][1:])))" "$width/reference.json"))"
"$tool" generate-synthetic "${generate[@]}" --out "$work/width-1024" > /dev/null
for procs in 1 2 3 4; do run width-1024 "$procs" "$work/width-1024" "$(tokens "$width")"; done
python3 - "$work/rows.jsonl" "$(git -C "$root" rev-parse --short HEAD)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"Accuracy against the float32 model of the same method (benchmark_qwen3 --accuracy, commit {sys.argv[2]})")
print("| checkpoint | procs | weights | embedding | max \\|Δlogit\\| | mean KL (nats) | top-1 agreement | positions |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['checkpoint']} | {r['procs']} | {r['weights']} ({r['linear_layers_in_format']} linear) | {r['embedding']} "
          f"| {r['max_abs_dlogit']:.3g} | {r['kl_mean']:.2g} | {100 * r['top1_agreement']:.1f}% | {r['prompt_len']} |")
PY
