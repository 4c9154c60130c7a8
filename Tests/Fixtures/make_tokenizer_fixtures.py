#!/usr/bin/env python3
"""Make the text fixtures: a small Qwen-style tokenizer, its encodings, and a tiny Qwen3 with greedy ids.

    python3 Tests/Fixtures/make_tokenizer_fixtures.py --out Tests/Fixtures          # committed fixtures
    python3 Tests/Fixtures/make_tokenizer_fixtures.py --qwen-tiktoken qwen.tiktoken \
        --out Tests/Fixtures                                                        # + qwen-full-vocab/

Writes, under --out:
- text-tiny-f32/: tokenizer.json (a byte-level BPE trained here with Qwen2/Qwen3's normalizer,
  pre-tokenizer, decoder and the 26 added tokens of Qwen3's vocabulary, in Qwen's order), a random
  Qwen3 checkpoint whose vocabulary is the tokenizer's (config.json, generation_config.json,
  model.safetensors) and greedy.json: transformers' generate(do_sample=False) ids for two prompts.
- tokenizer-cases.json: the test corpus, the `tokenizers` library's ids for each text, its decode of
  those ids, and its decodes of seeded random id lists (which cut UTF-8 sequences apart).
- with --qwen-tiktoken (the `qwen.tiktoken` that the `dashscope` wheel ships in dashscope/resources;
  `pip download dashscope --no-deps` then unzip): qwen-full-vocab/ with Qwen's 151,643 ranks
  converted by transformers' TikTokenConverter (needs `pip install tiktoken`) plus Qwen3's added
  tokens and NFC, and cases.json with the same corpus's ids. Several MB: not committed
  (.gitignore); the Swift test skips it when absent.
Deterministic: fixed seeds, one torch thread.
"""
import argparse
import json
import os
import random
import shutil

import torch
import transformers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Qwen3's added tokens from id 151643 on, in order, with their `special` flags.
QWEN_ADDED = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]

TRAINING_PARAGRAPHS = [
    "The quick brown fox jumps over the lazy dog. It's what they'd said they'll do, and we've done it; I'm sure.",
    "Machine learning models process text as tokens. A tokenizer splits the input into pieces that the model "
    "has seen during training, and maps every piece to an integer identifier.",
    "In 2024, the team measured 1,234,567 tokens per second on 128 cores; the median latency was 3.14 ms.",
    "def forward(self, x):\n    h = self.norm(x)\n    return x + self.mlp(h)\n\nfor i in range(10):\n\tprint(i * 2)\n",
    "fn main() { let v: Vec<i32> = (0..10).map(|x| x * x).collect(); println!(\"{:?}\", v); }",
    "自然语言处理是人工智能的一个重要方向。我们今天讨论分词器的实现。机器学习模型需要大量的数据。",
    "日本語の文章も正しく分割されるべきです。東京は日本の首都です。ひらがなとカタカナと漢字。",
    "한국어 문장도 포함됩니다. 서울은 한국의 수도입니다.",
    "اللغة العربية تكتب من اليمين إلى اليسار. مرحبا بالعالم.",
    "Ελληνικά γράμματα: αβγδε. Русский текст: привет, мир! Добро пожаловать.",
    "Emoji: 😀 🎉 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ — and café, naïve, résumé, Zürich, São Paulo.",
    "Line one\r\nLine two\r\n\r\nIndented    by spaces\n\t\ttabs\n   \n",
    "<html><body><p class=\"x\">Hello &amp; welcome!</p></body></html>",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name ORDER BY 2 DESC;",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 3.5e-7 0x1F ½ ² ٣ 四",
]

TEST_CORPUS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "It's, they'RE, we'VE, I'm, you'll, he'd, SHE'S isn't",
    "   leading spaces and trailing spaces   ",
    "multiple     spaces\tand\ttabs\t\t\tand\nnewlines\n\n\nend",
    "windows\r\nline\r\nendings\r\n\r\n",
    "mixed \r \n \r\n\t \u000b \u000c \u0085 \u00a0 \u3000 \u2028 spaces",
    "自然语言处理是人工智能的一个重要方向。",
    "東京は日本の首都です。ひらがな、カタカナ、漢字。",
    "서울은 한국의 수도입니다.",
    "مرحبا بالعالم، هذه جملة عربية.",
    "Русский текст и Ελληνικά.",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flag 🏳️‍🌈 heart ❤️ keycap 1️⃣",
    "combining: cafe\u0301 nai\u0308ve A\u030a e\u0301\u0301 \u1100\u1161\u11a8 Å",
    "precomposed: café naïve Å",
    "def f(x):\n    return x**2 + 3*x - 1  # comment\n\nif __name__ == '__main__':\n\tf(2)\n",
    "int main(void) { return printf(\"%d\\n\", 42) > 0 ? 0 : 1; }",
    "numbers 1234567890 3.14159 -42 1e10 0xDEADBEEF ½ ٣٤ 四五",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more<think>\n\n</think>\n\nafter",
    "<|im_start|><|im_end|><|im_start|>",
    "not special: <|im_start |> <im_end> <|unknown|>",
    "punctuation!!! ??? ... --- *** ((())) [[]] {{}} \"quotes\" 'single'",
    "\n",
    " ",
    "a",
    "",
    "\t\t\n\n  \n",
    "https://example.com/path?query=1&other=two#frag",
    "UPPER lower MiXeD CamelCase snake_case kebab-case",
    "Ünïcödé ÀÉÎÕÜ ß ﬁ ﬀ ẞ",
    "zero\u200bwidth\u200cjoiner\u200dhere",
    "\U0001F600" * 5 + "a" * 40 + " " * 17 + "b",
    "🧑‍💻 👩🏾‍🚀 🇯🇵 🇺🇸",
]


