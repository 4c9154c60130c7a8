// Report.swift — the human report (the original tool's layout) and the JSON record of a run.
import BenchSupport
import Foundation
import Qwen3

/// Which model ran: where it came from, a short name, and a hash of its configuration.
struct ModelIdentity {
    let path: String
    let synthetic: Bool
    let config: Qwen3Config
    let name: String
    /// FNV-1a of the shape-defining configuration, so rows of different models never mix unnoticed.
    let configHash: String

    init(path: String, synthetic: Bool, config: Qwen3Config) {
        self.path = path
        self.synthetic = synthetic
        self.config = config
        name = synthetic ? "Qwen3-0.6B (synthetic)" : Self.folder(of: path).lastPathComponent
        let c = config
        let text = "\(c.numLayers) \(c.hiddenSize) \(c.numHeads) \(c.numKVHeads) \(c.headDim) \(c.intermediateSize) \(c.vocabSize) \(c.maxPositionEmbeddings) \(c.ropeTheta) \(c.rmsNormEps) \(c.tieWordEmbeddings) \(c.attentionBias)"
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        configHash = String(hash, radix: 16)
    }

    /// The folder that holds config.json for a model path (a file in it, or the folder itself).
    static func folder(of path: String) -> URL {
        var isDirectory: ObjCBool = false
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return url }
        return url.deletingLastPathComponent()
    }
}

struct ReportHeader {
    let settings: RunSettings
    let identity: ModelIdentity
    let checkpointDType: TensorDType
    let weightBytes: Int
    /// Linear layers (lm_head included) held in the requested precision, of all of them (rank 0).
    let linearLayers: (count: Int, of: Int)
    /// What the token embedding table is held as (rank 0).
    let embedding: String
    let commit: String
    let cpu: String
    let processes: Int
    let test: Int
    let tests: Int

    var modelPath: String { identity.path }
    var synthetic: Bool { identity.synthetic }
    var config: Qwen3Config { identity.config }

    init(settings: RunSettings, model: Qwen3Model, identity: ModelIdentity, test: Int, of tests: Int) {
        self.settings = settings
        self.identity = identity
        checkpointDType = model.checkpointDType
        weightBytes = model.weightBytes
        linearLayers = model.linearLayersInPrecision
        embedding = model.embeddingFormat
        commit = RunEnvironment.commit
        cpu = RunEnvironment.cpuModel
        processes = model.communicator.size
        self.test = test
        self.tests = tests
    }

    var parallelDescription: String {
        guard processes > 1 else { return "" }
        return settings.parallelism == .heads
            ? " (tensor parallel: heads, MLP columns and vocabulary split)"
            : " (sequence parallel: prompt tokens split zig-zag, weights replicated; decode steps not split)"
    }

    var attentionDescription: String {
        switch settings.attention {
        case .standard: return "standard"
        case .streaming(let q, let kv): return "streaming (q-block \(q), kv-block \(kv))"
        }
    }

    var isaDescription: String {
        let w = settings.weights
        let matmul = "\(w.rawValue) matmul"
        switch (settings.method.isa, w) {
        case (.baseline, _): return "plain C loops (baseline), \(matmul)"
        case (.avx2, .q8_0), (.avx2, .q4_0): return "AVX2+FMA, \(matmul) with vpmaddubsw"
        case (.avx2, _): return "AVX2+FMA"
        case (.avx512, .bf16): return "AVX-512 BF16 (vdpbf16ps) matmul, \(attentionISA) attention, AVX2+FMA elsewhere"
        case (.avx512, .q8_0), (.avx512, .q4_0):
            return "AVX-512 VNNI (vpdpbusd) \(matmul), \(attentionISA) attention, AVX2+FMA elsewhere"
        case (.avx512, _): return "AVX-512 f32 matmul, \(attentionISA) attention, AVX2+FMA elsewhere"
        }
    }

