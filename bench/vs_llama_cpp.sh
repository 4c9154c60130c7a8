#!/usr/bin/env bash
# vs_llama_cpp.sh — benchmark_qwen3 against llama.cpp's llama-bench on the same checkpoint (the
# synthetic Qwen3-0.6B, written as GGUF by bench/peers/build_llama_cpp.sh), same thread count, in
# alternating rounds so that a busy machine's noise falls on both alike. Prints, per weight format,
# prefill (ppN) and decode (tg32 after DEPTH tokens of context) in tokens/s as the median over
# rounds of each round's median, the ratio ours / llama.cpp, and the bytes per token our decode
# streams (GB/s). Raw rows stay in OUT (ours.jsonl, llama.jsonl) with the commands in OUT/commands.
#
#   LLAMA_BENCH=/work/peers/llama.cpp-build/bin/llama-bench GGUF=/work/peers/gguf \
#   WEIGHTS=f32,bf16,q8_0,q4_0 PREFILL=128,512 DEPTH=128 KV=f32 ATTENTION=streaming ROUNDS=3 ITERS=3 THREADS=2 \
#       bench/vs_llama_cpp.sh OUT [path/to/benchmark_qwen3]
#
# PREFILL= (empty) skips prefill; DEPTH= (empty) skips decode. Long contexts (issue 13):
# WEIGHTS=bf16 PREFILL= DEPTH=4096 KV=f32,bf16 ITERS=1. Ours times a decode iteration after a
# prefill of DEPTH tokens (reported apart); llama-bench fills its cache once per test (untimed) and
# keeps it in f16 (its default), so KV=bf16 is the like-for-like 16-bit cache. Our q4_0 is compared
# with llama.cpp's Q4_0 --pure (every matrix q4_0, as ours) and its default mix (output q6_K).
# LOCK=/tmp/cpu.lock runs each command under flock on that file, so that on a shared machine other
# timed jobs wait for the command in flight rather than for the whole comparison. Each command
# starts once the memory the last one freed has been reported to the hypervisor (bench/settle.sh),
# so neither engine is timed while the other's model is being taken back.
set -euo pipefail
out=${1:?usage: bench/vs_llama_cpp.sh OUT [benchmark_qwen3]}
tool=${2:-"$(dirname "$0")/../.build/release/benchmark_qwen3"}
llama=${LLAMA_BENCH:?set LLAMA_BENCH to llama-bench (bench/peers/build_llama_cpp.sh builds it)}
gguf=${GGUF:?set GGUF to the folder of qwen3-0.6b-synth-*.gguf}
weights=${WEIGHTS:-f32,bf16,q8_0,q4_0}
prefill=${PREFILL-128,512}
depth=${DEPTH-128}
kv=${KV:-f32}
attention=${ATTENTION:-streaming}
rounds=${ROUNDS:-3}
iters=${ITERS:-3}
threads=${THREADS:-2}
mkdir -p "$out"
: > "$out/ours.jsonl"
: > "$out/llama.jsonl"
: > "$out/commands"
: > "$out/stderr.log"
ggufs_of() {  # our weight format -> the llama.cpp files it is compared with
    case $1 in
        q4_0) echo "q4_0-pure q4_0" ;;
        *) echo "$1" ;;
    esac
}
source "$(dirname "$0")/settle.sh"
run() {  # log the command, then run it with stdout appended to the file given first
    local file=$1
    shift
    echo "$*" >> "$out/commands"
    settle_freed_memory  # the last command freed its model as it exited (settle.sh)
    if [ -n "${LOCK:-}" ]; then set -- flock "$LOCK" "$@"; fi
    if ! "$@" >> "$file" 2>> "$out/stderr.log"; then
        tail -5 "$out/stderr.log" >&2
        exit 1
    fi
}
export OMP_NUM_THREADS=$threads
for round in $(seq 1 "$rounds"); do
    echo "round $round of $rounds" >&2
    for w in ${weights//,/ }; do
        if [ -n "$prefill" ]; then
            run "$out/ours.jsonl" "$tool" --weights "$w" --attention "$attention" --threads "$threads" \
                --phase prefill --prompt-len "$prefill" --iters "$iters" --warmup 1 -o jsonl --quiet
        fi
        if [ -n "$depth" ]; then
            run "$out/ours.jsonl" "$tool" --weights "$w" --kv-dtype "$kv" --attention "$attention" \
                --threads "$threads" --phase decode --prompt-len "$depth" --gen-len 32 --iters "$iters" --warmup 1 \
                -o jsonl --quiet
        fi
        for g in $(ggufs_of "$w"); do
            m="$gguf/qwen3-0.6b-synth-$g.gguf"
            if [ -n "$prefill" ]; then
                run "$out/llama.jsonl" "$llama" -m "$m" -t "$threads" -p "$prefill" -n 0 \
                    -r "$iters" -o jsonl
            fi
            if [ -n "$depth" ]; then
                run "$out/llama.jsonl" "$llama" -m "$m" -t "$threads" -p 0 -n 32 -d "$depth" \
                    -r "$iters" -o jsonl
            fi
        done
    done
done
python3 "$(dirname "$0")/vs_llama_cpp_table.py" "$out"
