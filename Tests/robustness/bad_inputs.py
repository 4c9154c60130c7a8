#!/usr/bin/env python3
"""Runs benchmark_qwen3 (and mpirun) on every kind of bad input issues 7 and 14 list and prints a Markdown
table of what each produced: exit code, signal (if any), stderr lines, the first of them, and
whether an output file was left behind. The test suite asserts these behaviours; this script shows
them side by side.

usage: Tests/robustness/bad_inputs.py PATH/TO/benchmark_qwen3 [PATH/TO/benchmark_mpi_attention]
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

tool = os.path.abspath(sys.argv[1])
attention_tool = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
work = tempfile.mkdtemp(prefix="bad-inputs-")
rows = []


def run(label, args, program=None, env=None, output=None):
    full_env = dict(os.environ, **(env or {}))
    try:
        p = subprocess.run([program or tool] + args, capture_output=True, text=True, timeout=120, env=full_env)
        code, err = p.returncode, p.stderr.strip().splitlines()
    except subprocess.TimeoutExpired:
        code, err = "timeout", ["(hung: killed after 120 s)"]
    signal = f"signal {-code}" if isinstance(code, int) and code < 0 else ""
    left = "yes" if output and os.path.exists(output) else ""
    ours = [line for line in err if ": error: " in line and not line.startswith("-")]
    first = ours[0] if ours else (err[0] if err else "")
    rows.append((label, str(code), signal, str(len(ours)), str(len(err) - len(ours)),
                 first.replace("|", "\\|").replace(work, "$TMP"), left))


def model(name, **changes):
    """A copy of the tiny valid model, with config keys changed."""
    folder = os.path.join(work, name)
    shutil.copytree(os.path.join(work, "good"), folder)
    cfg_path = os.path.join(folder, "config.json")
    cfg = json.load(open(cfg_path))
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    json.dump(cfg, open(cfg_path, "w"))
    return folder


def weights(name, data):
    folder = os.path.join(work, name)
    shutil.copytree(os.path.join(work, "good"), folder)
    open(os.path.join(folder, "model.safetensors"), "wb").write(data)
    return folder


def header_file(name, header, payload=b""):
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return weights(name, struct.pack("<Q", len(raw)) + raw + payload)


root = root_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
subprocess.run([tool, "generate-synthetic", "--out", os.path.join(work, "good"), "--dtype", "f32", "--layers", "1",
                "--hidden", "32", "--heads", "4", "--kv-heads", "2", "--head-dim", "8", "--intermediate", "64",
                "--vocab", "50"], check=True, capture_output=True)
good = os.path.join(work, "good")
good_bytes = open(os.path.join(good, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", good_bytes[:8])[0]
good_header = json.loads(good_bytes[8:8 + n])
bench = ["--iters", "1", "--prompt-len", "4"]

# Model path
run("model path missing", ["--model", "/nonexistent/model.safetensors"] + bench)
empty_dir = os.path.join(work, "empty"); os.mkdir(empty_dir)
run("folder without config.json", ["--model", empty_dir] + bench)
unreadable = model("unreadable"); os.chmod(os.path.join(unreadable, "model.safetensors"), 0)
if os.getuid() == 0 and shutil.which("setpriv"):  # root reads anything: run this one as nobody
    os.chmod(work, 0o755)
    run("unreadable weights (chmod 0, run as nobody)", ["--reuid=65534", "--regid=65534", "--clear-groups", tool,
        "--model", unreadable] + bench, program="setpriv", env={"HOME": "/tmp", "QWEN3_BENCH_COMMIT": "unknown"})
else:
    run("unreadable weights (chmod 0)", ["--model", unreadable] + bench)
run("not a safetensors file (text)", ["--model", weights("text", b"hello, this is not a checkpoint\n")] + bench)
run("empty file", ["--model", weights("emptyfile", b"")] + bench)
run("header length larger than the file", ["--model", weights("longheader", struct.pack("<Q", 10**6) + b"{}")] + bench)
run("header length absurd (2^63)", ["--model", weights("absurd", struct.pack("<Q", 2**63) + b"{}")] + bench)
run("header not JSON", ["--model", header_file("notjson", b"{not json")] + bench)
run("header not UTF-8", ["--model", header_file("notutf8", b'{"a\xff\xfe": 1}')] + bench)
first = next(k for k in good_header if k != "__metadata__")
h = json.loads(json.dumps(good_header)); h[first]["data_offsets"][1] += 10**9
run("tensor offsets outside the data", ["--model", header_file("outside", h, good_bytes[8 + n:])] + bench)
h = json.loads(json.dumps(good_header))
norms = [k for k in h if k.endswith("layernorm.weight")]  # two tensors of the same shape
h[norms[1]]["data_offsets"] = list(h[norms[0]]["data_offsets"])
run("overlapping tensors", ["--model", header_file("overlap", h, good_bytes[8 + n:])] + bench)
for dtype in ["I8", "F64"]:
    h = json.loads(json.dumps(good_header)); h[first]["dtype"] = dtype
    run(f"unsupported dtype {dtype}", ["--model", header_file("dtype" + dtype, h, good_bytes[8 + n:])] + bench)
run("shape disagreeing with config (hidden 48)", ["--model", model("shape", hidden_size=48)] + bench)
h = json.loads(json.dumps(good_header)); h.pop(first)
run(f"missing tensor ({first})", ["--model", header_file("missing", h, good_bytes[8 + n:])] + bench)
h = json.loads(json.dumps(good_header)); end = len(good_bytes) - 8 - n
h["model.extra.weight"] = {"dtype": "F32", "shape": [4], "data_offsets": [end, end + 16]}
run("unexpected tensor", ["--model", header_file("unexpected", h, good_bytes[8 + n:] + bytes(16))] + bench)
raw = good_bytes[8:8 + n].decode().strip()
dup = '{"%s": %s, ' % (first, json.dumps(good_header[first])) + raw[1:]  # the first tensor twice
run("duplicate tensor names", ["--model", weights("dup", struct.pack("<Q", len(dup)) + dup.encode() + good_bytes[8 + n:])] + bench)
sharded = model("sharded")
os.remove(os.path.join(sharded, "model.safetensors"))
json.dump({"weight_map": {k: "model-00002-of-00002.safetensors" for k in good_header if k != "__metadata__"}},
          open(os.path.join(sharded, "model.safetensors.index.json"), "w"))
run("shard index naming a missing shard", ["--model", sharded] + bench)
nan = bytearray(good_bytes); start = 8 + n + good_header[first]["data_offsets"][0]
nan[start:start + 4] = struct.pack("<f", float("nan"))
run("NaN in a weight", ["--model", weights("nan", bytes(nan))] + bench)
inf = bytearray(good_bytes); inf[start:start + 4] = struct.pack("<f", float("inf"))
run("Inf in a weight", ["--model", weights("inf", bytes(inf))] + bench)

# config.json
run("config: missing key (num_attention_heads)", ["--model", model("nokey", num_attention_heads=None)] + bench)
run("config: wrong type (hidden_size \"32\")", ["--model", model("type", hidden_size="32")] + bench)
run("config: zero size (intermediate_size 0)", ["--model", model("zero", intermediate_size=0)] + bench)
run("config: negative size (num_hidden_layers -1)", ["--model", model("neg", num_hidden_layers=-1)] + bench)
run("config: heads not dividing (kv heads 3)", ["--model", model("div", num_key_value_heads=3)] + bench)
run("config: another architecture (LlamaForCausalLM)", ["--model", model("arch", architectures=["LlamaForCausalLM"], model_type="llama")] + bench)

# Options
m = ["--model", good]
run("unknown option", m + ["--bogus"])
for args in (["--prompt-len", "0"], ["--prompt-len", "-3"], ["--prompt-len", "100000"], ["--iters", "0"], ["--threads", "0"],
             ["--attention", "streaming", "--q-block", "0"], ["--attention", "streaming", "--kv-block", "1000000000"],
             ["--prompt-len", "32,0,128"], ["--method", "avx2,fast"]):
    run("options: " + " ".join(args), m + args)
run("token id outside the vocabulary", m + ["--tokens", "1,2,50", "--dump-logits", os.path.join(work, "out1.npy")],
    output=os.path.join(work, "out1.npy"))
run("--dump-logits to an unwritable path", m + ["--tokens", "1,2", "--dump-logits", "/proc/x/out.npy"])
big = model("big", hidden_size=131072, intermediate_size=1048576, num_attention_heads=1024, num_key_value_heads=1024,
            head_dim=128, vocab_size=1000000)
run("model larger than memory (config of ~10^12 params)", ["--model", big] + bench)
run("request larger than memory (standard attention over 3,000,000 tokens)",
    ["--model", model("long", max_position_embeddings=1 << 23), "--iters", "1", "--prompt-len", "3000000"])

# Text (issue 14): the tiny model with a tokenizer, and the synthetic one without
text = os.path.join(root_dir, "Tests", "Fixtures", "text-tiny-f32")
gen = ["generate", "--model", text, "--max-new-tokens", "4"]
run("generate: model folder without tokenizer.json", ["generate", "--model", good, "--prompt", "hi"])
bad_tok = os.path.join(work, "badtok"); shutil.copytree(text, bad_tok)
open(os.path.join(bad_tok, "tokenizer.json"), "w").write('{"model": {"type": "BPE", ')
run("generate: malformed tokenizer.json", ["generate", "--model", bad_tok, "--prompt", "hi"])
latin1 = os.path.join(work, "latin1.txt"); open(latin1, "wb").write(b"caf\xe9\n")
run("generate: prompt file not UTF-8 (Latin-1)", gen + ["--prompt-file", latin1])
long_prompt = os.path.join(work, "long.txt"); open(long_prompt, "w").write("1" * 300)
run("generate: prompt longer than the context (300 > 256 tokens)", gen + ["--prompt-file", long_prompt])
run("generate: --max-new-tokens 0", gen[:-2] + ["--prompt", "hi", "--max-new-tokens", "0"])
run("generate: --prompt and --prompt-file", gen + ["--prompt", "hi", "--prompt-file", latin1])
run("generate: --top-k with greedy decoding", gen + ["--prompt", "hi", "--top-k", "5"])
run("benchmark: --prompt with --prompt-len", ["--model", text, "--prompt", "hi", "--prompt-len", "8",
    "--json", os.path.join(work, "rows.jsonl")], output=os.path.join(work, "rows.jsonl"))
run("benchmark: --prompt on the synthetic model (no tokenizer)", ["--model", good, "--prompt", "hi", "--iters", "1"])

# MPI
mpi_env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader"}
mpirun = ["--oversubscribe", "--bind-to", "none"]
run("mpirun -np 5 with 4 query heads (heads split)", mpirun + ["-np", "5", tool] + m + ["--method", "mpi"] + bench,
    program="mpirun", env=mpi_env)
run("mpirun -np 4, sequence split, 3-token prompt (allowed: exact logits)", mpirun + ["-np", "4", tool] + m
    + ["--method", "mpi", "--parallel", "sequence", "--iters", "1", "--prompt-len", "3"], program="mpirun", env=mpi_env)
run("one rank cannot read the model (MPMD)", mpirun + ["-np", "1", tool] + m + ["--method", "mpi"] + bench
    + [":", "-np", "1", tool, "--model", "/nonexistent/m.safetensors", "--method", "mpi"] + bench, program="mpirun", env=mpi_env)
run("single-process method under mpirun -np 2", mpirun + ["-np", "2", tool] + m + ["--method", "avx2"] + bench,
    program="mpirun", env=mpi_env)
if attention_tool:
    run("benchmark_mpi_attention: mpirun -np 3 with 2 KV heads", mpirun + ["-np", "3", attention_tool, "--heads", "4",
        "--kv-heads", "2", "--head-dim", "8", "--seq-len", "16", "--parallel", "heads"], program="mpirun", env=mpi_env)
    run("benchmark_mpi_attention: mpirun -np 3, sequence split of 2 tokens", mpirun + ["-np", "3", attention_tool, "--heads", "4",
        "--kv-heads", "2", "--head-dim", "8", "--seq-len", "2", "--parallel", "sequence"], program="mpirun", env=mpi_env)
    run("benchmark_mpi_attention: standard attention too large", ["--seq-len", "1000000", "--kernel", "standard",
        "--phase", "prefill"], program=attention_tool)
run("run_mpi_benchmark.sh with mpirun missing", [], program=os.path.join(root, "run_mpi_benchmark.sh"),
    env={"MPIRUN": "/nonexistent/mpirun"})

print("| input | exit | signal | our error lines | other stderr lines (mpirun's banner) | our message | file left |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
shutil.rmtree(work, ignore_errors=True)
