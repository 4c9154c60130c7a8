// AttentionSweep.swift — the measured rows: random inputs per shape and S, the single-process run, and
// the MPI splits by heads and by sequence, each timed after warm-up.
import BenchSupport
import CKernels
import CMPI
import Foundation
import Qwen3

/// q, K and V of one shape and sequence length, the same on every rank (seeded).
struct Inputs {
    let shape: Shape
    let seqLen: Int
    let q: FloatBuffer       // (S, heads, headDim); decode's query is the last row, at position S-1
    let keys: FloatBuffer    // (kvHeads, S, headDim)
    let values: FloatBuffer  // (kvHeads, S, headDim)
    /// keys and values rounded to bfloat16, as a bf16 cache holds them (when --kv-dtype asks for it).
    let keys16: BFloat16Buffer?, values16: BFloat16Buffer?

    init(shape: Shape, seqLen s: Int, seed: UInt64, bf16: Bool) throws {
        self.shape = shape
        seqLen = s
        q = try FloatBuffer(count: s * shape.heads * shape.headDim)
        keys = try FloatBuffer(count: shape.kvHeads * s * shape.headDim)
        values = try FloatBuffer(count: shape.kvHeads * s * shape.headDim)
        var random = SplitMix64(seed: seed ^ UInt64(s))
        for buffer in [q, keys, values] {
            // Uniform in [-1, 1): 24 random bits.
            for i in 0..<buffer.count { buffer.pointer[i] = Float(random.next() >> 40) * 0x1p-23 - 1 }
        }
        (keys16, values16) = bf16 ? (try BFloat16Buffer(count: keys.count), try BFloat16Buffer(count: values.count)) : (nil, nil)
        if let keys16, let values16 {
            ck_convert_f32_to_bf16(keys.pointer, keys16.pointer, keys.count)
            ck_convert_f32_to_bf16(values.pointer, values16.pointer, values.count)
        }
    }
}

/// One attention problem: T queries at positions pos0 ..< pos0+T over the S keys of the inputs.
struct Problem {
    let phase: Phase
    let inputs: Inputs
    let kv: KVPrecision

    var shape: Shape { inputs.shape }
    var seqLen: Int { inputs.seqLen }
    var tokens: Int { phase == .prefill ? seqLen : 1 }
    var pos0: Int { phase == .prefill ? 0 : seqLen - 1 }
    var query: UnsafePointer<Float> { UnsafePointer(inputs.q.pointer + pos0 * shape.heads * shape.headDim) }
    /// The cache (kvHeads, S, headDim) in the row's precision.
    var keys: UnsafeRawPointer { kv == .bf16 ? UnsafeRawPointer(inputs.keys16!.pointer) : UnsafeRawPointer(inputs.keys.pointer) }
    var values: UnsafeRawPointer {
        kv == .bf16 ? UnsafeRawPointer(inputs.values16!.pointer) : UnsafeRawPointer(inputs.values.pointer)
    }
    var outputFloats: Int { tokens * shape.heads * shape.headDim }
    var scale: Float { 1 / Float(shape.headDim).squareRoot() }

    /// Flops of the causal part only: QK^T and PV, 2 flops per multiply-add each.
    var flops: Double {
        let perKey = 4 * Double(shape.headDim * shape.heads)
        return phase == .prefill ? perKey * Double(seqLen) * Double(seqLen + 1) / 2 : perKey * Double(seqLen)
    }
}

/// What one row measured.
struct Measurement {
    var samples: [Double]            // ms per timed iteration (the slowest rank's, under MPI)
    var scratchBytes: Int            // per rank
    var commMs: [Double] = []        // per timed iteration, the slowest rank's time in collectives
    var singleSamples: [Double] = [] // rank 0 alone on the whole problem, under MPI
    var maxAbsDiff: Double?          // split output against rank 0's
    var localKernel: String?         // when the split does not run the --kernel
    var outputSum: Double?           // sum of rank 0's whole-problem output: which inputs ran
    var kernelISA: KernelISA         // the instruction set the measured kernel ran (the split's, under MPI)
}

struct AttentionSweep {
    let settings: Settings

    /// The grid, outermost first: shape, S (one set of inputs each), phase, KV precision, ISA, split,
    /// threads, and the kernels innermost, so each speed-up compares rows measured one after the other.
    func execute() throws {
        let s = settings
        let comm: Communicator = MPICommunicator.launchedRanks() != nil ? try MPICommunicator() : SingleProcessCommunicator()
        let kernels = try agree(comm) { try s.isas.map { try AttentionKernels($0) } }
        let peaks = comm.rank == 0 ? MachinePeak.measure(s.isas) : [:]
        sleepingBarrier(comm)
        let total = s.shapes.count * s.seqLens.count * s.phases.count * s.kvPrecisions.count * s.isas.count
            * s.splits.count * s.threads.count * s.kernels.count
        let progress = SweepProgress(tests: total, quiet: s.quiet, rank: comm.rank)
        let runner = Runner(settings: s, comm: comm, progress: progress)
        var rows: [ResultRow] = []
        for shape in s.shapes {
            for seqLen in s.seqLens {
                let inputs = try Inputs(shape: shape, seqLen: seqLen, seed: s.seed, bf16: s.kvPrecisions.contains(.bf16))
                for (phase, kv) in s.phases.flatMap({ phase in s.kvPrecisions.map { (phase, $0) } }) {
                    let problem = Problem(phase: phase, inputs: inputs, kv: kv)
                    for isaKernels in kernels {
                        for split in s.splits {
                            for threads in s.threads {
                                var group: [(AttentionKind, Measurement)] = []
                                for kind in s.kernels {
                                    progress.begin("\(phase.rawValue) S=\(seqLen) \(shape.label) kv \(kv.rawValue) \(isaKernels.isa.rawValue) "
                                                   + "\(split.map { "split by \($0.rawValue) " } ?? "")\(kind.label) \(threads.count) threads")
                                    group.append((kind, try runner.measure(problem, kind: kind, kernels: isaKernels,
                                                                           split: split, threads: threads.count)))
                                }
                                if comm.rank == 0 {
                                    rows += AttentionReport.rows(problem: problem, isa: isaKernels.isa, split: split, threads: threads,
                                                                 group: group, peak: peaks[isaKernels.isa], settings: s,
                                                                 processes: comm.size)
                                }
                            }
                        }
                    }
                }
            }
        }
        progress.finish()
        guard comm.rank == 0 else { return }
        let report = AttentionReport(settings: s, peaks: peaks, processes: comm.size)
        print(try report.render(rows), terminator: "")
        if let path = s.jsonPath { try ResultTable.appendJSONLines(rows, to: path) }
    }

