#!/usr/bin/env bash
# build_llama_cpp.sh — build the llama.cpp peer for side-by-side runs (bench/vs_llama_cpp.sh) from
# the llama-cpp-python source package on PyPI, which vendors llama.cpp, and write GGUFs of the
# synthetic Qwen3-0.6B with the vendored gguf-py (make_gguf.py) and llama-quantize. Nothing here
# is a dependency of the project: it is measured against, never linked or copied.
#
#   PEERS=/work/peers bench/peers/build_llama_cpp.sh [MODEL_DIR]
#
# Writes $PEERS/llama.cpp-build/bin/{llama-bench,llama-quantize} and
# $PEERS/gguf/qwen3-0.6b-synth-{f32,bf16,q8_0,q4_0,q4_0-pure}.gguf. llama-cpp-python 0.3.36
# vendors llama.cpp commit 0c1e57098 (its CHANGELOG), the build issue 12's table was taken with.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peers=${PEERS:-/work/peers}
version=${LLAMA_CPP_PYTHON:-0.3.36}
commit=${LLAMA_CPP_COMMIT:-0c1e57098}
model=${1:-${QWEN3_BENCH_CACHE:-$HOME/.cache/qwen3-bench}/qwen3-0.6b-synthetic-bf16-v1}
mkdir -p "$peers/dl" "$peers/gguf"
cd "$peers"
[ -f "dl/llama_cpp_python-$version.tar.gz" ] ||
    pip download --no-binary :all: --no-deps "llama-cpp-python==$version" -d dl
if [ ! -d llama.cpp ]; then
    mkdir -p src && tar -xzf "dl/llama_cpp_python-$version.tar.gz" -C src
    cp -a "src/llama_cpp_python-$version/vendor/llama.cpp" llama.cpp
fi
# The sdist has no git metadata: the commit is passed in so llama-bench prints it.
nice -n 19 cmake -S llama.cpp -B llama.cpp-build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DGGML_OPENMP=ON -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_COMMIT="$commit" > cmake-config.log
nice -n 19 cmake --build llama.cpp-build -j2 --target llama-bench llama-quantize > build.log
[ -x venv/bin/python ] || { python3 -m venv venv && venv/bin/pip install -q ./llama.cpp/gguf-py; }
nice -n 19 venv/bin/python "$here/make_gguf.py" "$model" gguf/qwen3-0.6b-synth-bf16.gguf bf16
nice -n 19 venv/bin/python "$here/make_gguf.py" "$model" gguf/qwen3-0.6b-synth-f32.gguf f32
q=llama.cpp-build/bin/llama-quantize
# Q4_0 by default keeps the tied output matrix (token_embd) at q6_K; --pure makes every matrix
# q4_0, as ours does (the lm_head quantized, the embedding lookup 16-bit): both are measured.
nice -n 19 $q gguf/qwen3-0.6b-synth-f32.gguf gguf/qwen3-0.6b-synth-q8_0.gguf Q8_0 2 > quantize-q8_0.log 2>&1
nice -n 19 $q gguf/qwen3-0.6b-synth-f32.gguf gguf/qwen3-0.6b-synth-q4_0.gguf Q4_0 2 > quantize-q4_0.log 2>&1
nice -n 19 $q --pure gguf/qwen3-0.6b-synth-f32.gguf gguf/qwen3-0.6b-synth-q4_0-pure.gguf Q4_0 2 \
    > quantize-q4_0-pure.log 2>&1
ls -l gguf llama.cpp-build/bin/llama-bench
