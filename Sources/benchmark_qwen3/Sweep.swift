// Sweep.swift — the command line's lists expanded into tests, every one checked before anything runs.
import BenchSupport
import Foundation
import Qwen3

/// One test of a sweep: a single value of every option.
struct RunSettings {
    enum Phase: String { case prefill, decode }

    var method: Method
    var methodSource: String
    var weights: WeightPrecision
    var parallelism: Parallelism
    var attention: AttentionKind
    var phase: Phase
    var prompt: [Int32]
    var promptSource: String
    /// Synthetic ids are drawn from the seed once the vocabulary is known.
    var syntheticPrompt: Bool { promptSource.hasPrefix("synthetic") }
    var iterations: Int
    var warmup: Int
    var genLen: Int
    var seed: UInt64
    var threads: ThreadChoice
    var binding = "unbound"
    var profile: Bool
    var decodeFrom: Int?
    var kvPrecision: KVPrecision = .f32

    static let defaultQBlock = AttentionKind.defaultQBlock
    static let defaultKVBlock = AttentionKind.defaultKVBlock

    /// llama-bench's names: pp128 is a prefill of 128 tokens, tg32 is 32 decode steps.
    var testName: String { phase == .decode ? "tg\(genLen)" : "pp\(prompt.count)" }

    /// Tokens the KV cache must hold.
    var capacity: Int { prompt.count + (phase == .decode ? genLen : 0) }

    /// Tests sharing a key share one loaded model.
    var modelKey: String { "\(method.rawValue) \(weights.rawValue) \(parallelism.rawValue)" }

    var attentionLabel: String {
        switch attention {
        case .standard: return "standard"
        case .streaming(let q, let kv): return "streaming q\(q)/kv\(kv)"
        }
    }
}

/// Everything one command line asks for: the tests in run order, and where results go.
struct SweepPlan {
    var tests: [RunSettings]
    var modelPath: String?
    var output: OutputFormat
    var jsonPath: String?
    var dumpPath: String?
    var quiet: Bool
    /// The text of --prompt or --prompt-file, tokenized once the model (and its tokenizer) is known.
    var promptText: String?
    /// --accuracy: each row also compares its logits with the float32 model's.
    var accuracy: Bool