    private func agree<T>(_ comm: Communicator, _ step: () throws -> T) throws -> T {
        try ToolMain.agree(tool: "benchmark_mpi_attention", comm, step)
    }
}

/// A barrier at which waiting ranks sleep instead of spinning (Open MPI's blocking collectives
/// poll), so they leave the cores to rank 0 while it works alone.
func sleepingBarrier(_ comm: Communicator) {
    guard comm.size > 1 else { return }
    var request: MPI_Request?
    _ = MPI_Ibarrier(cmpi_comm_world(), &request)
    var done: Int32 = 0
    while true {
        _ = MPI_Test(&request, &done, nil)
        if done != 0 { return }
        usleep(500)
    }
}

/// Times one problem with one kernel: alone, or under MPI both alone on rank 0 and split.
struct Runner {
    let settings: Settings
    let comm: Communicator
    let progress: SweepProgress

    func measure(_ p: Problem, kind: AttentionKind, kernels: AttentionKernels, split: Split?, threads: Int) throws -> Measurement {
        ck_set_num_threads(Int32(threads))
        let total = (settings.warmup + settings.iterations) * (comm.size > 1 ? 2 : 1)
        var done = 0
        func tick() {
            done += 1
            progress.iteration(done, of: total)
        }
        // The whole problem on this process.
        let scratchFloats = AttentionKernels.scratchFloats(kind, tokens: p.tokens, pos0: p.pos0,
                                                           headDim: p.shape.headDim, group: p.shape.group, slots: threads)
        var reference: FloatBuffer?
        var single: [Double] = []
        if comm.rank == 0 {
            let scratch = try FloatBuffer(count: scratchFloats), out = try FloatBuffer(count: p.outputFloats)
            single = timed(tick) {
                kernels.run(kind, q: p.query, keys: p.keys, values: p.values, kv: p.kv, out: out.pointer, tokens: p.tokens, pos0: p.pos0, heads: p.shape.heads,
                            kvHeads: p.shape.kvHeads, headDim: p.shape.headDim, capacity: p.seqLen,
                            scale: p.scale, scratch: scratch.pointer, slots: threads)
            }
            reference = out
        }
        let outputSum = reference.map { out in (0..<p.outputFloats).reduce(0.0) { $0 + Double(out.pointer[$1]) } }
        guard comm.size > 1, let split else {
            return Measurement(samples: single, scratchBytes: 4 * scratchFloats, outputSum: outputSum,
                               kernelISA: kernels.instructionSet(kind, tokens: p.tokens, group: p.shape.group,
                                                                      headDim: p.shape.headDim))
        }
        sleepingBarrier(comm)
        let plan: SplitPlan
        switch (split, p.phase) {
        case (.heads, _): plan = try HeadSplit(problem: p, kind: kind, threads: threads, comm: comm, kernels: kernels)
        case (.sequence, .prefill): plan = try SequencePrefill(problem: p, kind: kind, threads: threads, comm: comm, kernels: kernels)
        case (.sequence, .decode): plan = try SequenceDecode(problem: p, kind: kind, threads: threads, comm: comm, kernels: kernels)
        }
        var samples: [Double] = [], comms: [Double] = []
        for i in 0..<(settings.warmup + settings.iterations) {
            comm.barrier()
            let c0 = comm.statistics.seconds, t0 = Clock.now()
            plan.step()
            let t1 = Clock.now(), c1 = comm.statistics.seconds
            if i >= settings.warmup {
                samples.append(Clock.ms(t0, t1))
                comms.append((c1 - c0) * 1000)
            }
            tick()
        }
        let slowest = comm.max(samples + comms)
        let output = try plan.gatherOutput()
        var diff: Double?
        if let reference {
            diff = 0
            for i in 0..<p.outputFloats { diff = Swift.max(diff!, Double(abs(output[i] - reference.pointer[i]))) }
        }
        return Measurement(samples: Array(slowest[..<samples.count]), scratchBytes: 4 * plan.scratchFloats,
                           commMs: Array(slowest[samples.count...]), singleSamples: single, maxAbsDiff: diff,
                           localKernel: plan.localKernel, outputSum: outputSum, kernelISA: plan.instructionSet)
    }

    /// Warm-up, then the timed iterations; ms per timed iteration.
    private func timed(_ tick: () -> Void, _ body: () -> Void) -> [Double] {
        var samples: [Double] = []
        for i in 0..<(settings.warmup + settings.iterations) {
            let start = Clock.now()
            body()
            if i >= settings.warmup { samples.append(Clock.ms(start, Clock.now())) }
            tick()
        }
        return samples
    }
}

extension AttentionKind {
    /// The kernel with its tiles, for the progress line.
    var label: String {
        switch self {
        case .standard: return "standard"
        case .streaming(let q, let kv): return "streaming q\(q)/kv\(kv)"
        }
    }
}
