#!/usr/bin/env python3
"""Hugging Face reference logits for a synthetic checkpoint at Qwen3-0.6B's width.

    python3 Tests/Fixtures/make_width_reference.py --tool .build/debug/benchmark_qwen3 \
        --out Tests/Fixtures/width-1024-f32

The checkpoint itself (130 MB of float32) is not committed: this script makes it with the tool's own
`benchmark_qwen3 generate-synthetic` into a temporary folder, exactly as the Swift test does at test
time, loads it with transformers' Qwen3ForCausalLM.from_pretrained in float32 with eager attention,
and writes only reference.json (the generate-synthetic arguments, the tokens, metadata) and
logits.npy (float32 [n_tokens, vocab], C order): rows 0..prefill-1 from one prefill forward, each
later row from one decode step through HF's KV cache. Deterministic: fixed seeds, one torch thread.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import safetensors
import torch
import transformers
from transformers import Qwen3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep Tests/Fixtures free of __pycache__
import numpy_reference  # noqa: E402

# Qwen3-0.6B's width (generate-synthetic's defaults: hidden 1024, 16 query / 8 KV heads of 128,
# intermediate 3072), cut to 2 layers and a vocabulary of 1003.
LAYERS, VOCAB, SEED = 2, 1003, 7
# 173 prompt tokens: more than 128 and more than 168, so both the AVX2 (72) and AVX-512 (168) row
# blocks of the GEMMs repeat and end ragged; 173 is not a multiple of either kernel's micro-tile
# rows (6, 14) nor of the streaming attention's default blocks. Then 4 decode steps.
PREFILL, DECODE = 173, 4
TOKEN_SEED = 1729


def make_tokens():
    rng = np.random.RandomState(TOKEN_SEED)
    t = rng.randint(0, VOCAB, size=PREFILL + DECODE)
    t[3] = VOCAB - 1            # last embedding row (the ragged end of the lm_head's panels)
    t[10] = 0                   # first embedding row
    t[PREFILL + 1] = t[7]       # a decode token seen before in the prompt: its logits must still differ
    return [int(x) for x in t]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True, help="a built benchmark_qwen3")
    ap.add_argument("--out", required=True, help="folder for reference.json and logits.npy")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    generate = ["generate-synthetic", "--layers", str(LAYERS), "--vocab", str(VOCAB), "--dtype", "f32",
                "--seed", str(SEED)]
    work = tempfile.mkdtemp(prefix="qwen3-width-")
    try:
        ckpt = os.path.join(work, "checkpoint")
        subprocess.run([args.tool] + generate + ["--out", ckpt], check=True)
        weights = os.path.join(ckpt, "model.safetensors")
        with safetensors.safe_open(weights, "pt") as f:
            generator = f.metadata()["generator"]

        model = Qwen3ForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        cfg = model.config
        assert cfg._attn_implementation == "eager"
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim,
                cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size) == (1024, 16, 8, 128, 3072, LAYERS, VOCAB)
        assert cfg.tie_word_embeddings and model.lm_head.weight is model.model.embed_tokens.weight

        tokens = make_tokens()
        ids = torch.tensor([tokens], dtype=torch.long)
        with torch.no_grad():
            # The engine's path: one prefill, then one token at a time through the KV cache.
            out = model(input_ids=ids[:, :PREFILL], use_cache=True)
            rows = [out.logits[0]]
            cache = out.cache
            for t in range(PREFILL, PREFILL + DECODE):
                out = model(input_ids=ids[:, t:t + 1], cache=cache, use_cache=True)
                cache = out.cache
                rows.append(out.logits[0])
            logits = torch.cat(rows).float().numpy()
            # One forward over every token must give the same rows (causality, cache correctness).
            full = model(input_ids=ids, use_cache=False).logits[0].float().numpy()
        logits = np.ascontiguousarray(logits, dtype=np.float32)
        n = PREFILL + DECODE
        assert logits.shape == (n, VOCAB) and np.isfinite(logits).all()
        cache_vs_full = float(np.abs(full - logits).max())
        scale = float(np.abs(logits).max())
        assert cache_vs_full < 1e-5 * scale, (cache_vs_full, scale)
        # A repeated token must not repeat its logits (positions matter).
        assert np.abs(logits[PREFILL + 1] - logits[7]).max() > 1.0

        # Independent float64 NumPy forward: how far HF's own float32 result is from exact.
        exact = numpy_reference.forward(ckpt, tokens)
        hf_vs_float64 = float(np.abs(exact - logits).max())
        assert hf_vs_float64 < 1e-4 * scale, (hf_vs_float64, scale)

        os.makedirs(args.out, exist_ok=True)
        np.save(os.path.join(args.out, "logits.npy"), logits)
        ref = {
            "description": "HF logits for `benchmark_qwen3 " + " ".join(generate) + "`: Qwen3-0.6B's width "
                           "(hidden 1024, 16q/8kv heads of 128, intermediate 3072, tied) with 2 layers and "
                           "vocab 1003. The checkpoint is generated at test time, never committed.",
            "generate_synthetic": generate,
            "generator": generator,
            "checkpoint_sha256": sha256(weights),
            "tokens": tokens,
            "prefill": PREFILL,
            "decode_steps": DECODE,
            "vocab_size": VOCAB,
            "logits_file": "logits.npy",
            "logits_shape": list(logits.shape),
            "logits_dtype": "float32",
            "compute": "transformers Qwen3ForCausalLM.from_pretrained(dtype=float32, attn_implementation=eager), "
                       "CPU, one torch thread; rows < prefill from one prefill forward, later rows from one "
                       "decode step each through the DynamicCache",
            "max_abs_logit": scale,
            "logits_std": float(logits.std()),
            "hf_cache_vs_one_forward_max_abs_diff": cache_vs_full,
            "hf_vs_numpy_float64_max_abs_diff": hf_vs_float64,
            "argmax": [int(a) for a in logits.argmax(-1)],
            "token_seed": TOKEN_SEED,
            "generated_by": {"script": "Tests/Fixtures/make_width_reference.py", "torch": torch.__version__,
                             "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                             "numpy": np.__version__},
        }
        with open(os.path.join(args.out, "reference.json"), "w") as f:
            json.dump(ref, f, indent=2)
            f.write("\n")
        print(f"{args.out}: {n} tokens x {VOCAB}, max|logit|={scale:.3f} std={logits.std():.3f} "
              f"cache-vs-full={cache_vs_full:.2e} hf-vs-float64={hf_vs_float64:.2e} generator={generator}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