def build_tokenizer(lines, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    add_qwen_tokens(tok)
    return tok


def add_qwen_tokens(tok):
    for content, special in QWEN_ADDED:
        token = AddedToken(content, special=special, normalized=False)
        (tok.add_special_tokens if special else tok.add_tokens)([token])


def training_lines():
    rng = random.Random(7)
    lines = []
    for _ in range(60):
        for p in TRAINING_PARAGRAPHS:
            words = p.split(" ")
            rng.shuffle(words)
            lines.append(" ".join(words))
            lines.append(p)
    lines += [str(rng.randint(0, 10**9)) for _ in range(200)]
    # Made-up words (Latin syllables) and CJK pairs, each seen a few times, give a few thousand merges.
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(2500)]
    hanzi = [chr(0x4E00 + rng.randrange(400)) + chr(0x4E00 + rng.randrange(400)) for _ in range(600)]
    for _ in range(4):
        lines += [" ".join(rng.sample(words, 12)) for _ in range(250)]
        lines += ["".join(rng.sample(hanzi, 8)) for _ in range(80)]
    lines += TEST_CORPUS
    return lines


def random_id_lists(vocab, rng):
    return [[rng.randrange(vocab) for _ in range(rng.randint(1, 12))] for _ in range(40)]


def cases(tok, seed):
    rng = random.Random(seed)
    encoded = []
    for text in TEST_CORPUS:
        ids = tok.encode(text).ids
        encoded.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    decodes = [{"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)}
               for ids in random_id_lists(tok.get_vocab_size(), rng)]
    return {"encode": encoded, "decode": decodes}


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def make_model(folder, vocab, eos_ids):
    torch.manual_seed(4321)
    config = Qwen3Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                         rope_theta=1e6, rms_norm_eps=1e-6, max_position_embeddings=256, hidden_act="silu")
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0, 1.0 if "embed" in name else 0.5)
    model.generation_config = GenerationConfig(eos_token_id=eos_ids, pad_token_id=eos_ids[0], do_sample=False)
    model.save_pretrained(folder)
    return Qwen3ForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def greedy(model, prompt_ids, new_tokens):
    # eos_token_id=None keeps generate from stopping (and from masking anything): plain argmax steps.
    out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt_ids):].tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--qwen-tiktoken", help="qwen.tiktoken from the dashscope wheel: also write qwen-full-vocab/")
    args = ap.parse_args()
    torch.set_num_threads(1)

    tok = build_tokenizer(training_lines(), vocab_size=4000)
    folder = os.path.join(args.out, "text-tiny-f32")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    vocab = tok.get_vocab_size()
    eos = [tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")]
    model = make_model(folder, vocab, eos)
    tok.save(os.path.join(folder, "tokenizer.json"))
    write_json(os.path.join(args.out, "tokenizer-cases.json"), cases(tok, seed=11))

    prompts = {
        "plain": "The quick brown fox",
        "chat-no-think": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n自然语言处理 😀<|im_end|>\n"
                         "<|im_start|>assistant\n<think>\n\n</think>\n\n",
    }
    runs = []
    for name, text in prompts.items():
        ids = tok.encode(text).ids
        generated = greedy(model, ids, 64)
        runs.append({"name": name, "prompt": text, "prompt_ids": ids, "generated_ids": generated,
                     "eos_in_generated": [i for i, t in enumerate(generated) if t in eos]})
    write_json(os.path.join(folder, "greedy.json"), {
        "new_tokens": 64, "runs": runs, "eos_token_id": eos,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": __import__("tokenizers").__version__}})

    if args.qwen_tiktoken:
        from transformers.convert_slow_tokenizer import TikTokenConverter
        full = TikTokenConverter(vocab_file=args.qwen_tiktoken, pattern=QWEN_PATTERN).converted()
        full.normalizer = normalizers.NFC()
        add_qwen_tokens(full)
        assert full.token_to_id("<|endoftext|>") == 151643 and full.token_to_id("</think>") == 151668
        real = os.path.join(args.out, "qwen-full-vocab")
        os.makedirs(real, exist_ok=True)
        full.save(os.path.join(real, "tokenizer.json"))
        write_json(os.path.join(real, "cases.json"), cases(full, seed=12))


if __name__ == "__main__":
    main()
