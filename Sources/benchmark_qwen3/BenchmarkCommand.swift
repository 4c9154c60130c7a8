// BenchmarkCommand.swift — the benchmark_qwen3 command line: options, their checks, and the run.
import ArgumentParser
import BenchSupport
import CKernels
import Foundation
import Qwen3

@main
struct BenchmarkQwen3: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark_qwen3",
        abstract: "Measure Qwen3 prefill and decode speed on CPUs, and dump logits for correctness checks.",
        discussion: """
        Without --model, a synthetic checkpoint with the exact Qwen3-0.6B shapes (bf16, random weights \
        from a fixed seed) is generated on first use into $QWEN3_BENCH_CACHE, else \
        $XDG_CACHE_HOME/qwen3-bench, else ~/.cache/qwen3-bench, and loaded like a real one. \
        With --weights f32 (the default) weights are converted to float32 at load and all compute \
        is float32; with --weights bf16 the linear layers keep bfloat16 weights and round their \
        inputs to bfloat16 (float32 sums), everything else stays float32; with --weights q8_0 or \
        q4_0 every linear layer (lm_head included) is quantized at load to GGUF's blocks of 32 \
        weights with a float16 scale (a layer whose input dimension is not a multiple of 32 keeps \
        float32), each matmul quantizes its input to int8 per block of 32, and the block sums are \
        exact int32 (vpdpbusd with AVX512_VNNI, vpmaddubsw with AVX2). The token embedding table is \
        held in the lm_head's format (bf16, q8_0 or q4_0 rows widened at lookup, as GGUF holds \
        token_embd); a tied model whose lm_head holds the whole vocabulary (one process, or \
        sequence parallelism) reads the lm_head's own rows, not a second copy. --accuracy adds, \
        per row, the max |dlogit|, mean KL and top-1 agreement against the float32 model on the \
        same tokens. \
        --kv-dtype bf16 stores the KV cache as bfloat16 (rounded when stored) and runs attention on \
        it with q and the softmax weights rounded to bfloat16 (float32 softmax and sums); the \
        default f32 is exact.

        Prefill times one forward pass over the prompt with logits for the last position only; \
        decode times --gen-len single-token steps through the KV cache that follow a prefill of the \
        prompt (the prefill is timed and reported separately). Sampling is never timed: decode \
        feeds seeded synthetic token ids.

        Sweeps: --method, --weights, --kv-dtype, --parallel, --attention, --q-block, --kv-block, --prompt-len, \
        --threads, --gen-len and --phase take comma-separated lists, and one run measures every \
        combination (block sizes only with streaming, --gen-len only with decode); the model is loaded \
        once per method, weights and parallel mode. Every combination is checked before anything runs. \
        Each test is one row (pp128: prefill of 128 tokens; tg32: 32 decode steps after the prompt) \
        with the mean, median, stddev, min, max and every sample of the timed iterations. After freeing \
        a model of 256 MiB or more, a sweep waits (30 s at most, with a note on stderr) until a VM's \
        kernel has reported the freed memory to the hypervisor, which stalls the vCPUs while it runs.

        Text prompts: --prompt TEXT or --prompt-file F replaces the synthetic ids with the text's tokens \
        (the model folder needs tokenizer.json); rows record their count (prompt_len), a hash of the \
        ids (prompt_hash) and where they came from (prompt_source). Subcommands generate and tokenize \
        turn text into text and ids (benchmark_qwen3 generate --help).

        Logits dump: --tokens 1,2,3 --dump-logits OUT.npy runs the model once and writes float32 logits \
        of shape [tokens, vocab]; rows before --decode-from come from one prefill, later rows from \
        one decode step each.
        """,
        subcommands: [GenerateSynthetic.self, GenerateCommand.self, TokenizeCommand.self])

    @Option(help: "Model: a .safetensors file (config.json beside it), a shard index, or a model folder. Default: synthetic Qwen3-0.6B.")
    var model: String?

    @Option(help: "Phase to time: prefill or decode (or both: prefill,decode).")
    var phase: String = "prefill"

    @Option(help: "baseline (plain OpenMP loops), avx2 (AVX2+FMA kernels), avx512 (AVX-512 matmul, attention and SwiGLU), or mpi, mpi+avx2, mpi+avx512 (the same, split over the processes of mpirun); a comma-separated list runs each. Default: the fastest this CPU supports.")
    var method: String?

    @Option(help: "Linear-layer weights in memory: f32 (converted at load; all math in float32), bf16 (half the memory; activations rounded to bfloat16 at each matmul input, float32 sums; needs --method avx512 on a CPU with AVX512_BF16, or baseline), q8_0 or q4_0 (GGUF's blocks of 32 weights with a float16 scale, quantized at load, 1.0625 / 0.5625 bytes per weight; activations quantized to int8 per block of 32 at each matmul input, exact int32 block sums; avx512 needs AVX512_VNNI); or a list.")
    var weights: String = "f32"

    @Flag(help: "After each test, also run the float32 model of the same method on the prompt's tokens and add to the row how far this test's logits are from it over all positions: max_abs_dlogit, kl_mean (mean KL divergence of the next-token distribution, f32 || this) and top1_agreement.")
    var accuracy = false
    @Option(help: "KV cache elements: f32 (exact) or bf16 (keys and values rounded to nearest even when stored, half the bytes; avx512 then runs attention with vdpbf16ps and needs AVX512_BF16, avx2 widens the cache to f32 on load); or a list.")
    var kvDtype: String = "f32"

    @Option(help: "Parallel mode, as in the original tool: omp (one process) or mpi (turns --method baseline/avx2 into mpi/mpi+avx2). Default: implied by --method.")
    var mode: String?

    @Option(help: """
        How the MPI methods split the work (list allowed). heads (default): tensor parallel; weights \
        divided over the ranks, activations replicated, two all-reduces per layer. sequence: weights \
        replicated on every rank, the prompt's tokens split zig-zag, only keys and values all-gathered \
        per layer; decode steps are not split (every rank runs them whole). Only with mpi methods.
        """)
    var parallel: String?

    @Option(help: "Attention: standard (scores materialised per head) or streaming (block-wise online softmax), or both: standard,streaming.")
    var attention: String = "standard"

    @Option(help: "Streaming attention: query tokens per block, each with all the query heads of its KV head (list allowed). Default \(AttentionKind.defaultQBlock).")
    var qBlock: String?

    @Option(help: "Streaming attention: keys per block (list allowed). Default \(AttentionKind.defaultKVBlock).")
    var kvBlock: String?

    @Option(help: "Prompt tokens (synthetic ids from --seed); a list such as 32,128,512 runs each. Default 128. Not with --tokens, --prompt or --prompt-file, whose tokens set the length.")
    var promptLen: String?

    @Option(help: "Prompt text, tokenized with the model folder's tokenizer.json: its tokens are the prompt of prefill and decode (their count is the prompt length).")
    var prompt: String?

    @Option(help: "A UTF-8 file holding the prompt text (as --prompt).")
    var promptFile: String?

    @Option(help: "Timed iterations per test. Default 10.")
    var iters: Int?

    @Option(help: "Untimed warm-up iterations before the timed ones, per test. Default 1.")
    var warmup: Int?

    @Option(help: "OpenMP threads per process (list allowed). Default: OMP_NUM_THREADS if set, else every available core.")
    var threads: String?

    @Option(help: "Decode phase: tokens generated per iteration (list allowed). Default 32.")
    var genLen: String?

    @Option(help: "Seed for the synthetic prompt and decode token ids. Default 0.")
    var seed: UInt64?

    @Flag(help: "Time each operation class (GEMMs by projection, attention, norms, RoPE, MPI, waiting at barriers) in the timed iterations and report ms, share and GFLOP/s per phase, per rank under MPI.")
    var profile = false

    @Option(name: [.customShort("o"), .customLong("output")],
            help: "Output on stdout: text (the report of each test, then a summary table), md, csv, json or jsonl (one row per test).")
    var output: String = "text"

    @Option(help: "Append every test's row (the same as -o jsonl) to this file.")
    var json: String?

    @Flag(help: "No progress on stderr (progress is shown only when stderr is a terminal).")
    var quiet = false

    @Option(help: "Comma-separated token ids: the prompt for a benchmark, or the input of --dump-logits.")
    var tokens: String?

    @Option(help: "Run the model once over --tokens and write all logits as a float32 .npy file.")
    var dumpLogits: String?

    @Option(help: "With --dump-logits: prefill the first K tokens, then decode the rest one at a time. Default: all prefill.")
    var decodeFrom: Int?

    /// A subcommand parses its own arguments: left to ArgumentParser, the root's options of the same
    /// name (--model, --json, --seed) would claim them.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let name = arguments.first,
           let subcommand = configuration.subcommands.first(where: { $0.configuration.commandName == name }) {
            ToolMain.main(subcommand, tool: "benchmark_qwen3", arguments: Array(arguments.dropFirst()))
        } else {
            ToolMain.main(Self.self, tool: "benchmark_qwen3")
        }
    }

    mutating func run() throws {
        let command = self
        ToolMain.execute(tool: "benchmark_qwen3") { try BenchmarkRun(options: command).execute() }
    }

    static func report(_ message: String) { ToolMain.report("benchmark_qwen3", message) }
    static func fail(_ message: String) -> Never { ToolMain.fail("benchmark_qwen3", message) }
}
