#!/usr/bin/env python3
"""The validation table: every measured two-host row, predicted by bench/scaling_model from the
solo rows (one process alone: a dedicated node) and from the twin rows measured closest in time
(two processes side by side: what each rank got on this shared machine)."""
import json
import os
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# make_table.py [DIR] [RATE...]: DIR holds the rows (default: this folder).
args = sys.argv[1:]
here = args.pop(0) if args and os.path.isdir(args[0]) else os.path.dirname(os.path.abspath(__file__))
model = os.path.join(root, "bench", "scaling_model")
command = {
    "prefill": "LINK_RATE={r} Tests/multihost/run-two-hosts.sh benchmark_qwen3 --method mpi+avx2 --threads 1 "
               "--parallel heads,sequence --phase prefill --prompt-len 128,512 --iters 3 --warmup 1 --profile",
    "decode": "LINK_RATE={r} Tests/multihost/run-two-hosts.sh benchmark_qwen3 --method mpi+avx2 --threads 1 "
              "--parallel heads,sequence --phase decode --prompt-len 128 --gen-len 16 --iters 3 --warmup 1 --profile",
}


def excess(p):
    """(measured - predicted collective time) per collective call: the waiting the model lacks."""
    calls = sum(int(k.rsplit("x", 1)[1]) for k in p["comm_ms_by_collective"])
    if not calls:
        return "-"
    return f"{(p['measured_comm_ms'] - p['comm_ms']) / calls:.1f} ms"


def compare(rows, rate):
    out = subprocess.run([model, "--rows", os.path.join(here, rows), "--comm", os.path.join(here, f"link-{rate}.jsonl"),
                          "--compare", os.path.join(here, f"measured-{rate}.jsonl"), "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()]


print("| link | test | split | measured ms (samples) | predicted, solo rows | predicted, twin rows | error (twin) "
      "| compute meas/pred (twin) | comm meas/pred | excess wait per collective | command |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for rate in args or ["1gbit", "2gbit", "5gbit", "10gbit"]:
    if not os.path.exists(os.path.join(here, f"measured-{rate}.jsonl")):
        continue
    # The twin rows taken right after this rate's runs, else the folder's one set.
    twin = f"profile-twin-{rate}-a.jsonl"
    if not os.path.exists(os.path.join(here, twin)):
        twin = "profile-twin-a.jsonl"
    for solo, tw in zip(compare("profile-1proc.jsonl", rate), compare(twin, rate)):
        scale = 1 / 16 if tw["phase"] == "decode" else 1
        samples = ", ".join(f"{s * scale:.0f}" for s in tw["measured_samples_ms"])
        print(f"| {rate} | {tw['test']} | {tw['parallel']} | {tw['measured_ms']:.0f} ({samples}) | {solo['predicted_ms']:.0f} "
              f"({100 * solo['error']:+.0f}%) | {tw['predicted_ms']:.0f} | {100 * tw['error']:+.0f}% "
              f"| {tw['measured_compute_ms']:.0f}/{tw['compute_ms']:.0f} | {tw['measured_comm_ms']:.0f}/{tw['comm_ms']:.0f} "
              f"| {excess(tw)} | {tw['phase']}@{rate} |")

print()
for rate in args or ["1gbit", "2gbit", "5gbit", "10gbit"]:
    for phase in ("prefill", "decode"):
        print(f"- {phase}@{rate}: `{command[phase].format(r=rate)}`")
