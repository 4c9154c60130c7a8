#!/usr/bin/env python3
"""Write a llama.cpp GGUF (arch "qwen3") from the synthetic HF-layout Qwen3 checkpoint, so llama-bench
runs the same shapes and weights as benchmark_qwen3 (bench/vs_llama_cpp.sh).

The checkpoint (config.json + model.safetensors, bf16) has no tokenizer, so a
dummy byte-level BPE ("gpt2", pre-tokenizer "qwen2") vocabulary of vocab_size
tokens is written: 256 GPT-2 byte symbols, filler tokens, and Qwen3's special
token strings at their real ids (151643...). It is only meant for llama-bench,
which feeds random token ids; text generation is meaningless.

Tensor layout mirrors convert_hf_to_gguf.py (Qwen3Model): 2-D weights in the
requested type (bf16 or f32), 1-D norm weights always f32, tied embeddings
-> no output.weight.

Usage: make_gguf.py MODEL_DIR OUT.gguf {bf16,f32}   (gguf-py on the path: bench/peers/build_llama_cpp.sh
installs the one llama.cpp vendors into a venv)
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import gguf

ARCH = "qwen3"

QWEN3_SPECIALS = {
    151643: ("<|endoftext|>", gguf.TokenType.CONTROL),
    151644: ("<|im_start|>", gguf.TokenType.CONTROL),
    151645: ("<|im_end|>", gguf.TokenType.CONTROL),
    151646: ("<|object_ref_start|>", gguf.TokenType.CONTROL),
    151647: ("<|object_ref_end|>", gguf.TokenType.CONTROL),
    151648: ("<|box_start|>", gguf.TokenType.CONTROL),
    151649: ("<|box_end|>", gguf.TokenType.CONTROL),
    151650: ("<|quad_start|>", gguf.TokenType.CONTROL),
    151651: ("<|quad_end|>", gguf.TokenType.CONTROL),
    151652: ("<|vision_start|>", gguf.TokenType.CONTROL),
    151653: ("<|vision_end|>", gguf.TokenType.CONTROL),
    151654: ("<|vision_pad|>", gguf.TokenType.CONTROL),
    151655: ("<|image_pad|>", gguf.TokenType.CONTROL),
    151656: ("<|video_pad|>", gguf.TokenType.CONTROL),
    151657: ("<tool_call>", gguf.TokenType.USER_DEFINED),
    151658: ("</tool_call>", gguf.TokenType.USER_DEFINED),
    151659: ("<|fim_prefix|>", gguf.TokenType.USER_DEFINED),
    151660: ("<|fim_middle|>", gguf.TokenType.USER_DEFINED),
    151661: ("<|fim_suffix|>", gguf.TokenType.USER_DEFINED),
    151662: ("<|fim_pad|>", gguf.TokenType.USER_DEFINED),
    151663: ("<|repo_name|>", gguf.TokenType.USER_DEFINED),
    151664: ("<|file_sep|>", gguf.TokenType.USER_DEFINED),
    151665: ("<tool_response>", gguf.TokenType.USER_DEFINED),
    151666: ("</tool_response>", gguf.TokenType.USER_DEFINED),
    151667: ("<think>", gguf.TokenType.USER_DEFINED),
    151668: ("</think>", gguf.TokenType.USER_DEFINED),
}


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def dummy_vocab(n_vocab):
    tokens, types = [], []
    for s in bytes_to_unicode():
        tokens.append(s); types.append(gguf.TokenType.NORMAL)
    tokens.append("\u0120\u0120"); types.append(gguf.TokenType.NORMAL)  # result of the single merge
    first_special = min(QWEN3_SPECIALS)
    for i in range(len(tokens), n_vocab):
        if i in QWEN3_SPECIALS:
            t, ty = QWEN3_SPECIALS[i]
        elif i < first_special:
            t, ty = f"<dummy_{i}>", gguf.TokenType.NORMAL
        else:
            t, ty = f"[PAD{i}]", gguf.TokenType.UNUSED
        tokens.append(t); types.append(ty)
    merges = ["\u0120 \u0120"]
    return tokens, types, merges


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    base = 8 + n
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "BF16", (name, info["dtype"])
        s, e = info["data_offsets"]
        out[name] = mm[base + s: base + e].view(np.uint16).reshape(info["shape"])
    return out


def bf16_to_f32(a):
    return (a.astype(np.uint32) << 16).view(np.float32)


def main():
    model_dir, out_path, outtype = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    assert outtype in ("bf16", "f32")
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["model_type"] == "qwen3" and cfg.get("tie_word_embeddings", False)
    assert not cfg.get("rope_scaling")
    n_layer = cfg["num_hidden_layers"]

    w = gguf.GGUFWriter(out_path, ARCH)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("Qwen3 0.6B synthetic (qwen3-bench v1)")
    w.add_block_count(n_layer)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(float(cfg["rope_theta"]))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if outtype == "bf16" else gguf.LlamaFileType.ALL_F32)

    n_vocab = cfg["vocab_size"]
    tokens, types, merges = dummy_vocab(n_vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(151643)
    w.add_eos_token_id(151645)
    w.add_pad_token_id(151643)
    w.add_add_bos_token(False)

    t = read_safetensors(model_dir / "model.safetensors")
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    per_layer = {
        "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    for i in range(n_layer):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    if "lm_head.weight" in t:
        raise SystemExit("untied lm_head present; this script only handles tied embeddings")
    assert set(t) == set(names), set(t) ^ set(names)

    # sanity: names must be valid for llama.cpp's qwen3 arch
    valid = {gguf.TENSOR_NAMES[x] for x in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.QWEN3]}
    order = ["model.embed_tokens.weight"] + [k for k in names if k.startswith("model.layers.")] + ["model.norm.weight"]
    for hf in order:
        gg = names[hf]
        base = gg.rsplit(".", 1)[0]
        templ = base if not base.startswith("blk.") else "blk.{bid}." + base.split(".", 2)[2]
        assert templ in valid, templ
        a = t[hf]
        if a.ndim == 1 or outtype == "f32":
            w.add_tensor(gg, bf16_to_f32(a))
        else:
            w.add_tensor(gg, np.ascontiguousarray(a), raw_dtype=gguf.GGMLQuantizationType.BF16)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
