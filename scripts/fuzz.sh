#!/usr/bin/env bash
# Fuzzes the checkpoint parsers (safetensors header, shard index, config.json) with libFuzzer and
# AddressSanitizer for FUZZ_SECONDS (default 60), starting from Tests/Fuzz/corpus. A crashing input
# is saved under Tests/Fuzz/crashes/ (commit it to the corpus as a regression test) and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
swift build -c debug --product fuzz_loader --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp Tests/Fuzz/corpus/* "$work/"
mkdir -p Tests/Fuzz/crashes
status=0
.build-fuzz/debug/fuzz_loader "$work" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
  -artifact_prefix=Tests/Fuzz/crashes/ > "$work.log" 2>&1 || status=$?
grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added)" "$work.log" || true
if [ "$status" -ne 0 ]; then
  tail -40 "$work.log" >&2
  echo "fuzzing found a crash: see Tests/Fuzz/crashes/" >&2
fi
rm -f "$work.log"
rmdir Tests/Fuzz/crashes 2>/dev/null || true
exit "$status"
