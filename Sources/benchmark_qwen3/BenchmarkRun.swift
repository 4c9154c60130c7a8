// BenchmarkRun.swift — turns validated options into a loaded model, timed iterations and a report.
import BenchSupport
import CKernels
import Foundation
import Qwen3

/// Options checked against each other once, before anything is loaded.
struct RunSettings {
    enum Phase: String { case prefill, decode }

    var modelPath: String?
    var method: Method
    var methodSource: String
    var weights: WeightPrecision
    var attention: AttentionKind
    var phase: Phase
    var prompt: [Int32]
    var promptSource: String
    var iterations: Int
    var warmup: Int
    var genLen: Int
    var seed: UInt64
    var threads: ThreadChoice
    var binding = "unbound"
    var jsonPath: String?
    var dumpPath: String?
    var profile: Bool
    var decodeFrom: Int?

    static let defaultQBlock = 64
    static let defaultKVBlock = 64

    init(_ o: BenchmarkQwen3, localRanks: Int) throws {
        func given(_ name: String, _ present: Bool, only context: String, when allowed: Bool) throws {
            if present && !allowed { throw RequestError("\(name) applies only \(context)") }
        }
        guard let phase = Phase(rawValue: o.phase) else {
            throw RequestError("--phase must be prefill or decode, got \(o.phase)")
        }
        self.phase = phase
        var method = Method.fastestLocal
        methodSource = "fastest on this CPU"
        if let name = o.method {
            guard let m = Method(rawValue: name) else {
                throw RequestError("--method must be one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")), got \(name)")
            }
            method = m
            methodSource = "--method"
        }
        if let mode = o.mode { method = try method.under(mode: mode) }
        self.method = method
        guard let weights = WeightPrecision(rawValue: o.weights) else {
            throw RequestError("--weights must be f32 or bf16, got \(o.weights)")
        }
        self.weights = weights

        switch o.attention {
        case "standard":
            try given("--q-block", o.qBlock != nil, only: "to --attention streaming", when: false)
            try given("--kv-block", o.kvBlock != nil, only: "to --attention streaming", when: false)
            attention = .standard
        case "streaming":
            let q = o.qBlock ?? Self.defaultQBlock, kv = o.kvBlock ?? Self.defaultKVBlock
            guard q >= 1, q <= 65_536, kv >= 1, kv <= 65_536 else {
                throw RequestError("--q-block and --kv-block must be between 1 and 65536, got \(q) and \(kv)")
            }
            attention = .streaming(qBlock: q, kvBlock: kv)
        default:
            throw RequestError("--attention must be standard or streaming, got \(o.attention)")
        }

        let dumping = o.dumpLogits != nil
        try given("--decode-from", o.decodeFrom != nil, only: "with --dump-logits", when: dumping)
        try given("--iters", o.iters != nil, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--warmup", o.warmup != nil, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--json", o.json != nil, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--profile", o.profile, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--phase", o.phase != "prefill", only: "to benchmarks; --dump-logits uses --decode-from", when: !dumping)
        try given("--gen-len", o.genLen != nil, only: "to --phase decode", when: !dumping && phase == .decode)
        try given("--prompt-len", o.promptLen != nil, only: "without --tokens", when: o.tokens == nil)
        try given("--seed", o.seed != nil, only: "to synthetic prompts, not --tokens", when: o.tokens == nil || phase == .decode)
        if dumping && o.tokens == nil { throw RequestError("--dump-logits needs --tokens") }

        iterations = o.iters ?? 10
        warmup = o.warmup ?? 1
        genLen = o.genLen ?? 32
        seed = o.seed ?? 0
        guard iterations >= 1 else { throw RequestError("--iters must be at least 1, got \(iterations)") }
        guard warmup >= 0 else { throw RequestError("--warmup must be 0 or more, got \(warmup)") }
        guard genLen >= 1 else { throw RequestError("--gen-len must be at least 1, got \(genLen)") }

