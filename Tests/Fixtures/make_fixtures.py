#!/usr/bin/env python3
"""Create small random Qwen3 checkpoints plus Hugging Face reference logits.

    python make_fixtures.py --set default --out Tests/Fixtures        # committed fixtures
    python make_fixtures.py --set unseen  --out /tmp/unseen-fixtures  # held-out, never committed

Every fixture folder contains genuine `save_pretrained` output (config.json,
generation_config.json, model*.safetensors[, model.safetensors.index.json]),
reference.json (tokens + metadata) and logits.npy (float32 [n_tokens, vocab]).
Logits are computed by transformers' Qwen3ForCausalLM in float32 on CPU with
eager attention, after re-loading the checkpoint from disk with from_pretrained.
Deterministic: fixed seeds, single-threaded torch.
"""
import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field

import numpy as np
import safetensors
import safetensors.torch
import torch
import transformers
from transformers import Qwen3Config, Qwen3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep Tests/Fixtures free of __pycache__
import numpy_reference  # noqa: E402


@dataclass
class Spec:
    name: str
    seed: int
    description: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    rope_theta: float
    eps: float
    n_tokens: int
    dtype: str = "float32"          # storage dtype of the weights
    shards: int = 1                 # number of safetensors files
    extra_lm_head: bool = False     # tied config but lm_head.weight also stored in the file
    legacy_config: bool = False     # rewrite config.json in transformers-4.5x style (rope_theta, torch_dtype)
    emb_std: float = 0.3
    proj_std: float = 0.2
    extra: dict = field(default_factory=dict)


DEFAULT = [
    Spec("tied-f32", 1234, "Tied embeddings, float32, GQA 4q/2kv, head_dim 32 (q width 128 != hidden 64).",
         hidden=64, layers=2, heads=4, kv_heads=2, head_dim=32, intermediate=160, vocab=256,
         tied=True, rope_theta=1e6, eps=1e-6, n_tokens=16),
    Spec("untied-sharded-f32", 2345, "Untied lm_head, float32, GQA 6q/2kv, head_dim 16 (96 != hidden 48), "
         "3 layers, saved by save_pretrained in 2 shards with model.safetensors.index.json.",
         hidden=48, layers=3, heads=6, kv_heads=2, head_dim=16, intermediate=80, vocab=300,
         tied=False, rope_theta=10000.0, eps=1e-5, n_tokens=18, shards=2),
    Spec("tied-bf16", 3456, "Tied embeddings, weights stored as bfloat16, MHA 4q/4kv, head_dim 16. Reference logits "
         "computed in float32 from the bf16-rounded weights (load bf16, upcast to f32, run).",
         hidden=64, layers=2, heads=4, kv_heads=4, head_dim=16, intermediate=128, vocab=256,
         tied=True, rope_theta=1e6, eps=1e-6, n_tokens=14, dtype="bfloat16"),
    Spec("tied-with-lmhead-f32", 4567, "Tied config (tie_word_embeddings=true) whose model.safetensors ALSO contains "
         "lm_head.weight, identical to model.embed_tokens.weight. MQA 2q/1kv, head_dim 32 (64 != hidden 32).",
         hidden=32, layers=2, heads=2, kv_heads=1, head_dim=32, intermediate=64, vocab=128,
         tied=True, rope_theta=1e6, eps=1e-6, n_tokens=12, extra_lm_head=True),
    Spec("gqa8-untied-f32", 6789, "Untied, float32, 8q/2kv (groups of 4), head_dim 16 (128 != hidden 40), "
         "intermediate 72 and vocab 203 (ragged for any SIMD-width split): for tensor-parallel runs up to 8 "
         "ranks with uneven head splits, groups straddling ranks and ranks with an empty MLP shard.",
         hidden=40, layers=2, heads=8, kv_heads=2, head_dim=16, intermediate=72, vocab=203,
         tied=False, rope_theta=1e6, eps=1e-6, n_tokens=15),
]

