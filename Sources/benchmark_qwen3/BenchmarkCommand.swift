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
        inputs to bfloat16 (float32 sums), everything else stays float32.

        Prefill times one forward pass over the prompt with logits for the last position only; \
        decode times --gen-len single-token steps through the KV cache that follow a prefill of the \
        prompt (the prefill is timed and reported separately). Sampling is never timed: decode \
        feeds seeded synthetic token ids.

        Logits dump: --tokens 1,2,3 --dump-logits OUT.npy runs the model once and writes float32 logits \
        of shape [tokens, vocab]; rows before --decode-from come from one prefill, later rows from \
        one decode step each.
        """,
        subcommands: [GenerateSynthetic.self])

    @Option(help: "Model: a .safetensors file (config.json beside it), a shard index, or a model folder. Default: synthetic Qwen3-0.6B.")
    var model: String?

    @Option(help: "Phase to time: prefill or decode.")
    var phase: String = "prefill"

    @Option(help: "baseline (plain OpenMP loops), avx2 (AVX2+FMA kernels), avx512 (AVX-512 matmul), or mpi, mpi+avx2, mpi+avx512 (the same, tensor parallel over the processes of mpirun). Default: the fastest this CPU supports.")
    var method: String?

    @Option(help: "Linear-layer weights in memory: f32 (converted at load; all math in float32) or bf16 (half the memory; activations rounded to bfloat16 at each matmul input, float32 sums; needs --method avx512 on a CPU with AVX512_BF16, or baseline).")
    var weights: String = "f32"

    @Option(help: "Parallel mode, as in the original tool: omp (one process) or mpi (turns --method baseline/avx2 into mpi/mpi+avx2). Default: implied by --method.")
    var mode: String?

    @Option(help: "Attention: standard (scores materialised per head) or streaming (block-wise online softmax).")
    var attention: String = "standard"

    @Option(help: "Streaming attention: queries per block. Default 64.")
    var qBlock: Int?

    @Option(help: "Streaming attention: keys per block. Default 64.")
    var kvBlock: Int?

    @Option(help: "Prompt tokens (synthetic ids from --seed). Default 128.")
    var promptLen: Int?

    @Option(help: "Timed iterations. Default 10.")
    var iters: Int?

    @Option(help: "Untimed warm-up iterations before the timed ones. Default 1.")
    var warmup: Int?

    @Option(help: "OpenMP threads per process. Default: OMP_NUM_THREADS if set, else every available core.")
    var threads: Int?

    @Option(help: "Decode phase: tokens generated per iteration. Default 32.")
    var genLen: Int?

    @Option(help: "Seed for the synthetic prompt and decode token ids. Default 0.")
    var seed: UInt64?

    @Flag(help: "Time each operation class (GEMMs by projection, attention, norms, RoPE, MPI, ...) in the timed iterations and report ms, share and GFLOP/s per phase.")
    var profile = false

    @Option(help: "Append one JSON object per run (options, every iteration's time, environment) to this file.")
    var json: String?

    @Option(help: "Comma-separated token ids: the prompt for a benchmark, or the input of --dump-logits.")
    var tokens: String?

    @Option(help: "Run the model once over --tokens and write all logits as a float32 .npy file.")
    var dumpLogits: String?

    @Option(help: "With --dump-logits: prefill the first K tokens, then decode the rest one at a time. Default: all prefill.")
    var decodeFrom: Int?

    static func main() { ToolMain.main(Self.self, tool: "benchmark_qwen3") }

    mutating func run() throws {
        var failure: String?
        do {
            try BenchmarkRun(options: self).execute()
        } catch let error as RequestError {
            failure = error.description
        } catch let error as ModelLoadError {
            failure = error.description
        } catch is JobFailure {
            Foundation.exit(1)  // every rank agreed on it and rank 0 has said so
        }
        // Errors found before MPI starts are the same on every rank; only rank 0 says so.
        if let failure {
            if (MPICommunicator.launchedRanks()?.rank ?? 0) == 0 { Self.report(failure) }
            Foundation.exit(1)
        }
    }

    static func report(_ message: String) { ToolMain.report("benchmark_qwen3", message) }
    static func fail(_ message: String) -> Never { ToolMain.fail("benchmark_qwen3", message) }
}