    /// Parses every list and builds the grid. Model groups (method, weights, parallel mode) are
    /// outermost so each model is loaded once; within a group: attention, block sizes, prompt
    /// length, threads, phase, generation length.
    init(_ o: BenchmarkQwen3, launch: (rank: Int, size: Int, localSize: Int)?) throws {
        func given(_ name: String, _ present: Bool, only context: String, when allowed: Bool) throws {
            if present && !allowed { throw RequestError("\(name) applies only \(context)") }
        }
        func list<T: Equatable>(_ text: String, _ option: String, _ expected: String, _ convert: (String) -> T?) throws -> [T] {
            try ListOption.parse(text, option: option, expected: expected, convert)
        }
        let phases = try list(o.phase, "--phase", "prefill or decode") { RunSettings.Phase(rawValue: $0) }

        var methods = [Method.fastestLocal]
        var methodSource = "fastest on this CPU"
        if let text = o.method {
            methods = try list(text, "--method", "one of \(Method.allCases.map(\.rawValue).joined(separator: ", "))") { Method(rawValue: $0) }
            methodSource = "--method"
        }
        if let mode = o.mode {
            var mapped: [Method] = []
            for m in try methods.map({ try $0.under(mode: mode) }) where !mapped.contains(m) { mapped.append(m) }
            methods = mapped
        }
        let distributed = methods.filter(\.isDistributed), local = methods.filter { !$0.isDistributed }
        if let launch {
            if !distributed.isEmpty && !local.isEmpty {
                throw RequestError("--method mixes MPI (\(distributed.map(\.rawValue).joined(separator: ", "))) and single-process (\(local.map(\.rawValue).joined(separator: ", "))) methods; under mpirun give only MPI methods")
            }
            if let first = local.first, launch.size > 1 {
                throw RequestError("--method \(first.rawValue) runs on one process, but mpirun started \(launch.size); use --method \(Method.distributed(first.isa).rawValue) (or --mode mpi) to split the model across them")
            }
        }
        let weights = try list(o.weights, "--weights", "f32, bf16, q8_0 or q4_0") { WeightPrecision(rawValue: $0) }
        let kvPrecisions = try list(o.kvDtype, "--kv-dtype", "f32 or bf16") { KVPrecision(rawValue: $0) }
        var parallels: [Parallelism] = [.heads]
        if let text = o.parallel {
            parallels = try list(text, "--parallel", "heads or sequence") { Parallelism(rawValue: $0) }
            if let first = local.first {
                throw RequestError("--parallel applies only to the MPI methods (mpi, mpi+avx2, mpi+avx512), not --method \(first.rawValue)")
            }
        }
        let attentions = try list(o.attention, "--attention", "standard or streaming") { ["standard", "streaming"].contains($0) ? $0 : nil }
        let streaming = attentions.contains("streaming")
        try given("--q-block", o.qBlock != nil, only: "to --attention streaming", when: streaming)
        try given("--kv-block", o.kvBlock != nil, only: "to --attention streaming", when: streaming)
        let qBlocks = try o.qBlock.map { try ListOption.integers($0, option: "--q-block", range: 1...65_536) } ?? [RunSettings.defaultQBlock]
        let kvBlocks = try o.kvBlock.map { try ListOption.integers($0, option: "--kv-block", range: 1...65_536) } ?? [RunSettings.defaultKVBlock]
        var attentionKinds: [AttentionKind] = []
        for name in attentions {
            if name == "standard" { attentionKinds.append(.standard); continue }
            for q in qBlocks { for kv in kvBlocks { attentionKinds.append(.streaming(qBlock: q, kvBlock: kv)) } }
        }

        let dumping = o.dumpLogits != nil
        let decoding = phases.contains(.decode)
        try given("--decode-from", o.decodeFrom != nil, only: "with --dump-logits", when: dumping)
        try given("--iters", o.iters != nil, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--warmup", o.warmup != nil, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--json", o.json != nil, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--profile", o.profile, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--accuracy", o.accuracy, only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("-o", o.output != "text", only: "to benchmarks, not --dump-logits", when: !dumping)
        try given("--phase", phases != [.prefill], only: "to benchmarks; --dump-logits uses --decode-from", when: !dumping)
        try given("--gen-len", o.genLen != nil, only: "to --phase decode", when: !dumping && decoding)
        let text = try PromptText.read(prompt: o.prompt, file: o.promptFile)
        if text != nil && o.tokens != nil { throw RequestError("--tokens and \(o.prompt != nil ? "--prompt" : "--prompt-file") both give the prompt; give one") }
        let synthetic = o.tokens == nil && text == nil
        try given("--prompt-len", o.promptLen != nil, only: "to synthetic prompts, not --tokens, --prompt or --prompt-file (their tokens set the length)", when: synthetic)
        try given("--seed", o.seed != nil, only: "to synthetic prompts and decode steps, not --tokens or text prompts", when: synthetic || decoding)
        if dumping && o.tokens == nil && text == nil { throw RequestError("--dump-logits needs --tokens or a text prompt") }
        guard let output = OutputFormat(rawValue: o.output) else {
            throw RequestError("-o must be one of \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")), got \(o.output)")
        }

        let iterations = o.iters ?? 10, warmup = o.warmup ?? 1, seed = o.seed ?? 0
        guard iterations >= 1 else { throw RequestError("--iters must be at least 1, got \(iterations)") }
        guard warmup >= 0 else { throw RequestError("--warmup must be 0 or more, got \(warmup)") }
        let genLens = try o.genLen.map { try ListOption.integers($0, option: "--gen-len", range: 1...Int.max) } ?? [32]

        var prompts: [(tokens: [Int32], source: String)] = []
        if let text = o.tokens {
            let ids = try text.split(separator: ",", omittingEmptySubsequences: false).map { item in
                let text = item.trimmingCharacters(in: .whitespaces)
                guard let id = Int32(text) else { throw RequestError("--tokens: \"\(text)\" is not a token id") }
                return id
            }
            prompts = [(ids, "--tokens")]
        } else if text != nil {
            prompts = [([], o.prompt != nil ? "--prompt" : "--prompt-file \(o.promptFile!)")]
        } else {
            let lengths = try o.promptLen.map { try ListOption.integers($0, option: "--prompt-len", range: 1...Int.max) } ?? [128]
            // Ids are drawn once the vocabulary is known.
            prompts = lengths.map { (Array(repeating: 0, count: $0), "synthetic, seed \(seed)") }
        }
        if text == nil { try Self.checkDecodeFrom(o.decodeFrom, tokens: prompts[0].tokens.count) }
        for (option, path) in [("--json", o.json), ("--dump-logits", o.dumpLogits)] {
            if let path { try ResultTable.checkWritable(path, option: option) }
        }
        let threadCounts = try o.threads.map { try ListOption.integers($0, option: "--threads", range: 1...Int.max) }

        var tests: [RunSettings] = []
        for method in methods {
            let threadChoices = try threadCounts.map { $0.map { ThreadChoice(count: $0, source: "--threads") } }
                ?? [ThreadChoice.resolve(option: nil, localRanks: method.isDistributed ? launch?.localSize ?? 1 : 1)]
            for weight in weights {
                for kv in kvPrecisions { try method.isa.check(weights: weight, kv: kv) }
                for parallelism in (method.isDistributed ? parallels : [.heads]) {
                    for attention in attentionKinds {
                        for kv in kvPrecisions {
                            for prompt in prompts {
                                for threads in threadChoices {
                                    for phase in phases {
                                        for genLen in (phase == .decode ? genLens : [genLens[0]]) {
                                            tests.append(RunSettings(
                                                method: method, methodSource: methodSource, weights: weight,
                                                parallelism: parallelism, attention: attention, phase: phase,
                                                prompt: prompt.tokens, promptSource: prompt.source, iterations: iterations,
                                                warmup: warmup, genLen: genLen, seed: seed, threads: threads,
                                                profile: o.profile, decodeFrom: o.decodeFrom, kvPrecision: kv))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if dumping && tests.count > 1 {
            throw RequestError("--dump-logits runs the model once: give one value to each option, not a list (\(tests.count) combinations)")
        }
        self.tests = tests
        modelPath = o.model
        self.output = output
        jsonPath = o.json
        dumpPath = o.dumpLogits
        quiet = o.quiet
        accuracy = o.accuracy
        promptText = text
    }

    private static func checkDecodeFrom(_ k: Int?, tokens: Int) throws {
        if let k, k < 1 || k > tokens {
            throw RequestError("--decode-from must be between 1 and the number of tokens (\(tokens)), got \(k)")
        }
    }

    /// Gives every test the text prompt's ids.
    mutating func usePrompt(_ ids: [Int32]) throws {
        guard !ids.isEmpty else { throw RequestError("the prompt text has no tokens") }
        try Self.checkDecodeFrom(tests.first?.decodeFrom, tokens: ids.count)
        for i in tests.indices { tests[i].prompt = ids }
    }

    /// Checks that need the model's configuration: context length, and process counts the
    /// head split cannot serve.
    func check(against config: Qwen3Config, processes: Int) throws {
        for test in tests {
            if test.capacity > config.maxPositionEmbeddings {
                throw RequestError("\(test.capacity) tokens exceed the model's max_position_embeddings (\(config.maxPositionEmbeddings))")
            }
            if test.method.isDistributed && test.parallelism == .heads && processes > 1 {
                _ = try ShardPlan(config: config, rank: 0, size: processes, precision: test.weights)
            }
        }
    }

    /// The tests in order, cut where the loaded model changes.
    var modelGroups: [[RunSettings]] {
        var groups: [[RunSettings]] = []
        for test in tests {
            if let last = groups.last?.last, last.modelKey == test.modelKey { groups[groups.count - 1].append(test) }
            else { groups.append([test]) }
        }
        return groups
    }
}
