// AttentionCommand.swift — the benchmark_mpi_attention command line: options, their checks, and the run.
import ArgumentParser
import BenchSupport
import Foundation
import Qwen3

@main
struct BenchmarkMPIAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark_mpi_attention",
        abstract: "Time causal attention alone (standard vs streaming, prefill and decode), on one process or split over mpirun's.",
        discussion: """
        Options marked (list) take comma-separated values, and one run measures every combination: \
        the shapes (--heads x --kv-heads x --head-dim), --seq-len, --phase, --kv-dtype, --isa, --parallel, --threads and \
        --kernel, with --q-block x --kv-block expanding only the streaming rows. vs standard divides the \
        standard row's median by each row's, between rows that agree on every other option.

        Inputs are random (seeded) q (T, heads, head_dim) and K/V caches (kv_heads, S, head_dim), \
        filled once per shape and sequence length; --kv-dtype bf16 rows read the same K/V rounded to bfloat16 \
        (avx512: vdpbf16ps with q and the softmax weights rounded to bf16, needs AVX512_BF16; avx2: the cache \
        widened to f32 on load; baseline: the plain-C reference of the avx512 rounding), and their splits move \
        bf16. prefill: S queries at positions 0..S-1 over S keys (causal). \
        decode: one query at position S-1 over S cached keys. GFLOP/s count only the causal part: \
        4 * head_dim * heads * S * (S + 1) / 2 for prefill, 4 * head_dim * heads * S for decode. \
        Percent of peak is against a one-core FMA probe of the ISA (256-bit for baseline and avx2, \
        512-bit for avx512) times threads times processes; bf16 rows too (vdpbf16ps does two \
        multiply-adds per lane, so they can pass 100%).

        Under mpirun (2 or more processes) each row is measured twice: first rank 0 alone runs the whole \
        problem with the same threads (the others sleep), then all ranks run the split. efficiency = \
        single-process time / (processes x split time); max_abs_diff compares the split output with \
        rank 0's. Every split is the model's (Qwen3's ParallelPlan). --parallel heads: each rank takes a \
        contiguous share of the query heads with the KV heads they read (a KV head is replicated when \
        processes outnumber KV heads or a group straddles two ranks), then the outputs are all-gathered \
        (more processes than query heads is an error). --parallel sequence, prefill: each rank \
        owns a zig-zag share of the query tokens (2P chunks; rank r takes chunks r and 2P-1-r, which \
        balances causal work) with their K/V rows; the K/V rows are all-gathered and each rank runs \
        attention for its chunks. --parallel sequence, decode: each rank takes a contiguous slice of the \
        cache, computes the partial softmax state of its keys (max, denominator, unnormalised output) \
        with the streaming kernel of the ISA (standard rows too: standard attention has no partial \
        state), and the states are all-gathered and merged. kernel_isa names the instructions the \
        measured kernel ran: under avx512, streaming tiles of fewer than 8 query rows (decode with a \
        small group) run the AVX2 tile. comm_ms is the time in the \
        collectives, waiting for the other ranks included (the slowest rank's, median over iterations); each split iteration starts at a \
        barrier and lasts as long as its slowest rank.
        """)

    @Option(name: .customLong("seq-len"), help: "Sequence lengths S (list).")
    var seqLen: String = "128,2048"

    @Option(help: "prefill, decode, or both (list).")
    var phase: String = "prefill,decode"

    @Option(help: "standard, streaming, or both (list).")
    var kernel: String = "standard,streaming"

    @Option(name: .customLong("kv-dtype"), help: "K/V cache elements: f32, bf16, or both (list).")
    var kvDtype: String = "f32"

    @Option(help: "Timed iterations per row (one value).")
    var iters: Int = 5

    @Option(help: "Untimed warm-up iterations per row (one value).")
    var warmup: Int = 1

    @Option(help: "OpenMP threads per process (list). Default: OMP_NUM_THREADS, else the available cores (shared by the ranks on a host).")
    var threads: String?

    @Option(help: "Query heads (list).")
    var heads: String = "16"

    @Option(name: .customLong("kv-heads"), help: "Key/value heads (list; each --heads must be a multiple of each).")
    var kvHeads: String = "8"

    @Option(name: .customLong("head-dim"), help: "Head dimension (list).")
    var headDim: String = "128"

    @Option(name: .customLong("q-block"), help: "Streaming attention: query tokens per block, each with its KV head's group of query heads (list; streaming rows only). Default \(Settings.defaultQBlock).")
    var qBlock: String?

    @Option(name: .customLong("kv-block"), help: "Streaming attention: keys per block (list; streaming rows only). Default \(Settings.defaultKVBlock).")
    var kvBlock: String?

    @Option(help: "Under mpirun: heads, sequence, or both (list). Default heads.")
    var parallel: String?

    @Option(help: "Kernels: baseline, avx2, avx512 (list; each must run on this CPU). Default: the fastest this CPU supports.")
    var isa: String?

    @Option(help: "Seed of the random inputs (one value).")
    var seed: UInt64 = 0

    @Option(name: [.short, .customLong("output")], help: "Output: text, md, csv, json or jsonl.")
    var output: String = "text"

    @Option(help: "Append one JSON object per row to this file.")
    var json: String?

    @Flag(help: "No progress line on stderr.")
    var quiet = false

    static func main() { ToolMain.main(Self.self, tool: "benchmark_mpi_attention") }

    mutating func run() throws {
        let command = self
        ToolMain.execute(tool: "benchmark_mpi_attention") { try AttentionSweep(settings: try Settings(command)).execute() }
    }

    static func report(_ message: String) { ToolMain.report("benchmark_mpi_attention", message) }
}

