#!/usr/bin/env bash
# The whole test suite: system packages if missing, every XCTest target, the kernel and model tests
# again under ASan/UBSan (SANITIZE=0 skips), then FUZZ_SECONDS (default 60; 0 skips) of fuzzing the
# checkpoint parsers; ends with a plain "N passed, N failed, N skipped" line: the main run's tests, plus one
# failure for a failed sanitizer or fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
log=$(mktemp)
trap 'rm -f "$log" "$log.asan"' EXIT
status=0
swift test --skip-build --disable-swift-testing 2>&1 | tee "$log" || status=$?
# XCTest's last summary line: "Executed N tests, with [S test(s) skipped and ]F failures ...".
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with ([0-9]+ tests? skipped and )?[0-9]+ failures?" "$log" | tail -n 1)
total=$(echo "$summary" | sed -E 's/^[[:space:]]*Executed ([0-9]+) .*/\1/')
failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) failures? .*/\1/')
skipped=$(echo "$summary" | sed -nE 's/.* ([0-9]+) tests? skipped .*/\1/p')
passed=$(( ${total:-0} - ${failed:-0} - ${skipped:-0} ))
# The kernel and model tests again under ASan and UBSan (SANITIZE=0 skips).
if [ "${SANITIZE:-1}" != 0 ]; then
  if scripts/sanitize.sh > "$log.asan" 2>&1; then
    grep -E "Executed [0-9]+ tests" "$log.asan" | tail -n 1 | sed 's/^[[:space:]]*/under ASan+UBSan: /'
  else
    tail -60 "$log.asan"
    echo "the run under ASan+UBSan failed (above); it counts as one failed test below"
    failed=$(( ${failed:-0} + 1 ))
    status=1
  fi
  rm -f "$log.asan"
fi
# Bounded fuzzing of the checkpoint parsers; its failure fails the suite.
if [ "${FUZZ_SECONDS:-60}" -gt 0 ] && ! scripts/fuzz.sh; then
  echo "the fuzzing run failed (above); it counts as one failed test below"
  failed=$(( ${failed:-0} + 1 ))
  status=1
fi
echo "$passed passed, ${failed:-0} failed, ${skipped:-0} skipped"
[ -n "$summary" ] || status=1  # no summary: the tests did not run
exit "$status"