        if let list = o.tokens {
            prompt = try list.split(separator: ",", omittingEmptySubsequences: false).map { item in
                let text = item.trimmingCharacters(in: .whitespaces)
                guard let id = Int32(text) else { throw RequestError("--tokens: \"\(text)\" is not a token id") }
                return id
            }
            promptSource = "--tokens"
        } else {
            let length = o.promptLen ?? 128
            guard length >= 1 else { throw RequestError("--prompt-len must be at least 1, got \(length)") }
            prompt = Array(repeating: 0, count: length)  // ids drawn once the vocabulary is known
            promptSource = "synthetic, seed \(seed)"
        }
        if let k = o.decodeFrom, k < 1 || k > prompt.count {
            throw RequestError("--decode-from must be between 1 and the number of tokens (\(prompt.count)), got \(k)")
        }
        decodeFrom = o.decodeFrom
        for (option, path) in [("--json", o.json), ("--dump-logits", o.dumpLogits)] {
            if let path { try ResultTable.checkWritable(path, option: option) }
        }
        threads = try ThreadChoice.resolve(option: o.threads, localRanks: method.isDistributed ? localRanks : 1)
        modelPath = o.model
        jsonPath = o.json
        dumpPath = o.dumpLogits
        profile = o.profile
    }
}

/// An error every rank has agreed on and rank 0 has already reported.
struct JobFailure: Error {}

struct BenchmarkRun {
    let options: BenchmarkQwen3

    func execute() throws {
        let launch = MPICommunicator.launchedRanks()
        var settings = try RunSettings(options, localRanks: launch?.localSize ?? 1)
        if !settings.method.isDistributed, let launch, launch.size > 1 {
            throw RequestError("--method \(settings.method.rawValue) runs on one process, but mpirun started \(launch.size); use --method \(Method.distributed(settings.method.isa).rawValue) (or --mode mpi) to split the model across them")
        }
        let comm: Communicator = settings.method.isDistributed ? try MPICommunicator() : SingleProcessCommunicator()
        settings.binding = ThreadBinding.describe()
        ck_set_num_threads(Int32(settings.threads.count))

        // Rank 0 generates the synthetic checkpoint first, so the ranks do not all write 1.2 GB.
        var resolved: (String, Bool)?
        if comm.rank == 0 { resolved = try agree(comm) { try resolveModel(settings.modelPath) } }
        if comm.rank != 0 { resolved = try agree(comm) { try resolveModel(settings.modelPath) } }
        let (path, synthetic) = resolved!
        let model = try agree(comm) { try Qwen3Model(path: path, isa: settings.method.isa, precision: settings.weights, communicator: comm) }
        if settings.promptSource != "--tokens" {
            settings.prompt = Self.syntheticTokens(count: settings.prompt.count, vocab: model.config.vocabSize, seed: settings.seed)
        }
        if let dump = settings.dumpPath {
            try dumpLogits(model: model, settings: settings, to: dump)
            return
        }
        let header = ReportHeader(settings: settings, model: model, path: path, synthetic: synthetic)
        if comm.rank == 0 { header.print() }
        let result = try measure(model: model, settings: settings)
        guard comm.rank == 0 else { return }
        let report = Report(header: header, result: result)
        report.printResults()
        if let jsonPath = settings.jsonPath { try report.appendJSON(to: jsonPath) }
    }