enum Phase: String { case prefill, decode }
enum Split: String { case heads, sequence }

/// The head layout and size of one attention problem.
struct Shape: Equatable {
    let heads: Int
    let kvHeads: Int
    let headDim: Int

    /// Query heads per KV head.
    var group: Int { heads / kvHeads }
    var label: String { "\(heads)/\(kvHeads) heads, d\(headDim)" }
}

/// The options, parsed into the lists of the sweep and checked against each other once, before MPI
/// starts: no combination can fail halfway through.
struct Settings {
    static let defaultQBlock = AttentionKind.defaultQBlock
    static let defaultKVBlock = AttentionKind.defaultKVBlock

    let seqLens: [Int]
    let phases: [Phase]
    let kvPrecisions: [KVPrecision]
    let kernels: [AttentionKind]   // standard, then streaming for every --q-block x --kv-block
    let iterations: Int
    let warmup: Int
    let threads: [ThreadChoice]
    let shapes: [Shape]            // every --heads x --kv-heads x --head-dim
    let splits: [Split?]           // [nil] on one process
    let isas: [KernelISA]
    let isaSource: String
    let seed: UInt64
    let format: OutputFormat
    let jsonPath: String?
    let quiet: Bool
    let processes: Int

    init(_ o: BenchmarkMPIAttention) throws {
        seqLens = try ListOption.integers(o.seqLen, option: "--seq-len", range: 1...1_048_576)
        phases = try ListOption.choices(o.phase, option: "--phase", from: ["prefill", "decode"]).map { Phase(rawValue: $0)! }
        let names = try ListOption.choices(o.kernel, option: "--kernel", from: ["standard", "streaming"])
        if !names.contains("streaming") {
            if o.qBlock != nil { throw RequestError("--q-block applies only to --kernel streaming") }
            if o.kvBlock != nil { throw RequestError("--kv-block applies only to --kernel streaming") }
        }
        let qBlocks = try o.qBlock.map { try ListOption.integers($0, option: "--q-block", range: 1...65_536) } ?? [Self.defaultQBlock]
        let kvBlocks = try o.kvBlock.map { try ListOption.integers($0, option: "--kv-block", range: 1...65_536) } ?? [Self.defaultKVBlock]
        kernels = names.flatMap { name -> [AttentionKind] in
            name == "standard" ? [.standard] : qBlocks.flatMap { q in kvBlocks.map { .streaming(qBlock: q, kvBlock: $0) } }
        }
        guard o.iters >= 1 else { throw RequestError("--iters must be at least 1, got \(o.iters)") }
        guard o.warmup >= 0 else { throw RequestError("--warmup must be 0 or more, got \(o.warmup)") }
        iterations = o.iters
        warmup = o.warmup

        let heads = try ListOption.integers(o.heads, option: "--heads", range: 1...65_536)
        let kvHeads = try ListOption.integers(o.kvHeads, option: "--kv-heads", range: 1...65_536)
        let headDims = try ListOption.integers(o.headDim, option: "--head-dim", range: 1...65_536)
        var shapes: [Shape] = []
        for h in heads {
            for kv in kvHeads {
                guard h % kv == 0 else { throw RequestError("--heads (\(h)) must be a multiple of --kv-heads (\(kv))") }
                for d in headDims { shapes.append(Shape(heads: h, kvHeads: kv, headDim: d)) }
            }
        }
        self.shapes = shapes
        kvPrecisions = try ListOption.choices(o.kvDtype, option: "--kv-dtype", from: KVPrecision.allCases.map(\.rawValue))
            .map { KVPrecision(rawValue: $0)! }

        if let text = o.isa {
            isas = try ListOption.choices(text, option: "--isa", from: KernelISA.allCases.map(\.rawValue)).map { KernelISA(rawValue: $0)! }
            if let missing = isas.first(where: { !$0.isSupported }) {
                throw RequestError("--isa \(missing.rawValue): this CPU lacks its instructions")
            }
            isaSource = "--isa"
        } else {
            isas = [KernelISA.fastestSupported]
            isaSource = "fastest on this CPU"
        }
        for isa in isas { for kv in kvPrecisions { try isa.check(weights: .f32, kv: kv) } }
        seed = o.seed
        guard let format = OutputFormat(rawValue: o.output) else {
            throw RequestError("-o must be one of \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")), got \(o.output)")
        }
        self.format = format
        if let path = o.json { try ResultTable.checkWritable(path, option: "--json") }
        jsonPath = o.json
        quiet = o.quiet

