// Report.swift — the human report (the original tool's layout) and the JSON record of a run.
import BenchSupport
import Foundation
import Qwen3

struct ReportHeader {
    let settings: RunSettings
    let modelPath: String
    let synthetic: Bool
    let config: Qwen3Config
    let checkpointDType: TensorDType
    let weightBytes: Int
    let commit: String
    let cpu: String
    let processes: Int

    init(settings: RunSettings, model: Qwen3Model, path: String, synthetic: Bool) {
        self.settings = settings
        modelPath = path
        self.synthetic = synthetic
        config = model.config
        checkpointDType = model.checkpointDType
        weightBytes = model.weightBytes
        commit = RunEnvironment.commit
        cpu = RunEnvironment.cpuModel
        processes = model.plan.size
    }

    var attentionDescription: String {
        switch settings.attention {
        case .standard: return "standard"
        case .streaming(let q, let kv): return "streaming (q-block \(q), kv-block \(kv))"
        }
    }

    var isaDescription: String {
        let matmul = settings.weights == .bf16 ? "bf16 matmul" : "f32 matmul"
        switch settings.method.isa {
        case .baseline: return "plain C loops (baseline), \(matmul)"
        case .avx2: return "AVX2+FMA"
        case .avx512: return "AVX-512 \(settings.weights == .bf16 ? "BF16 (vdpbf16ps)" : "f32") matmul, AVX2+FMA elsewhere"
        }
    }

    var precisionDescription: String {
        settings.weights == .bf16
            ? "bf16 linear weights, activations rounded to bf16 at each matmul, f32 sums and f32 elsewhere"
            : "float32 in memory and compute"
    }

    func print() {
        let rule = String(repeating: "=", count: 44)
        let s = settings
        var lines = [rule, "  Qwen3 Benchmark", rule,
                     "Model: \(modelPath)"]
        if synthetic {
            lines.append("Weights: SYNTHETIC (random, seeded) with the Qwen3-0.6B shapes; speed is real, outputs are meaningless")
        }
        lines += [
            "Config: \(config.numLayers) layers, hidden \(config.hiddenSize), heads \(config.numHeads)/\(config.numKVHeads) (q/kv), head_dim \(config.headDim), intermediate \(config.intermediateSize), vocab \(config.vocabSize)",
            "Method: \(s.method.rawValue) (\(s.methodSource))",
            "Attention: \(attentionDescription)",
            "Phase: \(s.phase.rawValue)",
            "Processes: \(processes)\(processes > 1 ? " (tensor parallel: heads, MLP columns and vocabulary split)" : "")   Threads per process: \(s.threads.count) (\(s.threads.source)), \(s.binding)",
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
                lines.append(String(format: "Rank %d: %.1f MB resident, %.2f ms per iteration in MPI collectives (%.1f%% of the timed time), %.2f MB payload per iteration",
                                    r, Double(rank.residentBytes) / 1_048_576, rank.communicationMs / Double(iters),
                                    100 * rank.communicationMs / timedMs, Double(rank.payloadBytes) / 1_048_576 / Double(iters)))
            }
        }
        lines.append(rule)
        for (phase, profile) in result.profiles { lines += profileLines(phase: phase, profile: profile) }
        print(lines.joined(separator: "\n"))
    }

    /// The --profile table of one phase: per operation class, ms per iteration, share, GFLOP/s.
    func profileLines(phase: String, profile: OpProfile) -> [String] {
        let iters = Double(header.settings.iterations), total = Double(profile.totalNanoseconds)
        func name(_ text: String) -> String { "  " + text.padding(toLength: 28, withPad: " ", startingAt: 0) }
        var lines = ["Profile, \(phase)\(header.processes > 1 ? " (rank 0)" : ""): ms per iteration, share of the profiled time, GFLOP/s",
                     name("operation") + "    ms/iter   share   GFLOP/s"]
        for op in ProfiledOp.allCases {
            guard let ns = profile.nanoseconds[op], ns > 0 else { continue }
            let work = profile.flops[op] ?? 0
            let rate = work > 0 ? String(format: "%10.1f", work / Double(ns)) : ""
            lines.append(name(op.rawValue) + String(format: "%11.2f %6.1f%%", Double(ns) / 1e6 / iters, 100 * Double(ns) / total) + rate)
        }
        lines.append(name("total") + String(format: "%11.2f", total / 1e6 / iters))
        return lines
    }

    var profileJSON: [String: Any] {
        var out: [String: Any] = [:]
        let iters = Double(header.settings.iterations)
        for (phase, profile) in result.profiles {
            var ops: [String: Any] = [:]
            for (op, ns) in profile.nanoseconds {
                var entry: [String: Any] = ["ms_per_iter": Double(ns) / 1e6 / iters,
                                            "share": Double(ns) / Double(profile.totalNanoseconds)]
                if let work = profile.flops[op], work > 0 { entry["gflops"] = work / Double(ns) }
                ops[op.rawValue] = entry
            }
            out[phase] = ops
        }
        return out
    }

    var jsonObject: [String: Any] {
        let h = header, s = h.settings
        var blocks: [String: Any] = [:]
        if case .streaming(let q, let kv) = s.attention { blocks = ["q_block": q, "kv_block": kv] }
        let t = timed
        var object: [String: Any] = [
            "test": (s.phase == .decode ? "tg" : "pp") + "\(tokensPerIteration)",
            "method": s.method.rawValue, "attention": s.attention.name, "phase": s.phase.rawValue,
            "prompt_len": s.prompt.count, "iters": s.iterations, "warmup": s.warmup,
            "threads": s.threads.count, "threads_source": s.threads.source, "binding": s.binding, "procs": h.processes,
            "tokens_per_s": Double(tokensPerIteration) / t.median * 1000,
            "timing": t.json, "prefill": Statistics(samples: result.prefillMs).json,
            "model": h.modelPath, "synthetic": h.synthetic, "checkpoint_dtype": h.checkpointDType.rawValue,
            "weights": s.weights.rawValue, "isa": s.method.isa.rawValue, "cpu": h.cpu,
            "cpu_features": RunEnvironment.cpuFeatures, "commit": h.commit, "host": RunEnvironment.hostname,
            "timestamp": ISO8601DateFormatter().string(from: Date()),
            "weight_bytes": h.weightBytes, "session_bytes": result.sessionBytes,
            "resident_bytes": result.ranks[0].residentBytes,
            "config": ["layers": h.config.numLayers, "hidden": h.config.hiddenSize, "heads": h.config.numHeads,
                       "kv_heads": h.config.numKVHeads, "head_dim": h.config.headDim,
                       "intermediate": h.config.intermediateSize, "vocab": h.config.vocabSize],
        ]
        object["samples_ms"] = t.samples
        object["forward_calls"] = result.forwardCalls
        object["prompt_hash"] = BenchmarkRun.promptHash(s.prompt)
        if !result.profiles.isEmpty { object["profile"] = profileJSON }
        object["ranks"] = result.ranks.map {
            ["resident_bytes": $0.residentBytes, "mpi_ms": $0.communicationMs, "mpi_payload_bytes": $0.payloadBytes] as [String: Any]
        }
        if s.phase == .decode { object["gen_len"] = s.genLen }
        if s.promptSource != "--tokens" { object["seed"] = s.seed }
        object.merge(blocks) { a, _ in a }
        return object
    }

    /// Appends the run as one JSON line.
    func appendJSON(to path: String) throws { try ResultTable.appendJSONLines([jsonObject], to: path) }
}
