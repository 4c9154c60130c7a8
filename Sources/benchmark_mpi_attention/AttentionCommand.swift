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
        Inputs are random (seeded) q (T, heads, head_dim) and K/V caches (kv_heads, S, head_dim), \
        filled once per sequence length. prefill: S queries at positions 0..S-1 over S keys (causal). \
        decode: one query at position S-1 over S cached keys. GFLOP/s count only the causal part: \
        4 * head_dim * heads * S * (S + 1) / 2 for prefill, 4 * head_dim * heads * S for decode. \
        Percent of peak is against a one-core FMA probe of the ISA (256-bit for baseline and avx2, \
        512-bit for avx512) times threads times processes.

        Under mpirun (2 or more processes) each row is measured twice: first rank 0 alone runs the whole \
        problem with the same threads (the others sleep), then all ranks run the split. efficiency = \
        single-process time / (processes x split time); max_abs_diff compares the split output with \
        rank 0's. --parallel heads: each rank takes a contiguous share of the KV heads with their \
        query-head groups, then the outputs are all-gathered (more processes than KV heads is an error). \
        --parallel sequence, prefill: each rank \
        owns a zig-zag share of the query tokens (2P chunks; rank r takes chunks r and 2P-1-r, which \
        balances causal work) with their K/V rows; the K/V rows are all-gathered and each rank runs \
        attention for its chunks. --parallel sequence, decode: each rank takes a contiguous share of the \
        cache, computes a partial softmax state (max, denominator, unnormalised output; plain Swift, \
        not the --kernel) and the states are all-gathered and merged. comm_ms is the time in the \
        collectives, waiting for the other ranks included (the slowest rank's, median over iterations); each split iteration starts at a \
        barrier and lasts as long as its slowest rank.
        """)

    @Option(name: .customLong("seq-len"), help: "Sequence lengths S (comma-separated list).")
    var seqLen: String = "128,2048"

    @Option(help: "prefill, decode, or both (comma-separated).")
    var phase: String = "prefill,decode"

    @Option(help: "standard, streaming, or both (comma-separated).")
    var kernel: String = "standard,streaming"

    @Option(help: "Timed iterations per row.")
    var iters: Int = 5

    @Option(help: "Untimed warm-up iterations per row.")
    var warmup: Int = 1

    @Option(help: "OpenMP threads per process (comma-separated list). Default: OMP_NUM_THREADS, else the available cores (shared by the ranks on a host).")
    var threads: String?

    @Option(help: "Query heads.")
    var heads: Int = 16

    @Option(name: .customLong("kv-heads"), help: "Key/value heads (heads must be a multiple).")
    var kvHeads: Int = 8

    @Option(name: .customLong("head-dim"), help: "Head dimension.")
    var headDim: Int = 128

    @Option(name: .customLong("q-block"), help: "Streaming attention: query tokens per block (each with its KV head's group of query heads). Default \(Settings.defaultQBlock).")
    var qBlock: Int?

    @Option(name: .customLong("kv-block"), help: "Streaming attention: keys per block. Default \(Settings.defaultKVBlock).")
    var kvBlock: Int?

    @Option(help: "Under mpirun: heads or sequence. Default heads.")
    var parallel: String?

    @Option(help: "Kernels: baseline, avx2 or avx512. Default: the fastest this CPU supports.")
    var isa: String?

    @Option(help: "Seed of the random inputs.")
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

/// The options, checked against each other once, before MPI starts.
struct Settings {
    static let defaultQBlock = AttentionKind.defaultQBlock
    static let defaultKVBlock = AttentionKind.defaultKVBlock

    let seqLens: [Int]
    let phases: [Phase]
    let kernels: [AttentionKind]
    let iterations: Int
    let warmup: Int
    let threads: [ThreadChoice]
    let heads: Int
    let kvHeads: Int
    let headDim: Int
    let split: Split?
    let isa: KernelISA
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
        let qBlock = o.qBlock ?? Self.defaultQBlock, kvBlock = o.kvBlock ?? Self.defaultKVBlock
        guard qBlock >= 1, kvBlock >= 1 else {
            throw RequestError("--q-block and --kv-block must be at least 1, got \(qBlock) and \(kvBlock)")
        }
        kernels = names.map { $0 == "standard" ? .standard : .streaming(qBlock: qBlock, kvBlock: kvBlock) }
        guard o.iters >= 1 else { throw RequestError("--iters must be at least 1, got \(o.iters)") }
        guard o.warmup >= 0 else { throw RequestError("--warmup must be 0 or more, got \(o.warmup)") }
        iterations = o.iters
        warmup = o.warmup
        guard o.heads >= 1, o.kvHeads >= 1, o.headDim >= 1 else {
            throw RequestError("--heads, --kv-heads and --head-dim must be at least 1, got \(o.heads), \(o.kvHeads) and \(o.headDim)")
        }
        guard o.heads % o.kvHeads == 0 else {
            throw RequestError("--heads (\(o.heads)) must be a multiple of --kv-heads (\(o.kvHeads))")
        }
        heads = o.heads
        kvHeads = o.kvHeads
        headDim = o.headDim

        if let name = o.isa {
            guard let isa = KernelISA(rawValue: name) else {
                throw RequestError("--isa must be one of \(KernelISA.allCases.map(\.rawValue).joined(separator: ", ")), got \(name)")
            }
            guard isa.isSupported else { throw RequestError("--isa \(name): this CPU lacks its instructions") }
            self.isa = isa
            isaSource = "--isa"
        } else {
            isa = KernelISA.fastestSupported
            isaSource = "fastest on this CPU"
        }
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

        if let name = o.parallel {
            guard let split = Split(rawValue: name) else { throw RequestError("--parallel must be heads or sequence, got \(name)") }
            guard processes > 1 else { throw RequestError("--parallel applies only under mpirun with 2 or more processes") }
            self.split = split
        } else {
            split = processes > 1 ? .heads : nil
        }
        // Each rank needs at least one unit of the split.
        if split == .heads && processes > kvHeads {
            throw RequestError("--parallel heads splits the \(kvHeads) KV heads (each with its query heads) over the processes; \(processes) processes are more than that")
        }
        if split == .sequence, let short = seqLens.first(where: { $0 < processes }) {
            throw RequestError("--parallel sequence splits the \(short) tokens of --seq-len \(short) over the processes; \(processes) processes are more than that")
        }
        try checkMemory()
    }

    /// Standard attention materialises T x S scores per thread: refuse up front what would not fit.
    private func checkMemory() throws {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        for s in seqLens {
            let inputs = (phases.contains(.prefill) ? 3 : 2) * s * heads * headDim + 2 * kvHeads * s * headDim
            for kind in kernels {
                for t in threads {
                    let scratch = AttentionKernels.scratchFloats(kind, tokens: phases.contains(.prefill) ? s : 1,
                                                                 pos0: phases.contains(.prefill) ? 0 : s - 1,
                                                                 headDim: headDim, group: heads / kvHeads, slots: t.count)
                    let bytes = 4 * (scratch + inputs)
                    if bytes > physical * 3 / 4 {
                        throw RequestError("--seq-len \(s) with \(kind.name) attention and \(t.count) threads needs \(bytes) bytes (\(bytes >> 20) MiB, scores \(4 * scratch) bytes), more than 3/4 of this machine's \(physical >> 20) MiB")
                    }
                }
            }
        }
    }
}
