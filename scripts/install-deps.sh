#!/usr/bin/env bash
# Installs the Debian packages the project needs (Open MPI, LLVM OpenMP 19, CMake, and matplotlib for
# bench/plot), only if missing.
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin libomp-19-dev cmake pkgconf iproute2 python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