    /// Runs a step that may fail on some ranks only; every rank learns whether any failed and
    /// throws the first failure's message, so none is left waiting in a later collective.
    private func agree<T>(_ comm: Communicator, _ step: () throws -> T) throws -> T {
        var value: T?
        var message: String?
        do { value = try step() } catch let error as RequestError { message = error.description }
        catch let error as ModelLoadError { message = error.description }
        if let failure = comm.firstFailure(message) {
            // Report before any rank exits: once one does, mpirun may tear the job down.
            if comm.rank == 0 {
                BenchmarkQwen3.report(comm.size > 1 ? "rank \(failure.rank): \(failure.message)" : failure.message)
            }
            comm.barrier()
            throw JobFailure()
        }
        return value!
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
        let comm = model.communicator
        let tokens = settings.prompt
        let k = settings.decodeFrom ?? tokens.count
        let session = try agree(comm) {
            try InferenceSession(model: model, attention: settings.attention, capacity: tokens.count, maxTokens: k, allLogits: true)
        }
        let vocab = model.config.vocabSize
        var all = [Float](repeating: 0, count: tokens.count * vocab)
        let prefill = try session.forward(Array(tokens[0..<k]), allLogits: true)
        all.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: prefill.baseAddress!, count: prefill.count) }
        for t in k..<tokens.count {
            let row = try session.forward([tokens[t]])
            all.withUnsafeMutableBufferPointer { ($0.baseAddress! + t * vocab).update(from: row.baseAddress!, count: vocab) }
        }
        if comm.rank == 0 {
            try all.withUnsafeBufferPointer { try NPYWriter.write($0, shape: [tokens.count, vocab], to: path) }
        }
    }

    /// Runs warm-up and timed iterations of the requested phase. Each iteration starts at a
    /// barrier and counts as long as its slowest rank took.
    private func measure(model: Qwen3Model, settings: RunSettings) throws -> Measurement {
        let comm = model.communicator
        let prompt = settings.prompt
        let decoding = settings.phase == .decode
        let capacity = prompt.count + (decoding ? settings.genLen : 0)
        let session = try agree(comm) {
            try InferenceSession(model: model, attention: settings.attention, capacity: capacity,
                                 maxTokens: prompt.count, allLogits: false)
        }
        var generator = SplitMix64(seed: settings.seed &+ 1)
        let decodeTokens = (0..<settings.genLen).map { _ in Int32(generator.next() % UInt64(model.config.vocabSize)) }
        var prefillMs: [Double] = [], decodeMs: [Double] = []
        var communication = CommunicationStatistics()
        let prefillProfile = OpProfile(), decodeProfile = OpProfile()
        for iteration in 0..<(settings.warmup + settings.iterations) {
            let timed = iteration >= settings.warmup
            session.reset()
            comm.barrier()
            let before = comm.statistics
            session.profile = timed && settings.profile ? prefillProfile : nil
            let start = Clock.now()
            try session.forward(prompt)
            let prefillEnd = Clock.now()
            if decoding {
                session.profile = timed && settings.profile ? decodeProfile : nil
                for token in decodeTokens { try session.forward([token]) }
            }
            let end = Clock.now()
            session.profile = nil
            if timed {
                prefillMs.append(Clock.ms(start, prefillEnd))
                if decoding { decodeMs.append(Clock.ms(prefillEnd, end)) }
                let spent = comm.statistics - before
                communication.seconds += spent.seconds
                communication.payloadBytes += spent.payloadBytes
                communication.calls += spent.calls
            }
        }
        let perRank = comm.allGather([Double(RunEnvironment.residentBytes), communication.seconds * 1000,
                                      Double(communication.payloadBytes)])
        let ranks: [RankStatistics] = (0..<comm.size).map { (r: Int) -> RankStatistics in
            let resident: Double = perRank[3 * r], ms: Double = perRank[3 * r + 1], bytes: Double = perRank[3 * r + 2]
            return RankStatistics(residentBytes: Int(resident), communicationMs: ms, payloadBytes: Int(bytes))
        }
        var profiles: [(phase: String, profile: OpProfile)] = []
        if settings.profile {
            profiles.append(("prefill", prefillProfile))
            if decoding { profiles.append(("decode", decodeProfile)) }
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
}

struct Measurement {
    let prefillMs: [Double]
    let decodeMs: [Double]
    let sessionBytes: Int
    /// Forward passes run, warm-up included (a prefill is one, each decode step one).
    let forwardCalls: Int
    let ranks: [RankStatistics]
    /// Rank 0's time per operation class, per phase, summed over the timed iterations.
    let profiles: [(phase: String, profile: OpProfile)]
}
