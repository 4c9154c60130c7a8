#!/usr/bin/env python3
"""vs_llama_cpp_table.py OUT [OUT ...] — the table of bench/vs_llama_cpp.sh from OUT/ours.jsonl (benchmark_qwen3
rows) and OUT/llama.jsonl (llama-bench -o jsonl rows): tokens/s per weight format and test, the
median over rounds of each round's figure (ours: the row's median iteration; llama-bench: the
median of its repetitions), with the spread over rounds, the ratio ours / llama.cpp, and for our
decode the GB/s of linear-layer weights streamed (each weight read once per token, lm_head
included; the embedding lookup reads one row and is left out). Several OUT folders pool their rounds
(runs of the same tests at different times), each test over every round that ran it."""
import collections
import json
import statistics
import sys

outs = sys.argv[1:]
ours = collections.defaultdict(list)   # (format, test) -> tokens/s per round
peer = collections.defaultdict(list)
stream_bytes = {}                      # (format, test) -> linear-layer weight bytes per token
label = {}


def linear_params(c):
    q, kv = c["heads"] * c["head_dim"], c["kv_heads"] * c["head_dim"]
    layer = c["hidden"] * (q + 2 * kv) + q * c["hidden"] + 3 * c["hidden"] * c["intermediate"]
    return c["layers"] * layer + c["vocab"] * c["hidden"]


for line in (line for out in outs for line in open(f"{out}/ours.jsonl")):
    r = json.loads(line)
    kv = f", {r['kv_dtype']} KV" if r["phase"] == "decode" and r["kv_dtype"] != "f32" else ""
    test = f"tg{r['gen_len']} @ d{r['prompt_len']}" if r["phase"] == "decode" else r["test"]
    key = (f"ours {r['weights']}{kv}", test)
    ours[key].append(r["tokens_per_s"])
    if r["phase"] == "decode":
        stream_bytes[key] = linear_params(r["config"]) * r["bytes_per_weight"]
    label[r["weights"]] = r["kernels"]

for line in (line for out in outs for line in open(f"{out}/llama.jsonl")):
    r = json.loads(line)
    fmt = r["model_filename"].rsplit("qwen3-0.6b-synth-", 1)[-1].removesuffix(".gguf")
    test = f"tg{r['n_gen']} @ d{r['n_depth']}" if r["n_gen"] else f"pp{r['n_prompt']}"
    peer[(f"llama.cpp {fmt}", test)].append(statistics.median(r["samples_ts"]))
    build, peer_kv = r["build_commit"], r["type_k"]


def cell(samples):
    m = statistics.median(samples)
    spread = f" ({min(samples):.1f}–{max(samples):.1f})" if len(samples) > 1 else ""
    return m, f"{m:.1f}{spread}"


tests = sorted({t for _, t in list(ours) + list(peer)}, key=lambda t: (t.startswith("tg"), len(t), t))
rows = sorted(set(k for k, _ in ours)) + sorted(set(k for k, _ in peer))
counts = {len(v) for v in list(ours.values()) + list(peer.values())}
rounds = str(max(counts)) if len(counts) == 1 else f"{min(counts)}-{max(counts)} (as many as ran each test)"
print(f"tokens/s, median over {rounds} alternating rounds (min–max over rounds)"
      + (f"; llama.cpp build {build}, its KV cache {peer_kv}" if peer else ""))
print("| | " + " | ".join(tests) + " |")
print("|---" * (len(tests) + 1) + "|")
for name in rows:
    src = ours if name.startswith("ours") else peer
    print(f"| {name} | " + " | ".join(cell(src[(name, t)])[1] if (name, t) in src else "" for t in tests) + " |")

print()
print("| ours / llama.cpp | " + " | ".join(tests) + " |")
print("|---" * (len(tests) + 1) + "|")
fmt_of = lambda name: name.split()[1].rstrip(",")
for name in sorted(set(k for k, _ in ours)):
    for other in sorted(set(k for k, _ in peer)):
        f = fmt_of(other)
        if f.split("-")[0] != fmt_of(name):
            continue
        cells = []
        for t in tests:
            if (name, t) in ours and (other, t) in peer:
                cells.append(f"{cell(ours[(name, t)])[0] / cell(peer[(other, t)])[0]:.2f}×")
            else:
                cells.append("")
        print(f"| {name} / {other} | " + " | ".join(cells) + " |")

if stream_bytes:
    print()
    print("Our decode, linear-layer weights streamed per token (each read once) at the median speed:")
    for (name, t), b in sorted(stream_bytes.items()):
        tps = cell(ours[(name, t)])[0]
        print(f"- {name}, {t}: {b / 1e6:.0f} MB per token, {b * tps / 1e9:.1f} GB/s")
