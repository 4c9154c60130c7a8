// SyntheticCheckpoint.swift — deterministic random Qwen3 checkpoints with Hugging Face names and layout.
import Foundation

/// Generates checkpoints whose values come from a seeded generator, for benchmarks (no weights can be
/// downloaded here) and tests. They load through the same safetensors path as a real model.
public enum SyntheticCheckpoint {
    /// Bumped whenever the generated values or layout change, so stale caches are not reused.
    static let version = 1

    /// Writes config.json and model.safetensors into `folder` (created if needed).
    public static func write(config: Qwen3Config, dtype: TensorDType, seed: UInt64 = 0, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let url = URL(fileURLWithPath: folder)
        var json = try config.huggingFaceJSON()
        if dtype != .bf16, var object = try JSONSerialization.jsonObject(with: json) as? [String: Any] {
            object["torch_dtype"] = dtype == .f32 ? "float32" : "float16"
            json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        }
        try json.write(to: url.appendingPathComponent("config.json"))
        try SafetensorsWriter.write(tensors(config: config, dtype: dtype, seed: seed),
                                    to: url.appendingPathComponent("model.safetensors").path,
                                    metadata: ["format": "pt", "generator": "qwen3-bench synthetic v\(version)"])
    }

    /// The folder of the cached synthetic checkpoint for `config`, generated on first use.
    /// Concurrent callers (MPI ranks) each generate into a private folder and rename it into place;
    /// the first rename wins and the others discard their copy.
    public static func cached(config: Qwen3Config, name: String, dtype: TensorDType, cacheRoot: String) throws -> String {
        let folder = URL(fileURLWithPath: cacheRoot)
            .appendingPathComponent("\(name)-synthetic-\(dtype.rawValue.lowercased())-v\(version)").path
        let fm = FileManager.default
        if fm.fileExists(atPath: folder + "/model.safetensors") { return folder }
        do {
            try fm.createDirectory(atPath: cacheRoot, withIntermediateDirectories: true)
        } catch {
            throw RequestError("cannot create the synthetic model cache \(cacheRoot) (set QWEN3_BENCH_CACHE to a writable folder)")
        }
        let staging = folder + ".partial-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? fm.removeItem(atPath: staging) }
        try write(config: config, dtype: dtype, to: staging)
        if rename(staging, folder) != 0 && !fm.fileExists(atPath: folder + "/model.safetensors") {
            throw RequestError("cannot move the synthetic model into \(folder) (\(String(cString: strerror(errno))))")
        }
        return folder
    }

    /// The default cache root: $QWEN3_BENCH_CACHE, else $XDG_CACHE_HOME/qwen3-bench, else ~/.cache/qwen3-bench.
    public static func defaultCacheRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let root = environment["QWEN3_BENCH_CACHE"], !root.isEmpty { return root }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/qwen3-bench" }
        return NSHomeDirectory() + "/.cache/qwen3-bench"
    }

    /// Tensor specs in Hugging Face order and names. Linear weights are uniform in ±1/sqrt(fan_in)
    /// (activations stay O(1) through any depth), norms near 1, the embedding uniform in ±1.
    static func tensors(config c: Qwen3Config, dtype: TensorDType, seed: UInt64) -> [TensorSpec] {
        func random(_ name: String, _ shape: [Int], center: Float = 0, halfWidth: Float) -> TensorSpec {
            let stream = seed ^ fnv1a(name)
            return TensorSpec(name: name, dtype: dtype, shape: shape) { offset, values in
                for i in 0..<values.count {
                    let u = unitFloat(SplitMix64.mix(stream &+ UInt64(offset + i)))
                    values[i] = center + halfWidth * (2 * u - 1)
                }
            }
        }
        func linear(_ name: String, out: Int, in fanIn: Int) -> TensorSpec {
            random(name, [out, fanIn], halfWidth: 1 / Float(fanIn).squareRoot())
        }
        func norm(_ name: String, _ size: Int) -> TensorSpec { random(name, [size], center: 1, halfWidth: 0.1) }

        let (h, d, i) = (c.hiddenSize, c.headDim, c.intermediateSize)
        var specs = [random("model.embed_tokens.weight", [c.vocabSize, h], halfWidth: 1)]
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            specs += [
                norm(p + "input_layernorm.weight", h),
                linear(p + "self_attn.q_proj.weight", out: c.numHeads * d, in: h),
                linear(p + "self_attn.k_proj.weight", out: c.numKVHeads * d, in: h),
                linear(p + "self_attn.v_proj.weight", out: c.numKVHeads * d, in: h),
                norm(p + "self_attn.q_norm.weight", d),
                norm(p + "self_attn.k_norm.weight", d),
                linear(p + "self_attn.o_proj.weight", out: h, in: c.numHeads * d),
                norm(p + "post_attention_layernorm.weight", h),
                linear(p + "mlp.gate_proj.weight", out: i, in: h),
                linear(p + "mlp.up_proj.weight", out: i, in: h),
                linear(p + "mlp.down_proj.weight", out: h, in: i),
            ]
            if c.attentionBias {
                for (name, size) in [("q_proj", c.numHeads * d), ("k_proj", c.numKVHeads * d),
                                     ("v_proj", c.numKVHeads * d), ("o_proj", h)] {
                    specs.append(random(p + "self_attn.\(name).bias", [size], halfWidth: 0.1))
                }
            }
        }
        specs.append(norm("model.norm.weight", h))
        if !c.tieWordEmbeddings { specs.append(linear("lm_head.weight", out: c.vocabSize, in: h)) }
        return specs
    }

    /// Uniform in [0, 1) from the top 24 bits.
    static func unitFloat(_ bits: UInt64) -> Float { Float(bits >> 40) * (1.0 / 16_777_216.0) }

    static func fnv1a(_ s: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in s.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }
}

/// SplitMix64: the seeded generator of synthetic weights and token ids. `mix` is counter-based, so
/// any element of a synthetic tensor can be produced on its own; `next` walks the same sequence.
public struct SplitMix64 {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        defer { state &+= 0x9E37_79B9_7F4A_7C15 }
        return Self.mix(state)
    }
}