UNSEEN = [
    Spec("u-q5kv1-hd24-tied-f32", 101, "Tied, f32, 5 query heads sharing 1 KV head, head_dim 24, odd vocab 211.",
         hidden=40, layers=3, heads=5, kv_heads=1, head_dim=24, intermediate=72, vocab=211,
         tied=True, rope_theta=5e5, eps=1e-6, n_tokens=17),
    Spec("u-q8kv2-hd8-untied-v97-4layer-3shards-f32", 202, "Untied, f32, 8q/2kv, head_dim 8, vocab 97, 4 layers, "
         "3 shards.",
         hidden=56, layers=4, heads=8, kv_heads=2, head_dim=8, intermediate=88, vocab=97,
         tied=False, rope_theta=10000.0, eps=1e-5, n_tokens=19, shards=3),
    Spec("u-q6kv3-hd12-untied-bf16", 303, "Untied, bf16 storage, 6q/3kv, head_dim 12, vocab 150, rope_theta 5e5.",
         hidden=48, layers=3, heads=6, kv_heads=3, head_dim=12, intermediate=100, vocab=150,
         tied=False, rope_theta=5e5, eps=1e-6, n_tokens=13, dtype="bfloat16"),
    Spec("u-legacy-config-tied-lmhead-f32", 404, "Tied with an extra lm_head.weight copy; config.json rewritten in "
         "transformers-4.51 style (rope_theta int + rope_scaling null + torch_dtype, no rope_parameters/layer_types), "
         "as on the Hugging Face Hub Qwen3 checkpoints. 3q/3kv, head_dim 10.",
         hidden=24, layers=2, heads=3, kv_heads=3, head_dim=10, intermediate=50, vocab=64,
         tied=True, rope_theta=1e6, eps=1e-6, n_tokens=20, extra_lm_head=True, legacy_config=True),
    Spec("u-q4kv2-hd32-bf16-sharded-untied", 505, "Untied, bf16 storage, 2 shards, 4q/2kv head_dim 32, "
         "hidden 72, rope_theta 1e6, eps 1e-6.",
         hidden=72, layers=2, heads=4, kv_heads=2, head_dim=32, intermediate=120, vocab=180,
         tied=False, rope_theta=1e6, eps=1e-6, n_tokens=15, dtype="bfloat16", shards=2),
    Spec("u-bias-q4kv1-hd16-tied-f32", 606, "attention_bias true (q/k/v/o biases), 4q/1kv, head_dim 16.",
         hidden=32, layers=2, heads=4, kv_heads=1, head_dim=16, intermediate=48, vocab=77,
         tied=True, rope_theta=1e6, eps=1e-6, n_tokens=11, extra={"attention_bias": True}),
]

SETS = {"default": DEFAULT, "unseen": UNSEEN}


def make_config(s: Spec) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=s.vocab, hidden_size=s.hidden, intermediate_size=s.intermediate,
        num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
        head_dim=s.head_dim, tie_word_embeddings=s.tied, rope_theta=s.rope_theta, rms_norm_eps=s.eps,
        max_position_embeddings=512, hidden_act="silu", attention_bias=s.extra.get("attention_bias", False),
    )


def randomize(model, s: Spec):
    """All weights random: projections/embeddings normal, every RMSNorm weight uniform(0.5, 1.5)."""
    g = torch.Generator().manual_seed(s.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # deduplicated: tied lm_head is not listed separately
            if name.endswith("norm.weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif name in ("model.embed_tokens.weight", "lm_head.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * s.emb_std)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * s.proj_std)


def make_tokens(s: Spec):
    rng = np.random.RandomState(s.seed + 7)
    t = rng.randint(0, s.vocab, size=s.n_tokens)
    t[2] = s.vocab - 1          # last embedding row
    t[5] = 0                    # first embedding row
    t[s.n_tokens - 3] = t[1]    # repeated tokens at different positions: logits must still differ
    t[s.n_tokens - 1] = t[1]
    return [int(x) for x in t]


def save(model, s: Spec, folder):
    if s.shards == 1:
        model.save_pretrained(folder)
        return
    total = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    # grow the shard size until save_pretrained produces exactly s.shards files
    size = total // s.shards
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        model.save_pretrained(folder, max_shard_size=int(size))
        n = len([f for f in os.listdir(folder) if f.endswith(".safetensors")])
        if n == s.shards:
            return
        assert n > s.shards, f"could not get {s.shards} shards"
        size = int(size * 1.05) + 1


def add_lm_head_copy(folder):
    path = os.path.join(folder, "model.safetensors")
    with safetensors.safe_open(path, "pt") as f:
        meta = f.metadata()
    sd = safetensors.torch.load_file(path)
    assert "lm_head.weight" not in sd, "save_pretrained already wrote lm_head.weight"
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"].clone()
    safetensors.torch.save_file(sd, path, metadata=meta)


