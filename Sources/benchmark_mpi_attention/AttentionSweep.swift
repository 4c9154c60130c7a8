// AttentionSweep.swift — the measured rows: random inputs per S, the single-process run, and the
// MPI splits by heads and by sequence, each timed after warm-up.
import BenchSupport
import CKernels
import CMPI
import Foundation
import Qwen3

/// q, K and V of one sequence length, the same on every rank (seeded).
struct Inputs {
    let seqLen: Int
    let q: FloatBuffer       // (S, heads, headDim); decode's query is the last row, at position S-1
    let keys: FloatBuffer    // (kvHeads, S, headDim)
    let values: FloatBuffer  // (kvHeads, S, headDim)

    init(seqLen s: Int, settings: Settings) {
        seqLen = s
        q = FloatBuffer(count: s * settings.heads * settings.headDim)
        keys = FloatBuffer(count: settings.kvHeads * s * settings.headDim)
        values = FloatBuffer(count: settings.kvHeads * s * settings.headDim)
        var random = SplitMix64(seed: settings.seed ^ UInt64(s))
        for buffer in [q, keys, values] {
            // Uniform in [-1, 1): 24 random bits.
            for i in 0..<buffer.count { buffer.pointer[i] = Float(random.next() >> 40) * 0x1p-23 - 1 }
        }
    }
}

/// One attention problem: T queries at positions pos0 ..< pos0+T over the S keys of the inputs.
struct Problem {
    let phase: Phase
    let inputs: Inputs
    let settings: Settings

    var seqLen: Int { inputs.seqLen }
    var tokens: Int { phase == .prefill ? seqLen : 1 }
    var pos0: Int { phase == .prefill ? 0 : seqLen - 1 }
    var query: UnsafePointer<Float> { UnsafePointer(inputs.q.pointer + pos0 * settings.heads * settings.headDim) }
    var outputFloats: Int { tokens * settings.heads * settings.headDim }
    var scale: Float { 1 / Float(settings.headDim).squareRoot() }

    /// Flops of the causal part only: QK^T and PV, 2 flops per multiply-add each.
    var flops: Double {
        let perKey = 4 * Double(settings.headDim * settings.heads)
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
}

struct AttentionSweep {
    let settings: Settings

    func execute() throws {
        let comm: Communicator = MPICommunicator.launchedRanks() != nil ? try MPICommunicator() : SingleProcessCommunicator()
        let kernels = try agree(comm) { try AttentionKernels(settings.isa) }
        let peak: MachinePeak? = comm.rank == 0 ? MachinePeak(isa: settings.isa) : nil
        sleepingBarrier(comm)
        let rowsPerLength = settings.phases.count * settings.kernels.count * settings.threads.count
        let progress = BenchSupport.Progress(tests: settings.seqLens.count * rowsPerLength, quiet: settings.quiet, rank: comm.rank)
        let runner = Runner(settings: settings, comm: comm, kernels: kernels, progress: progress)
        var rows: [ResultRow] = []
        for s in settings.seqLens {
            let inputs = Inputs(seqLen: s, settings: settings)
            for phase in settings.phases {
                let problem = Problem(phase: phase, inputs: inputs, settings: settings)
                for threads in settings.threads {
                    var group: [(AttentionKind, Measurement)] = []
                    for kind in settings.kernels {
                        progress.begin("\(phase.rawValue) S=\(s) \(kind.name) \(threads.count) threads")
                        group.append((kind, runner.measure(problem, kind: kind, threads: threads.count)))
                    }
                    if comm.rank == 0 {
                        rows += AttentionReport.rows(problem: problem, threads: threads, group: group, peak: peak,
                                                     processes: comm.size)
                    }
                }
            }
        }
        progress.finish()
        guard comm.rank == 0 else { return }
        let report = AttentionReport(settings: settings, peak: peak, processes: comm.size)
        print(try report.render(rows), terminator: "")
        if let path = settings.jsonPath { try ResultTable.appendJSONLines(rows, to: path) }
    }

    /// Runs a step that may fail on some ranks only; every rank learns whether any failed, so none
    /// is left waiting in a later collective.
    private func agree<T>(_ comm: Communicator, _ step: () throws -> T) throws -> T {
        var value: T?, message: String?
        do { value = try step() } catch let error as RequestError { message = error.description }
        if let failure = comm.firstFailure(message) {
            if comm.rank == 0 {
                BenchmarkMPIAttention.report(comm.size > 1 ? "rank \(failure.rank): \(failure.message)" : failure.message)
            }
            comm.barrier()
            throw JobFailure()
        }
        return value!
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
    let kernels: AttentionKernels
    let progress: BenchSupport.Progress

    func measure(_ p: Problem, kind: AttentionKind, threads: Int) -> Measurement {
        ck_set_num_threads(Int32(threads))
        let total = (settings.warmup + settings.iterations) * (comm.size > 1 ? 2 : 1)
        var done = 0
        func tick() {
            done += 1
            progress.iteration(done, of: total)
        }
        // The whole problem on this process.
        let scratchFloats = AttentionKernels.scratchFloats(kind, tokens: p.tokens, pos0: p.pos0,
                                                           headDim: settings.headDim,
                                                           group: settings.heads / settings.kvHeads, slots: threads)
        var reference: FloatBuffer?
        var single: [Double] = []
        if comm.rank == 0 {
            let scratch = FloatBuffer(count: scratchFloats), out = FloatBuffer(count: p.outputFloats)
            single = timed(tick) {
                kernels.run(kind, q: p.query, keys: p.inputs.keys.pointer, values: p.inputs.values.pointer,
                            out: out.pointer, tokens: p.tokens, pos0: p.pos0, heads: settings.heads,
                            kvHeads: settings.kvHeads, headDim: settings.headDim, capacity: p.seqLen,
                            scale: p.scale, scratch: scratch.pointer, slots: threads)
            }
            reference = out
        }
        guard comm.size > 1, let split = settings.split else {
            return Measurement(samples: single, scratchBytes: 4 * scratchFloats)
        }
        sleepingBarrier(comm)
        let plan: SplitPlan
        switch (split, p.phase) {
        case (.heads, _): plan = HeadSplit(problem: p, kind: kind, threads: threads, comm: comm, kernels: kernels)
        case (.sequence, .prefill): plan = SequencePrefill(problem: p, kind: kind, threads: threads, comm: comm, kernels: kernels)
        case (.sequence, .decode): plan = SequenceDecode(problem: p, threads: threads, comm: comm)
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
        let output = plan.gatherOutput()
        var diff: Double?
        if let reference {
            diff = 0
            for i in 0..<p.outputFloats { diff = Swift.max(diff!, Double(abs(output[i] - reference.pointer[i]))) }
        }
        return Measurement(samples: Array(slowest[..<samples.count]), scratchBytes: 4 * plan.scratchFloats,
                           commMs: Array(slowest[samples.count...]), singleSamples: single, maxAbsDiff: diff,
                           localKernel: plan.localKernel)
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
