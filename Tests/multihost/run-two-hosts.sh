#!/usr/bin/env bash
# Runs "mpirun -np 2 PROGRAM ARGS..." across two hosts made on this machine: two network namespaces
# joined by a veth pair, Open MPI's TCP transport between them, and its launcher reaching the second
# host through `ip netns exec` (netns-rsh) where a cluster would use ssh. Needs root and iproute2.
# Usage: Tests/multihost/run-two-hosts.sh PROGRAM [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
id=$$
h1=qwen3-h1-$id h2=qwen3-h2-$id v1=q3a$id v2=q3b$id
hosts=$(mktemp)
cleanup() {
  ip netns del "$h1" 2>/dev/null || true
  ip netns del "$h2" 2>/dev/null || true
  rm -f "$hosts"
}
trap cleanup EXIT

ip netns add "$h1"
ip netns add "$h2"
ip link add "$v1" type veth peer name "$v2"
ip link set "$v1" netns "$h1"
ip link set "$v2" netns "$h2"
ip -n "$h1" addr add 10.77.0.1/24 dev "$v1"
ip -n "$h2" addr add 10.77.0.2/24 dev "$v2"
for ns in "$h1" "$h2"; do ip -n "$ns" link set lo up; done
ip -n "$h1" link set "$v1" up
ip -n "$h2" link set "$v2" up

printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$hosts"
export NETNS_HOSTS="10.77.0.1=$h1 10.77.0.2=$h2"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One rank per host (--map-by node); only TCP between them, over the veth subnet.
timeout 120 ip netns exec "$h1" mpirun --hostfile "$hosts" -np 2 --map-by node --bind-to none \
  --mca plm_rsh_agent "$here/netns-rsh" \
  --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  "$@"