        let launch = MPICommunicator.launchedRanks()
        processes = launch?.size ?? 1
        if let list = o.threads {
            threads = try ListOption.integers(list, option: "--threads", range: 1...4096).map {
                ThreadChoice(count: $0, source: "--threads")
            }
        } else {
            threads = [try ThreadChoice.resolve(option: nil, localRanks: launch?.localSize ?? 1)]
        }

        if let text = o.parallel {
            let names = try ListOption.choices(text, option: "--parallel", from: ["heads", "sequence"])
            guard processes > 1 else { throw RequestError("--parallel applies only under mpirun with 2 or more processes") }
            splits = names.map { Split(rawValue: $0)! }
        } else {
            splits = [processes > 1 ? .heads : nil]
        }
        // Each rank needs at least one unit of the split, in every shape and length.
        if splits.contains(.heads), let few = shapes.first(where: { processes > $0.heads }) {
            throw RequestError("--parallel heads splits the \(few.heads) query heads over the processes; \(processes) processes are more than that")
        }
        if splits.contains(.sequence), let short = seqLens.first(where: { $0 < processes }) {
            throw RequestError("--parallel sequence splits the \(short) tokens of --seq-len \(short) over the processes; \(processes) processes are more than that")
        }
        try checkMemory()
    }

    /// Standard attention materialises T x S scores per thread: refuse up front what would not fit.
    private func checkMemory() throws {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let prefill = phases.contains(.prefill)
        for shape in shapes {
            for s in seqLens {
                let inputs = (prefill ? 3 : 2) * s * shape.heads * shape.headDim + 2 * shape.kvHeads * s * shape.headDim
                for kind in kernels {
                    for t in threads {
                        let scratch = AttentionKernels.scratchFloats(kind, tokens: prefill ? s : 1, pos0: prefill ? 0 : s - 1,
                                                                     headDim: shape.headDim, group: shape.group, slots: t.count)
                        let bytes = 4 * (scratch + inputs)
                        if bytes > physical * 3 / 4 {
                            throw RequestError("--seq-len \(s) with \(kind.name) attention, \(shape.heads)/\(shape.kvHeads) heads of \(shape.headDim) and \(t.count) threads needs \(bytes) bytes (\(bytes >> 20) MiB, scores \(4 * scratch) bytes), more than 3/4 of this machine's \(physical >> 20) MiB")
                        }
                    }
                }
            }
        }
    }
}
