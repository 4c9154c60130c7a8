// BenchmarkRun.swift — turns validated options into a loaded model, timed iterations and a report.
import BenchSupport
import CKernels
import Foundation
import Qwen3

struct BenchmarkRun {
    let options: BenchmarkQwen3

    func execute() throws {
        let launch = MPICommunicator.launchedRanks()
        var plan = try SweepPlan(options, launch: launch)
        // MPI_Init once per process, for every MPI test of the sweep.
        let world: Communicator? = plan.tests.contains { $0.method.isDistributed } ? try MPICommunicator() : nil
        let rank = world?.rank ?? 0
        let binding = ThreadBinding.describe()
        let any: Communicator = world ?? SingleProcessCommunicator()

        // Rank 0 generates the synthetic checkpoint first, so the ranks do not all write 1.2 GB.
        var resolved: (String, Bool)?
        if any.rank == 0 { resolved = try agree(any) { try resolveModel(plan.modelPath) } }
        if any.rank != 0 { resolved = try agree(any) { try resolveModel(plan.modelPath) } }
        let (path, synthetic) = resolved!
        let config = try agree(any) { () -> Qwen3Config in
            let config = try Qwen3Config.load(from: ModelIdentity.folder(of: path).appendingPathComponent("config.json"))
            if let text = plan.promptText { try plan.usePrompt(Tokenizer.load(modelPath: path).encode(text)) }
            try plan.check(against: config, processes: any.size)
            return config
        }
        let identity = ModelIdentity(path: path, synthetic: synthetic, config: config)

        let progress = SweepProgress(tests: plan.tests.count, quiet: plan.quiet, rank: rank)
        var rows: [ResultRow] = []
        var index = 0
        var references: [String: [Float]] = [:]  // --accuracy: float32 logits per method and prompt
        let reporting = FreePageReporting.system, silent = plan.quiet || rank != 0
        var released = 0  // bytes of weights the previous group freed (its model), before this group loads
        for group in plan.modelGroups {
            let first = group[0]
            let comm: Communicator = first.method.isDistributed ? world! : SingleProcessCommunicator()
            ck_set_num_threads(Int32(first.threads.count))  // weights are packed with the group's first thread count
            // The model lives for its group only: the next one is loaded after this one is freed.
            let model = try agree(comm) {
                try Qwen3Model(path: path, config: config, isa: first.method.isa, precision: first.weights, communicator: comm,
                               parallelism: first.parallelism)
            }
            reporting.settle(afterReleasing: released, what: "the previous model", quiet: silent)
            released = model.weightBytes
            for var settings in group {
                index += 1
                settings.binding = binding
                ck_set_num_threads(Int32(settings.threads.count))
                if settings.syntheticPrompt {
                    settings.prompt = Self.syntheticTokens(count: settings.prompt.count, vocab: config.vocabSize, seed: settings.seed)
                }
                if let dump = plan.dumpPath {
                    try dumpLogits(model: model, settings: settings, to: dump)
                    return
                }
                let header = ReportHeader(settings: settings, model: model, identity: identity,
                                          test: index, of: plan.tests.count)
                if comm.rank == 0 && plan.output == .text { header.print() }
                progress.begin("\(settings.testName), \(settings.method.rawValue), \(settings.attentionLabel), \(settings.threads.count) thread\(settings.threads.count == 1 ? "" : "s")")
                let result = try measure(model: model, settings: settings) { progress.iteration($0, of: $1) }
                progress.finish()
                var agreement: LogitAgreement?
                if plan.accuracy {
                    let key = "\(settings.method.rawValue) \(settings.parallelism.rawValue) \(Self.promptHash(settings.prompt))"
                    if references[key] == nil {
                        var referenceBytes = 0
                        do {
                            let f32 = try agree(comm) {
                                try Qwen3Model(path: path, config: config, isa: settings.method.isa, precision: .f32,
                                               communicator: comm, parallelism: settings.parallelism)
                            }
                            referenceBytes = f32.weightBytes
                            references[key] = try allLogits(model: f32, settings: settings, decodeFrom: settings.prompt.count)
                        }
                        reporting.settle(afterReleasing: referenceBytes, what: "the float32 reference model", quiet: silent)
                    }
                    let logits = try allLogits(model: model, settings: settings, decodeFrom: settings.prompt.count)
                    agreement = LogitAgreement(reference: references[key]!, logits: logits, vocab: config.vocabSize)
                }
                guard comm.rank == 0 else { continue }
                let report = Report(header: header, result: result, agreement: agreement)
                let row = report.jsonObject
                rows.append(row)
                switch plan.output {
                case .text: report.printResults()
                case .jsonl: print(try ResultTable.jsonLines([row]), terminator: "")
                default: break
                }
                fflush(stdout)
                // Appended test by test, so an interrupted sweep keeps what it measured.
                if let jsonPath = plan.jsonPath { try ResultTable.appendJSONLines([row], to: jsonPath) }
            }
        }
        guard rank == 0 else { return }
        switch plan.output {
        case .text where rows.count > 1:
            print("\nSummary of \(rows.count) tests (median of \(plan.tests[0].iterations) timed iterations each)\n")
            print(ResultTable.markdown(rows, columns: Report.summaryColumns), terminator: "")
        case .md: print(ResultTable.markdown(rows, columns: Report.summaryColumns), terminator: "")
        case .csv: print(ResultTable.csv(rows, columns: Report.csvColumns), terminator: "")
        case .json: print(try ResultTable.json(rows), terminator: "")
        default: break
        }
    }

