#!/usr/bin/env python3
"""The validation table: every measured two-host row, predicted by bench/scaling_model from the
solo rows (one process alone: a dedicated node) and from the twin rows measured closest in time
(two processes side by side: what each rank got on this shared machine)."""
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
model = os.path.join(root, "bench", "scaling_model")
twin_for = {"1gbit": "profile-twin-a.jsonl", "10gbit": "profile-twin-a.jsonl",
            "2gbit": "profile-twin-2gbit-a.jsonl", "5gbit": "profile-twin-5gbit-a.jsonl"}
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
for rate in sys.argv[1:] or ["1gbit", "2gbit", "5gbit", "10gbit"]:
    if not os.path.exists(os.path.join(here, f"measured-{rate}.jsonl")):
        continue
    twin = twin_for[rate] if os.path.exists(os.path.join(here, twin_for[rate])) else "profile-twin-a.jsonl"
    for solo, tw in zip(compare("profile-1proc.jsonl", rate), compare(twin, rate)):
        scale = 1 / 16 if tw["phase"] == "decode" else 1
        samples = ", ".join(f"{s * scale:.0f}" for s in tw["measured_samples_ms"])
        print(f"| {rate} | {tw['test']} | {tw['parallel']} | {tw['measured_ms']:.0f} ({samples}) | {solo['predicted_ms']:.0f} "
              f"({100 * solo['error']:+.0f}%) | {tw['predicted_ms']:.0f} | {100 * tw['error']:+.0f}% "
              f"| {tw['measured_compute_ms']:.0f}/{tw['compute_ms']:.0f} | {tw['measured_comm_ms']:.0f}/{tw['comm_ms']:.0f} "
              f"| {excess(tw)} | {tw['phase']}@{rate} |")

print()
for rate in sys.argv[1:] or ["1gbit", "2gbit", "5gbit", "10gbit"]:
    for phase in ("prefill", "decode"):
        print(f"- {phase}@{rate}: `{command[phase].format(r=rate)}`")
