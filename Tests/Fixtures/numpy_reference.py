#!/usr/bin/env python3
"""Independent float64 NumPy reference forward for Qwen3 checkpoints.

Reads config.json and the safetensors weights with its own minimal safetensors
parser (no torch, no transformers, no safetensors package), runs the full-sequence
Qwen3 forward in float64 and returns logits [n_tokens, vocab_size].

Usage:
    python numpy_reference.py FIXTURE_DIR [FIXTURE_DIR ...]
        compares against FIXTURE_DIR/logits.npy for the tokens in reference.json
    --hf-rope-f32   build the RoPE cos/sin table the way HF does (float32) instead of float64
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    """Minimal safetensors reader: u64 LE header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        raw = bytes(data[start:end])
        dt = info["dtype"]
        if dt == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
            arr = (u16 << 16).view(np.float32)
        elif dt in _DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dt]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: unsupported dtype {dt} for {name}")
        assert arr.size == int(np.prod(shape)), (name, shape, arr.size)
        out[name] = arr.reshape(shape).astype(np.float64)
    return out


def load_checkpoint(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)["weight_map"]
        for shard in sorted(set(wmap.values())):
            part = read_safetensors(os.path.join(folder, shard))
            for k, v in part.items():
                assert wmap.get(k) == shard, f"{k} found in {shard} but index says {wmap.get(k)}"
                weights[k] = v
        missing = set(wmap) - set(weights)
        assert not missing, f"tensors listed in index but not found: {missing}"
    else:
        weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    return weights


def rope_theta_of(cfg):
    rp = cfg.get("rope_parameters")
    if rp is not None:
        assert rp.get("rope_type", "default") == "default", rp
        return float(rp["rope_theta"])
    rs = cfg.get("rope_scaling")
    assert rs is None, f"rope_scaling not supported here: {rs}"
    return float(cfg.get("rope_theta", 10000.0))


def rms_norm(x, w, eps):
    var = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(var + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rope_tables(n, head_dim, theta, hf_f32=False):
    if hf_f32:
        # Mirrors HF: inv_freq = 1/(base ** (arange(0,d,2,float32)/d)) in float32,
        # freqs = pos.float() * inv_freq in float32, cos/sin in float32.
        inv = (1.0 / (np.float32(theta) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))).astype(np.float32)
        freqs = np.arange(n, dtype=np.float32)[:, None] * inv[None, :]
        emb = np.concatenate([freqs, freqs], axis=-1)
        return np.cos(emb).astype(np.float64), np.sin(emb).astype(np.float64)
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    freqs = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [n, head_dim]; pairs are (i, i + head_dim/2)
    return np.cos(emb), np.sin(emb)


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(folder, tokens, hf_rope_f32=False):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    W = load_checkpoint(folder)
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    L = cfg["num_hidden_layers"]
    eps = cfg["rms_norm_eps"]
    tied = cfg.get("tie_word_embeddings", False)
    assert cfg.get("hidden_act", "silu") == "silu"
    assert not cfg.get("use_sliding_window", False)
    theta = rope_theta_of(cfg)
    group = nh // nkv

    toks = np.asarray(tokens, dtype=np.int64)
    n = len(toks)
    x = W["model.embed_tokens.weight"][toks]  # [n, H]
    cos, sin = rope_tables(n, hd, theta, hf_rope_f32)
    mask = np.triu(np.full((n, n), -np.inf), k=1)

    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        def proj(name, x_in):  # Linear: x W^T (+ b when attention_bias)
            y = x_in @ W[p + f"self_attn.{name}.weight"].T
            return y + W[p + f"self_attn.{name}.bias"] if p + f"self_attn.{name}.bias" in W else y
        q = proj("q_proj", h).reshape(n, nh, hd)
        k = proj("k_proj", h).reshape(n, nkv, hd)
        v = proj("v_proj", h).reshape(n, nkv, hd)
        q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)  # per head, over head_dim
        k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q = q * cos[:, None, :] + rotate_half(q) * sin[:, None, :]
        k = k * cos[:, None, :] + rotate_half(k) * sin[:, None, :]
        out = np.empty((n, nh, hd))
        for hq in range(nh):
            kv = hq // group  # query head hq uses KV head hq // (nh/nkv)
            s = (q[:, hq, :] @ k[:, kv, :].T) * hd ** -0.5 + mask
            s = s - s.max(axis=-1, keepdims=True)
            pr = np.exp(s)
            pr /= pr.sum(axis=-1, keepdims=True)
            out[:, hq, :] = pr @ v[:, kv, :]
        x = x + proj("o_proj", out.reshape(n, nh * hd))
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = h @ W[p + "mlp.gate_proj.weight"].T
        u = h @ W[p + "mlp.up_proj.weight"].T
        x = x + (silu(g) * u) @ W[p + "mlp.down_proj.weight"].T

    x = rms_norm(x, W["model.norm.weight"], eps)
    if tied:
        head = W["model.embed_tokens.weight"]
        if "lm_head.weight" in W:  # tied checkpoints may still carry a copy; HF ignores it
            assert np.array_equal(W["lm_head.weight"], head), "tied but lm_head.weight != embed_tokens.weight"
    else:
        head = W["lm_head.weight"]
    return x @ head.T


def compare(folder, hf_rope_f32=False):
    with open(os.path.join(folder, "reference.json")) as f:
        ref = json.load(f)
    hf = np.load(os.path.join(folder, "logits.npy"))
    ours = forward(folder, ref["tokens"], hf_rope_f32)
    assert ours.shape == hf.shape, (ours.shape, hf.shape)
    diff = np.abs(ours - hf.astype(np.float64))
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_logit": float(np.abs(hf).max()),
        "argmax_agree": bool((ours.argmax(-1) == hf.argmax(-1)).all()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--hf-rope-f32", action="store_true")
    args = ap.parse_args()
    worst = 0.0
    for d in args.dirs:
        r = compare(d, args.hf_rope_f32)
        worst = max(worst, r["max_abs_diff"])
        print(f"{os.path.basename(os.path.normpath(d)):45s} max|diff|={r['max_abs_diff']:.3e} "
              f"mean|diff|={r['mean_abs_diff']:.3e} max|logit|={r['max_abs_logit']:.2f} argmax_agree={r['argmax_agree']}")
    sys.exit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
