#!/usr/bin/env bash
# The kernel and model tests under AddressSanitizer (Swift and C) and UndefinedBehaviorSanitizer
# (the C kernels; Swift has no UBSan), in their own build folder. Any report aborts the test run.
# The CLI and MPI tests are left out: they run child processes, and Open MPI's runtime reports
# leaks of its own at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(--sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
       -Xcc -fno-sanitize=function --scratch-path .build-asan)
swift build --build-tests "${flags[@]}" >&2
# Leak checking is off: at exit it reports XCTest's own teardown bookkeeping. Memory errors and
# undefined behaviour stay fatal. An allocation too large to have returns NULL, as glibc's does,
# so the test that an impossible buffer throws (with its byte count) runs here too.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
swift test --skip-build --disable-swift-testing "${flags[@]}" --filter "CKernelsTests|Qwen3Tests"
