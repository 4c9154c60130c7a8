#!/usr/bin/env bash
# Runs "mpirun -np 2 PROGRAM ARGS..." across two hosts made on this machine: two network namespaces
# joined by a veth pair, Open MPI's TCP transport between them, and its launcher reaching the second
# host through `ip netns exec` (netns-rsh) where a cluster would use ssh. Needs root and iproute2.
# Usage: [LINK_RATE=1gbit] Tests/multihost/run-two-hosts.sh PROGRAM [ARGS...]
#
# Environment:
#   LINK_RATE    shape both ends of the veth pair to this rate with a tbf qdisc (tc's units: 1gbit,
#                500mbit, 10gbit); unset or empty: unshaped (memory speed, as before).
#   LINK_PROBE   1 (default when bench_comm is found): before the run, print the link as MPI sees it
#                (ping-pong bandwidth and round trip, all-reduce at the model's sizes) on stderr; 0 skips.
#   BENCH_COMM   the bench_comm binary (default: build/bench_comm or build-cluster/bench_comm).
#   LINK_JSON    append the probe's rows (bench_comm's JSON lines) to this file.
#   TIMEOUT      seconds the run may take (default 120).
#
# The shaping: tbf with rate R, burst = max(64 KiB, R x 1 ms) and limit = burst + R x 5 ms. The burst
# must hold a whole GSO/TSO segment (veth hands tbf packets of up to 64 KiB; a smaller burst makes tbf
# split or drop them) and one timer tick of tokens, so TCP can fill the link; the limit queues ~5 ms
# of traffic, more than the veth round trip times the window, so TCP's window, not tail drops, sets
# the pace. netem is not in this kernel: latency cannot be added, only bandwidth shaped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
id=$$
h1=qwen3-h1-$id h2=qwen3-h2-$id v1=q3a$id v2=q3b$id
hosts=$(mktemp)
cleanup() {
  ip netns del "$h1" 2>/dev/null || true
  ip netns del "$h2" 2>/dev/null || true
  rm -f "$hosts"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# LINK_RATE in bits per second, from tc's notation (bit, kbit, mbit, gbit; bps etc. are bytes).
rate_bits() {
  local v=${1,,} n unit
  n=${v%%[a-z]*} unit=${v#"$n"}
  case $unit in
    bit|"") echo "$n" | awk '{printf "%.0f", $1}' ;;
    kbit) echo "$n" | awk '{printf "%.0f", $1 * 1e3}' ;;
    mbit) echo "$n" | awk '{printf "%.0f", $1 * 1e6}' ;;
    gbit) echo "$n" | awk '{printf "%.0f", $1 * 1e9}' ;;
    *) echo "run-two-hosts: LINK_RATE=$1: use tc's bit units (e.g. 500mbit, 1gbit, 10gbit)" >&2; exit 64 ;;
  esac
}
if [ -n "${LINK_RATE:-}" ]; then
  bits=$(rate_bits "$LINK_RATE")
  burst=$(( bits / 8 / 1000 )); [ "$burst" -ge 65536 ] || burst=65536      # R x 1 ms, at least 64 KiB
  limit=$(( burst + bits / 8 / 10 ))                                         # + R x 100 ms
  ip netns exec "$h1" tc qdisc add dev "$v1" root tbf rate "$bits"bit burst "$burst" limit "$limit"
  ip netns exec "$h2" tc qdisc add dev "$v2" root tbf rate "$bits"bit burst "$burst" limit "$limit"
  echo "run-two-hosts: link shaped to $LINK_RATE each way (tbf burst $burst B, limit $limit B)" >&2
fi

printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$hosts"
export NETNS_HOSTS="10.77.0.1=$h1 10.77.0.2=$h2"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One rank per host (--map-by node); only TCP between them, over the veth subnet.
mpi=(ip netns exec "$h1" mpirun --hostfile "$hosts" -np 2 --map-by node --bind-to none
  --mca plm_rsh_agent "$here/netns-rsh"
  --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24)

# The link as MPI sees it: ping-pong from 4 B to 16 MiB (round trip of small messages, bandwidth of
# large ones) and one all-reduce of m x 1024 floats, the model's sizes (m = 1: a decode step;
# 128, 512, 2048: prefill). bench_comm prints it; on stderr so the program's stdout stays its own.
comm=${BENCH_COMM:-}
if [ -z "$comm" ]; then
  for candidate in "$root/build/bench_comm" "$root/build-cluster/bench_comm"; do
    if [ -x "$candidate" ]; then comm=$candidate; break; fi
  done
fi
if [ "${LINK_PROBE:-1}" != 0 ] && [ -n "$comm" ]; then
  probe_json=$(mktemp)
  {
    timeout 300 "${mpi[@]}" "$comm" --collectives pingpong --min-bytes 4 --max-bytes 16M --step 4 --iters 20 --budget-ms 500 \
      --json "$probe_json" -o jsonl > /dev/null &&
    timeout 300 "${mpi[@]}" "$comm" --collectives allreduce --sizes 4K,512K,2M,8M --iters 10 --budget-ms 1000 \
      --json "$probe_json" -o jsonl > /dev/null
  } || echo "run-two-hosts: the link probe failed (continuing with the run)" >&2
  python3 - "$probe_json" "${LINK_RATE:-unshaped}" >&2 <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pp = {r["bytes"]: r for r in rows if r["collective"] == "pingpong" and r["kind"] == "sample"}
fit = next((r for r in rows if r["collective"] == "pingpong" and r["kind"] == "fit"), None)
if pp:
    small, large = min(pp), max(pp)
    bw = 2 * large * 8 / pp[large]["median_us"] / 1e3
    print(f"link {sys.argv[2]}: ping-pong round trip {pp[small]['median_us']:.1f} us ({small} B), "
          f"bandwidth {bw:.2f} Gbit/s ({large >> 20} MiB each way)", end="")
    if fit:
        print(f"; fit alpha {fit['alpha_us']:.1f} us one way, {fit['gbps']:.2f} Gbit/s", end="")
    print()
for r in rows:
    if r["collective"] == "allreduce" and r["kind"] == "sample":
        print(f"link {sys.argv[2]}: all-reduce of {r['bytes'] // 4096} x 1024 floats ({r['bytes']} B): "
              f"median {r['median_us'] / 1e3:.3f} ms, best {r['best_us'] / 1e3:.3f} ms")
PY
  if [ -n "${LINK_JSON:-}" ]; then cat "$probe_json" >> "$LINK_JSON"; fi
  rm -f "$probe_json"
fi

timeout "${TIMEOUT:-120}" "${mpi[@]}" "$@"