    private func agree<T>(_ comm: Communicator, _ step: () throws -> T) throws -> T {
        try ToolMain.agree(tool: "benchmark_qwen3", comm, step)
    }

    /// The model path, or the cached synthetic Qwen3-0.6B (generated on first use).
    private func resolveModel(_ path: String?) throws -> (String, Bool) {
        if let path { return (path, false) }
        let root = SyntheticCheckpoint.defaultCacheRoot()
        let folder = try SyntheticCheckpoint.cached(config: .qwen3_0_6B, name: "qwen3-0.6b", dtype: .bf16, cacheRoot: root)
        return (folder, true)
    }

    /// FNV-1a of the prompt's token ids, so records show which prompt ran without listing it.
    static func promptHash(_ tokens: [Int32]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for token in tokens {
            withUnsafeBytes(of: token.littleEndian) { for byte in $0 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 } }
        }
        return String(hash, radix: 16)
    }

    static func syntheticTokens(count: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int32(generator.next() % UInt64(vocab)) }
    }

    private func dumpLogits(model: Qwen3Model, settings: RunSettings, to path: String) throws {
        let all = try allLogits(model: model, settings: settings, decodeFrom: settings.decodeFrom ?? settings.prompt.count)
        if model.communicator.rank == 0 {
            try all.withUnsafeBufferPointer { try NPYWriter.write($0, shape: [settings.prompt.count, model.config.vocabSize], to: path) }
        }
    }

    /// Logits of every position of the prompt, (tokens, vocab): the first k from one prefill, the
    /// rest from decode steps. A collective under MPI; every rank gets the gathered logits.
    private func allLogits(model: Qwen3Model, settings: RunSettings, decodeFrom k: Int) throws -> [Float] {
        let comm = model.communicator
        let tokens = settings.prompt
        let session = try agree(comm) {
            try InferenceSession(model: model, attention: settings.attention, capacity: tokens.count, maxTokens: k, allLogits: true,
                                 kvPrecision: settings.kvPrecision)
        }
        let vocab = model.config.vocabSize
        var all = [Float](repeating: 0, count: tokens.count * vocab)
        let prefill = try session.forward(Array(tokens[0..<k]), allLogits: true)
        all.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: prefill.baseAddress!, count: prefill.count) }
        for t in k..<tokens.count {
            let row = try session.forward([tokens[t]])
            all.withUnsafeMutableBufferPointer { ($0.baseAddress! + t * vocab).update(from: row.baseAddress!, count: vocab) }
        }
        return all
    }

    /// Runs warm-up and timed iterations of the requested phase. Each iteration starts at a
    /// barrier and counts as long as its slowest rank took; after each phase every rank waits at a
    /// barrier, outside the timed region, and that wait (the imbalance between ranks) is measured.
    private func measure(model: Qwen3Model, settings: RunSettings,
                         onIteration: (Int, Int) -> Void) throws -> Measurement {
        let comm = model.communicator
        let prompt = settings.prompt
        let decoding = settings.phase == .decode
        let session = try agree(comm) {
            try InferenceSession(model: model, attention: settings.attention, capacity: settings.capacity,
                                 maxTokens: prompt.count, allLogits: false, kvPrecision: settings.kvPrecision)
        }
        var generator = SplitMix64(seed: settings.seed &+ 1)
        let decodeTokens = (0..<settings.genLen).map { _ in Int32(generator.next() % UInt64(model.config.vocabSize)) }
        var prefillMs: [Double] = [], decodeMs: [Double] = []
        var barrierMs = ["prefill": 0.0, "decode": 0.0]
        var communication = CommunicationStatistics()
        let prefillProfile = OpProfile(), decodeProfile = OpProfile()
        func waitForAll(_ phase: String, timed: Bool) {
            let start = Clock.now()
            comm.barrier()
            if timed { barrierMs[phase, default: 0] += Clock.ms(start, Clock.now()) }
        }
        let total = settings.warmup + settings.iterations
        for iteration in 0..<total {
            let timed = iteration >= settings.warmup
            session.reset()
            comm.barrier()
            let before = comm.statistics
            session.profile = timed && settings.profile ? prefillProfile : nil
            let start = Clock.now()
            try session.forward(prompt)
            let prefillEnd = Clock.now()
            session.profile = nil
            if comm.size > 1 { waitForAll("prefill", timed: timed) }
            var decodeStart = prefillEnd, end = prefillEnd
            if decoding {
                session.profile = timed && settings.profile ? decodeProfile : nil
                decodeStart = Clock.now()
                for token in decodeTokens { try session.forward([token]) }
                end = Clock.now()
                session.profile = nil
                if comm.size > 1 { waitForAll("decode", timed: timed) }
            }
            if timed {
                prefillMs.append(Clock.ms(start, prefillEnd))
                if decoding { decodeMs.append(Clock.ms(decodeStart, end)) }
                let spent = comm.statistics - before
                communication.seconds += spent.seconds
                communication.payloadBytes += spent.payloadBytes
                communication.calls += spent.calls
            }
            onIteration(iteration + 1, total)
        }
        let own = [Double(RunEnvironment.residentBytes), communication.seconds * 1000, Double(communication.payloadBytes),
                   barrierMs["prefill"]!, barrierMs["decode"]!, Double(model.weightBytes)]
        let perRank = comm.allGather(own)
        let ranks: [RankStatistics] = (0..<comm.size).map { r in
            let v = Array(perRank[(own.count * r)..<(own.count * (r + 1))])
            return RankStatistics(residentBytes: Int(v[0]), communicationMs: v[1], payloadBytes: Int(v[2]),
                                  barrierMs: ["prefill": v[3], "decode": v[4]], weightBytes: Int(v[5]))
        }
        var profiles: [PhaseProfile] = []
        if settings.profile {
            profiles.append(PhaseProfile(phase: "prefill", ranks: RankProfile.gather(prefillProfile, comm)))
            if decoding { profiles.append(PhaseProfile(phase: "decode", ranks: RankProfile.gather(decodeProfile, comm))) }
        }
        return Measurement(prefillMs: comm.max(prefillMs), decodeMs: comm.max(decodeMs),
                           sessionBytes: session.byteCount, forwardCalls: session.forwardCalls,
                           ranks: ranks, profiles: profiles)
    }
}

