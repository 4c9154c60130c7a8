#!/usr/bin/env bash
# build.sh A_TREE B_TREE [OUT]: an in-process A/B of two versions of the q8_0 VNNI GEMM. Each tree's
# CKernels/*.c are compiled into one object in which only ck_matmul_q8_0_avx512, ck_quantize_q8_0,
# ck_pack_q8_0 and ck_pack_q8_0_size stay global, renamed A_... and B_..., and q8_ab.c links both.
#   git worktree add /tmp/base <commit>; bench/gemm_ab/build.sh /tmp/base . /tmp/q8_ab
#   OMP_NUM_THREADS=2 flock /tmp/cpu.lock /tmp/q8_ab M LAYERS PAIRS [PROJECTION]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-/opt/swift/usr/bin/clang}
omp=${OPENMP_ROOT:-/usr/lib/llvm-19/lib}
out=${3:-q8_ab}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for side in A B; do
    tree=$([ $side = A ] && echo "$1" || echo "$2")
    mkdir "$tmp/$side"
    for f in "$tree"/CKernels/*.c; do
        "$cc" -O3 -fopenmp -fno-math-errno -I"$tree/CKernels/include" -I"$omp/clang/19/include" \
            -c "$f" -o "$tmp/$side/$(basename "$f" .c).o"
    done
    ld -r "$tmp/$side"/*.o -o "$tmp/$side.all.o"
    args=()
    for s in ck_matmul_q8_0_avx512 ck_quantize_q8_0 ck_pack_q8_0 ck_pack_q8_0_size; do
        args+=(--redefine-sym "$s=${side}_$s" --keep-global-symbol="${side}_$s")
    done
    objcopy "${args[@]}" "$tmp/$side.all.o" "$tmp/$side.o"
done
"$cc" -O2 -fopenmp -I"$2/CKernels/include" -I"$omp/clang/19/include" "$here/q8_ab.c" "$tmp/A.o" \
    "$tmp/B.o" -o "$out" -L"$omp" -Wl,-rpath,"$omp" -lomp -lm
