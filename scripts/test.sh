#!/usr/bin/env bash
# The whole test suite: system packages if missing, then every Swift test target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