/// What one rank measured of itself over the timed iterations.
struct RankStatistics {
    let residentBytes: Int
    let communicationMs: Double
    let payloadBytes: Int
    /// Time spent waiting at the barrier after each phase for the slowest rank, summed.
    let barrierMs: [String: Double]
    let weightBytes: Int
}

/// One rank's time (ns), work (floating-point operations) and bytes moved per operation class.
struct RankProfile {
    var nanoseconds: [ProfiledOp: Double] = [:]
    var flops: [ProfiledOp: Double] = [:]
    var bytes: [ProfiledOp: Double] = [:]

    var totalNanoseconds: Double { nanoseconds.values.reduce(0, +) }

    /// Every rank's profile, on every rank (a collective: all ranks call it together).
    static func gather(_ profile: OpProfile, _ comm: Communicator) -> [RankProfile] {
        let ops = ProfiledOp.allCases
        let own: [Double] = ops.flatMap { op -> [Double] in
            [Double(profile.nanoseconds[op] ?? 0), profile.flops[op] ?? 0, profile.bytes[op] ?? 0]
        }
        let all = comm.allGather(own)
        return (0..<comm.size).map { r in
            var p = RankProfile()
            for (i, op) in ops.enumerated() {
                let at = r * own.count + 3 * i
                if all[at] > 0 { p.nanoseconds[op] = all[at] }
                if all[at + 1] > 0 { p.flops[op] = all[at + 1] }
                if all[at + 2] > 0 { p.bytes[op] = all[at + 2] }
            }
            return p
        }
    }
}

/// A phase's profile on every rank.
struct PhaseProfile {
    let phase: String
    let ranks: [RankProfile]
}

struct Measurement {
    let prefillMs: [Double]
    let decodeMs: [Double]
    let sessionBytes: Int
    /// Forward passes run, warm-up included (a prefill is one, each decode step one).
    let forwardCalls: Int
    let ranks: [RankStatistics]
    /// Every rank's time per operation class, per phase, summed over the timed iterations.
    let profiles: [PhaseProfile]
}