    /// The instructions the attention kernel runs: streaming tiles of too few query rows (a decode
    /// step's) run the AVX2 tile under avx512 unless the head size is the AVX-512 decode tile's.
    var attentionISA: String {
        let name: (KernelISA) -> String = { [.avx512: "AVX-512", .avx2: "AVX2", .baseline: "plain C"][$0] ?? $0.rawValue }
        guard let kernels = try? AttentionKernels(settings.method.isa) else { return name(settings.method.isa) }
        let group = identity.config.groupSize, headDim = identity.config.headDim
        let prefill = kernels.instructionSet(settings.attention, tokens: settings.prompt.count, group: group,
                                             headDim: headDim)
        guard settings.phase == .decode else { return name(prefill) }
        let decode = kernels.instructionSet(settings.attention, tokens: 1, group: group, headDim: headDim)
        return decode == prefill ? name(prefill) : "\(name(prefill)) prefill / \(name(decode)) decode"
    }

    var precisionDescription: String {
        switch settings.weights {
        case .f32: return "float32 in memory and compute"
        case .bf16: return "bf16 linear weights, activations rounded to bf16 at each matmul, f32 sums and f32 elsewhere; embedding: \(embedding)"
        case .q8_0, .q4_0:
            let w = settings.weights
            let kept = linearLayers.count == linearLayers.of ? "" : "; the other \(linearLayers.of - linearLayers.count) keep float32 weights (input dimension not a multiple of 32)"
            return "\(w.rawValue) linear weights (\(linearLayers.count) of \(linearLayers.of) linear layers, lm_head included, \(w.bytesPerWeight) bytes per weight: blocks of 32 with a float16 scale\(kept)), activations quantized to int8 per block of 32 at each matmul, int32 block sums; embedding: \(embedding); norms float32"
        }
    }

    func print() {
        let rule = String(repeating: "=", count: 44)
        let s = settings
        var lines = [rule, "  Qwen3 Benchmark" + (tests > 1 ? ": test \(test) of \(tests), \(s.testName)" : ""), rule,
                     "Model: \(modelPath)"]
        if synthetic {
            lines.append("Weights: SYNTHETIC (random, seeded) with the Qwen3-0.6B shapes; speed is real, outputs are meaningless")
        }
        lines += [
            "Config: \(config.numLayers) layers, hidden \(config.hiddenSize), heads \(config.numHeads)/\(config.numKVHeads) (q/kv), head_dim \(config.headDim), intermediate \(config.intermediateSize), vocab \(config.vocabSize)",
            "Method: \(s.method.rawValue) (\(s.methodSource))",
            "Attention: \(attentionDescription), KV cache \(s.kvPrecision.rawValue)",
            "Phase: \(s.phase.rawValue)",
            "Processes: \(processes)\(parallelDescription)   Threads per process: \(s.threads.count) (\(s.threads.source)), \(s.binding)",
            "CPU: \(cpu) [\(RunEnvironment.cpuFeatures)]; kernels: \(isaDescription)",
            "Weight precision: \(checkpointDType.rawValue) in checkpoint; \(precisionDescription) (\(Report.megabytes(weightBytes)) MB\(processes > 1 ? " on rank 0" : ""))",
            "Prompt: \(s.prompt.count) tokens (\(s.promptSource))" + (s.phase == .decode ? ", then \(s.genLen) decode steps" : ""),
            "Warm-up: \(s.warmup)   Iterations: \(s.iterations)",
            rule, "",
            "Running \(s.phase.rawValue) benchmark...", "",
        ]
        Swift.print(lines.joined(separator: "\n"))
        fflush(stdout)
    }
}

struct Report {
    let header: ReportHeader
    let result: Measurement
    /// --accuracy: these logits against the float32 model's on the same tokens.
    var agreement: LogitAgreement? = nil

