#!/usr/bin/env python3
"""Writes the binary seeds of Tests/Fuzz/corpus: small valid and broken safetensors files and configs.
(The transformers-5 config.json and shard index seeds are copies of fixture files.)"""
import json
import os
import struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def safetensors(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def write(name, content):
    with open(os.path.join(out, name), "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())


f32 = lambda shape, begin, end: {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}
write("valid-two-tensors.safetensors", safetensors(
    {"__metadata__": {"format": "pt"}, "a": f32([2], 0, 8),
     "b": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [8, 12]}}, bytes(12)))
write("overlap.safetensors", safetensors({"a": f32([2], 0, 8), "b": f32([2], 4, 12)}, bytes(12)))
write("huge-shape.safetensors", safetensors({"a": f32([1 << 62, 4], 0, 16)}, bytes(16)))
write("header-too-long.safetensors", struct.pack("<Q", 1 << 62) + b"{}")
write("truncated.safetensors", b"\x10\x00\x00")
write("bad-dtype.safetensors", safetensors({"a": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)))
write("config-legacy.json", json.dumps(
    {"architectures": ["Qwen3ForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
     "num_hidden_layers": 1, "num_attention_heads": 2, "rope_theta": 5000, "rope_scaling": None}))
write("config-overflow.json", json.dumps(
    {"vocab_size": (1 << 63) - 1, "hidden_size": (1 << 63) - 1, "intermediate_size": 1,
     "num_hidden_layers": 1, "num_attention_heads": 1}))