def legacy_config(folder):
    """Rewrite config.json like transformers 4.51 (the Qwen3 Hub checkpoints) wrote it."""
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    theta = rp["rope_theta"]
    cfg["rope_theta"] = int(theta) if float(theta).is_integer() else theta
    cfg["rope_scaling"] = None
    cfg["torch_dtype"] = cfg.pop("dtype")
    cfg.pop("layer_types", None)
    cfg.pop("pad_token_id", None)
    cfg["transformers_version"] = "4.51.0"
    with open(path, "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=2)
        f.write("\n")


def stats(logits):
    d = np.abs(np.diff(logits, axis=0))
    return {
        "min": float(logits.min()), "max": float(logits.max()),
        "mean": float(logits.mean()), "std": float(logits.std()),
        "per_position_std_min": float(logits.std(axis=1).min()),
        "per_position_std_max": float(logits.std(axis=1).max()),
        "min_max_abs_change_between_adjacent_positions": float(d.max(axis=1).min()),
    }


def build(s: Spec, out):
    folder = os.path.join(out, s.name)
    shutil.rmtree(folder, ignore_errors=True)
    torch.manual_seed(s.seed)
    cfg = make_config(s)
    model = Qwen3ForCausalLM._from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    randomize(model, s)
    if s.tied:
        assert model.lm_head.weight is model.model.embed_tokens.weight
    model.eval()
    mem_model = model
    if s.dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    save(model, s, folder)
    if s.extra_lm_head:
        add_lm_head_copy(folder)
    if s.legacy_config:
        legacy_config(folder)

    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    assert len(files) == s.shards, files
    if s.shards > 1:
        assert os.path.exists(os.path.join(folder, "model.safetensors.index.json"))
        assert files == [f"model-{i:05d}-of-{s.shards:05d}.safetensors" for i in range(1, s.shards + 1)], files
    keys = {}
    for fn in files:
        with safetensors.safe_open(os.path.join(folder, fn), "pt") as f:
            for k in f.keys():
                keys[k] = (fn, str(f.get_slice(k).get_dtype()))
    assert ("lm_head.weight" in keys) == ((not s.tied) or s.extra_lm_head), sorted(keys)
    want = {"float32": "F32", "bfloat16": "BF16"}[s.dtype]
    assert all(dt == want for _, dt in keys.values()), keys

    # Reference: reload from disk (upcasting bf16 -> f32), run in float32 eager on CPU.
    ref_model = Qwen3ForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    ref_model.eval()
    assert ref_model.config._attn_implementation == "eager"
    assert all(p.dtype == torch.float32 for p in ref_model.parameters())
    if s.tied:
        assert ref_model.lm_head.weight is ref_model.model.embed_tokens.weight
    tokens = make_tokens(s)
    ids = torch.tensor([tokens], dtype=torch.long)
    with torch.no_grad():
        logits = ref_model(input_ids=ids, use_cache=False).logits[0].float().numpy()
        if s.dtype == "float32":  # reload must be bit-exact with the in-memory model
            mem = mem_model(input_ids=ids, use_cache=False).logits[0].float().numpy()
            assert np.array_equal(mem, logits)
        # the last-position logits must not depend on how many tokens are processed at once
        last = ref_model(input_ids=ids[:, :-1], use_cache=False).logits[0].float().numpy()
        assert np.abs(last - logits[:-1]).max() < 1e-4
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    assert logits.shape == (s.n_tokens, s.vocab) and np.isfinite(logits).all()
    np.save(os.path.join(folder, "logits.npy"), logits)

    st = stats(logits)
    assert st["per_position_std_min"] > 0.5, st
    assert st["min_max_abs_change_between_adjacent_positions"] > 0.5, st
    i, j = 1, s.n_tokens - 1  # same token at two positions
    assert tokens[i] == tokens[j] and np.abs(logits[i] - logits[j]).max() > 0.5

    ref = {
        "tokens": tokens,
        "description": s.description,
        "dtype": s.dtype,
        "tie_word_embeddings": s.tied,
        "lm_head_in_checkpoint": "lm_head.weight" in keys,
        "weight_files": files,
        "sharded": s.shards > 1,
        "config_style": "transformers-4.51 (rope_theta/torch_dtype)" if s.legacy_config
                        else f"transformers-{transformers.__version__} (rope_parameters/dtype)",
        "n_tokens": s.n_tokens,
        "vocab_size": s.vocab,
        "logits_file": "logits.npy",
        "logits_shape": list(logits.shape),
        "logits_dtype": "float32",
        "compute": "transformers Qwen3ForCausalLM, float32, CPU, attn_implementation=eager, one forward over all "
                   "tokens, positions 0..n-1, no attention mask/padding",
        "suggested_atol": 1e-3,
        "argmax": [int(a) for a in logits.argmax(-1)],
        "logits_stats": st,
        "seed": s.seed,
        "init": {"embeddings_and_lm_head": f"normal(0, {s.emb_std})", "projections": f"normal(0, {s.proj_std})",
                 "all_rmsnorm_weights": "uniform(0.5, 1.5)"},
        "generated_by": {"script": "Tests/Fixtures/make_fixtures.py", "torch": torch.__version__,
                         "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                         "numpy": np.__version__},
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")

    # Cross-check with the independent float64 NumPy forward.
    cmp = numpy_reference.compare(folder)
    assert cmp["max_abs_diff"] < 1e-3 and cmp["argmax_agree"], cmp
    ref["numpy_float64_max_abs_diff"] = cmp["max_abs_diff"]
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")

    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    assert size < 1_000_000, size
    print(f"{s.name}: files={sorted(os.listdir(folder))} size={size}B tokens={tokens}")
    print(f"   logits min={st['min']:.3f} max={st['max']:.3f} std={st['std']:.3f} "
          f"pos-std=[{st['per_position_std_min']:.3f},{st['per_position_std_max']:.3f}] "
          f"min adjacent max|Δ|={st['min_max_abs_change_between_adjacent_positions']:.3f} "
          f"numpy max|diff|={cmp['max_abs_diff']:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", choices=sorted(SETS), default="default")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, safetensors "
          f"{safetensors.__version__}, numpy {np.__version__}")
    for s in SETS[args.set]:
        build(s, args.out)


if __name__ == "__main__":
    main()