    private static let iso8601 = ISO8601DateFormatter()
    static func timestamp() -> String { iso8601.string(from: Date()) }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }

    /// Timings of the phase the run measures: prefill passes, or the decode steps after them.
    var timed: Statistics {
        Statistics(samples: header.settings.phase == .decode ? result.decodeMs : result.prefillMs)
    }

    var tokensPerIteration: Int {
        header.settings.phase == .decode ? header.settings.genLen : header.settings.prompt.count
    }

    func printResults() {
        let s = timed, n = tokensPerIteration, iters = header.settings.iterations
        let rule = String(repeating: "=", count: 44)
        let tokens = n * iters
        var lines = [rule, "  Benchmark Results", rule,
                     String(format: "Total time: %.2f ms", s.total),
                     "Iterations: \(iters)",
                     "Tokens processed: \(tokens) (\(n) * \(iters))",
                     String(format: "Throughput: %.2f tokens/sec", Double(tokens) / s.total * 1000),
                     String(format: "Time per token: %.2f ms/token", s.total / Double(tokens)),
                     String(format: "Per iteration: median %.2f ms (%.2f tokens/sec), mean %.2f, stddev %.2f, min %.2f, max %.2f",
                            s.median, Double(n) / s.median * 1000, s.mean, s.stddev, s.min, s.max)]
        lines.append("Forward passes run: \(result.forwardCalls) (\(header.settings.warmup) warm-up iteration\(header.settings.warmup == 1 ? "" : "s") included)")
        if header.settings.phase == .decode {
            let p = Statistics(samples: result.prefillMs), len = header.settings.prompt.count
            lines.append(String(format: "Prefill before decode: median %.2f ms for %d tokens (%.2f tokens/sec)",
                                p.median, len, Double(len) / p.median * 1000))
        }
        lines.append("Memory: \(Report.megabytes(header.weightBytes)) MB weights, \(Report.megabytes(result.sessionBytes)) MB activations and KV cache, \(Report.megabytes(result.ranks[0].residentBytes)) MB resident\(header.processes > 1 ? " (rank 0)" : "")")
        if header.processes > 1 {
            let timedMs = Statistics(samples: result.prefillMs).total + Statistics(samples: result.decodeMs).total
            for (r, rank) in result.ranks.enumerated() {
                lines.append(String(format: "Rank %d: %.1f MB resident, %.2f ms per iteration in MPI collectives (%.1f%% of the timed time), %.2f MB payload per iteration, %.2f ms per iteration waiting at barriers for the slowest rank",
                                    r, Double(rank.residentBytes) / 1_048_576, rank.communicationMs / Double(iters),
                                    100 * rank.communicationMs / timedMs, Double(rank.payloadBytes) / 1_048_576 / Double(iters),
                                    rank.barrierMs.values.reduce(0, +) / Double(iters)))
            }
        }
        if let a = agreement {
            lines.append(String(format: "Accuracy against the f32 model over the %d prompt positions: max |dlogit| %.4g, mean KL %.4g nats, top-1 agreement %.2f%%",
                                header.settings.prompt.count, a.maxAbsDiff, a.klMean, 100 * a.top1Agreement))
        }
        lines.append(rule)
        for profile in result.profiles { lines += profileLines(profile) }
        print(lines.joined(separator: "\n"))
    }

    /// The --profile table of one phase: per operation class, ms per iteration, share, GFLOP/s and
    /// GB/s (bytes as OpProfile counts them); under MPI a column per rank (min and max beyond four
    /// ranks) so imbalance shows.
    func profileLines(_ profile: PhaseProfile) -> [String] {
        let iters = Double(header.settings.iterations), ranks = profile.ranks, zero = ranks[0]
        let total = zero.totalNanoseconds
        func name(_ text: String) -> String { "  " + text.padding(toLength: 28, withPad: " ", startingAt: 0) }
        func ms(_ ns: Double) -> String { String(format: "%10.2f", ns / 1e6 / iters) }
        // GFLOP/s and GB/s of rank 0 (per ns is per second in units of 10^9), blank where nothing was counted.
        func rates(_ op: ProfiledOp) -> String {
            guard let ns = zero.nanoseconds[op], ns > 0 else { return "" }
            let gflops = zero.flops[op].map { String(format: "%10.1f", $0 / ns) }
            let gbps = zero.bytes[op].map { String(format: "%10.1f", $0 / ns) }
            return (gflops ?? (gbps == nil ? "" : String(repeating: " ", count: 10))) + (gbps ?? "")
        }
        if ranks.count == 1 {
            var lines = ["Profile, \(profile.phase): ms per iteration, share of the profiled time, GFLOP/s, GB/s",
                         name("operation") + "    ms/iter   share   GFLOP/s      GB/s"]
            for op in ProfiledOp.allCases {
                guard let ns = zero.nanoseconds[op] else { continue }
                lines.append(name(op.rawValue) + String(format: "%11.2f %6.1f%%", ns / 1e6 / iters, 100 * ns / total) + rates(op))
            }
            lines.append(name("total") + String(format: "%11.2f", total / 1e6 / iters))
            return lines
        }
        let perRank = ranks.count <= 4
        let headings = perRank ? ranks.indices.map { "   rank \($0)" } : ["  min rank", "  max rank", "   max at"]
        var lines = ["Profile, \(profile.phase), per rank: ms per iteration; share, GFLOP/s and GB/s of rank 0",
                     name("operation") + headings.joined() + "   share   GFLOP/s      GB/s"]
        func row(_ label: String, _ values: [Double], share: Double?, rates: String = "") -> String {
            var text = name(label)
            if perRank { text += values.map(ms).joined() }
            else {
                let top = values.indices.max { values[$0] < values[$1] }!
                text += ms(values.min()!) + ms(values.max()!) + String(format: "%10d", top)
            }
            if let share { text += String(format: " %6.1f%%", 100 * share) }
            return text + rates
        }
        for op in ProfiledOp.allCases {
            let values = ranks.map { $0.nanoseconds[op] ?? 0 }
            guard values.contains(where: { $0 > 0 }) else { continue }
            lines.append(row(op.rawValue, values, share: (zero.nanoseconds[op] ?? 0) / total, rates: rates(op)))
        }
        lines.append(row("waiting at barriers", result.ranks.map { ($0.barrierMs[profile.phase] ?? 0) * 1e6 }, share: nil))
        lines.append(row("total", ranks.map(\.totalNanoseconds), share: nil))
        return lines
    }

    /// A phase's profile of one rank as JSON: per operation class, ms per iteration, share, GFLOP/s, GB/s.
    func profileJSON(_ p: RankProfile) -> [String: Any] {
        let iters = Double(header.settings.iterations)
        var ops: [String: Any] = [:]
        for (op, ns) in p.nanoseconds {
            var entry: [String: Any] = ["ms_per_iter": ns / 1e6 / iters, "share": ns / p.totalNanoseconds]
            if let work = p.flops[op], work > 0 { entry["gflops"] = work / ns }
            if let moved = p.bytes[op], moved > 0 { entry["gbps"] = moved / ns }
            ops[op.rawValue] = entry
        }
        return ops
    }

    /// FLOPs of one timed iteration of this test, the whole model (see Work).
    var flopsPerIteration: Double {
        let s = header.settings, c = header.config
        return s.phase == .decode ? Work.decode(c, prompt: s.prompt.count, steps: s.genLen) : Work.prefill(c, tokens: s.prompt.count)
    }

    var jsonObject: [String: Any] {
        let h = header, s = h.settings
        let t = timed, prefill = Statistics(samples: result.prefillMs)
        let flops = flopsPerIteration, n = Double(tokensPerIteration)
        // Weights streamed per forward pass: every rank's share under heads, one copy under sequence.
        let weightsRead = s.parallelism == .heads ? result.ranks.reduce(0) { $0 + $1.weightBytes } : h.weightBytes
        let passes = s.phase == .decode ? Double(s.genLen) : 1
        var object: [String: Any] = [
            "test": s.testName,
            "method": s.method.rawValue, "attention": s.attention.name, "phase": s.phase.rawValue,
            "parallel": s.method.isDistributed ? s.parallelism.rawValue : "none",
            "prompt_len": s.prompt.count, "iters": s.iterations, "warmup": s.warmup,
            "threads": s.threads.count, "threads_source": s.threads.source, "binding": s.binding, "procs": h.processes,
            "tokens_per_s": n / t.median * 1000,
            "mean_ms": t.mean, "median_ms": t.median, "stddev_ms": t.stddev, "min_ms": t.min, "max_ms": t.max,
            "samples_ms": t.samples,
            "ttft_ms": prefill.median,
            "timing": t.json, "prefill": prefill.json,
            "flops": flops, "gflop_per_token": flops / n / 1e9, "gflops": flops / t.median / 1e6,
            "flop_per_weight_byte": flops / (passes * Double(Swift.max(weightsRead, 1))),
            "model": h.modelPath, "model_name": h.identity.name, "config_hash": h.identity.configHash,
            "synthetic": h.synthetic, "checkpoint_dtype": h.checkpointDType.rawValue,
            "weights": s.weights.rawValue, "kv_dtype": s.kvPrecision.rawValue, "isa": s.method.isa.rawValue,
            "kernels": h.isaDescription, "bytes_per_weight": s.weights.bytesPerWeight,
            "linear_layers_in_format": "\(h.linearLayers.count)/\(h.linearLayers.of)", "embedding": h.embedding,
            "cpu": h.cpu, "cpu_features": RunEnvironment.cpuFeatures, "commit": h.commit,
            "build": RunEnvironment.buildConfiguration, "host": RunEnvironment.hostname,
            "timestamp": Report.timestamp(),
            "weight_bytes": h.weightBytes, "session_bytes": result.sessionBytes,
            "resident_bytes": result.ranks[0].residentBytes,
            "forward_calls": result.forwardCalls, "prompt_hash": BenchmarkRun.promptHash(s.prompt),
            "prompt_source": s.promptSource,
            "config": ["layers": h.config.numLayers, "hidden": h.config.hiddenSize, "heads": h.config.numHeads,
                       "kv_heads": h.config.numKVHeads, "head_dim": h.config.headDim,
                       "intermediate": h.config.intermediateSize, "vocab": h.config.vocabSize],
        ]
        if !result.profiles.isEmpty {
            var rankZero: [String: Any] = [:]
            var perRank: [[String: Any]] = result.ranks.map { _ in [:] }
            for profile in result.profiles {
                rankZero[profile.phase] = profileJSON(profile.ranks[0])
                for (r, p) in profile.ranks.enumerated() { perRank[r][profile.phase] = profileJSON(p) }
            }
            object["profile"] = rankZero
            object["profile_ranks"] = perRank
        }
        let iters = Double(s.iterations)
        object["ranks"] = result.ranks.map {
            ["resident_bytes": $0.residentBytes, "mpi_ms": $0.communicationMs, "mpi_payload_bytes": $0.payloadBytes,
             "weight_bytes": $0.weightBytes,
             "barrier_wait_ms_per_iter": $0.barrierMs.mapValues { $0 / iters }] as [String: Any]
        }
        if s.phase == .decode {
            object["gen_len"] = s.genLen
            object["decode_tokens_per_s"] = n / t.median * 1000
        }
        if s.syntheticPrompt { object["seed"] = s.seed }
        if let a = agreement { object.merge(a.json) { $1 } }
        if case .streaming(let q, let kv) = s.attention {
            object["q_block"] = q
            object["kv_block"] = kv
        }
        return object
    }

    /// The summary table of a sweep (Markdown, and the end of the text output).
    static let summaryColumns: [Column] = [
        Column("test", "test"), Column("method", "method"), Column("weights", "weights"),
        Column("kv_dtype", "kv"), Column("attention", "attention"), Column("q_block", "q block"), Column("kv_block", "kv block"),
        Column("parallel", "parallel"), Column("procs", "procs"), Column("threads", "threads"),
        Column("prompt_len", "prompt"), Column("median_ms", "median ms", format: Column.fixed(2)),
        Column("stddev_ms", "± stddev", format: Column.fixed(2)), Column("min_ms", "min ms", format: Column.fixed(2)),
        Column("max_ms", "max ms", format: Column.fixed(2)), Column("tokens_per_s", "tokens/s", format: Column.fixed(1)),
        Column("ttft_ms", "TTFT ms", format: Column.fixed(1)), Column("gflops", "GFLOP/s", format: Column.fixed(1)),
    ]

    /// Every scalar of a row, one column each, and the samples (separated by ';').
    static let csvColumns: [Column] = [
        "test", "phase", "method", "isa", "weights", "kv_dtype", "attention", "q_block", "kv_block", "parallel", "procs", "threads",
        "binding", "prompt_len", "gen_len", "iters", "warmup", "mean_ms", "median_ms", "stddev_ms", "min_ms", "max_ms",
        "tokens_per_s", "ttft_ms", "gflop_per_token", "gflops", "flop_per_weight_byte", "bytes_per_weight",
        "max_abs_dlogit", "kl_mean", "top1_agreement", "samples_ms", "model_name",
        "config_hash", "synthetic", "checkpoint_dtype", "kernels", "cpu", "commit", "build", "timestamp",
    ].map { Column($0, $0) }
}
