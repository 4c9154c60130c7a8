// Weights.swift — binds checkpoint tensor names to this rank's shard of every layer, converted to float32.
import CKernels
import Foundation

/// One decoder layer's weights, as this rank holds them. Projections that read the same input are
/// one column-parallel GEMM, their weights concatenated along the output dimension at load.
struct LayerWeights {
    let inputNorm: FloatBuffer          // (hidden)
    let qkvProj: Linear                 // column-parallel: ((local q heads + 2 local kv slots) * head_dim, hidden)
    let qNorm: FloatBuffer              // (head_dim)
    let kNorm: FloatBuffer              // (head_dim)
    let oProj: Linear                   // row-parallel: (hidden, local q heads * head_dim)
    let oBias: FloatBuffer?             // (hidden), added once after the all-reduce
    let postAttentionNorm: FloatBuffer  // (hidden)
    let gateUpProj: Linear              // column-parallel: (2 * local intermediate, hidden), gate rows then up rows
    let downProj: Linear                // row-parallel: (hidden, local intermediate)

    var byteCount: Int {
        [inputNorm, qNorm, kNorm, postAttentionNorm].reduce(0) { $0 + $1.byteCount }
            + [qkvProj, oProj, gateUpProj, downProj].reduce(0) { $0 + $1.byteCount }
            + (oBias?.byteCount ?? 0)
    }
}

/// The token embedding table (vocab, hidden), replicated: row t is token t's embedding. float32,
/// or, for quantized linear weights from a bfloat16 checkpoint, the checkpoint's bfloat16 values
/// (exact, half of the model's largest tensor) widened to float32 row by row at lookup.
enum EmbeddingTable {
    case f32(FloatBuffer)
    case bf16(BFloat16Buffer)

    /// dst[0..<width] = row `token`.
    func copyRow(_ token: Int, width: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32(let b): dst.update(from: b.pointer + token * width, count: width)
        case .bf16(let b): ck_convert_bf16_to_f32(b.pointer + token * width, dst, width)
        }
    }

    var byteCount: Int {
        switch self {
        case .f32(let b): return b.byteCount
        case .bf16(let b): return b.byteCount
        }
    }

    var f32: FloatBuffer? {
        if case .f32(let b) = self { return b }
        return nil
    }
}

/// Every weight this rank holds.
struct ModelWeights {
    let embedding: EmbeddingTable   // (vocab, hidden), replicated
    let layers: [LayerWeights]
    let finalNorm: FloatBuffer      // (hidden)
    let lmHead: Linear              // column-parallel over the vocabulary: (local vocab, hidden)
    let checkpointDType: TensorDType

    /// Every linear layer, lm_head last.
    var linears: [Linear] {
        layers.flatMap { [$0.qkvProj, $0.oProj, $0.gateUpProj, $0.downProj] } + [lmHead]
    }

    var byteCount: Int {
        let head = embedding.f32.map { lmHead.weight.isStorage(of: $0) } ?? false ? 0 : lmHead.byteCount
        return embedding.byteCount + finalNorm.byteCount + head + layers.reduce(0) { $0 + $1.byteCount }
    }
}

/// Reads this rank's shard out of a mapped checkpoint, checking every name and shape once.
struct WeightLoader {
    let checkpoint: SafetensorsCheckpoint
    let config: Qwen3Config
    let plan: ShardPlan
    let kernels: Kernels
    let path: String

    func load() throws -> ModelWeights {
        try checkNames()
        let c = config, d = c.headDim
        let embedding = try embeddingTable(shape: [c.vocabSize, c.hiddenSize])
        var layers: [LayerWeights] = []
        for i in 0..<c.numLayers {
            let p = "model.layers.\(i)."
            let attention = p + "self_attn."
            let qRows = plan.queryHeads.lowerBound * d ..< plan.queryHeads.upperBound * d
            let kvRows = plan.kvHeads.map { $0 * d ..< ($0 + 1) * d }
            let (q, kv, inter) = (c.numHeads * d, c.numKVHeads * d, c.intermediateSize)
            let bias = c.attentionBias
            layers.append(LayerWeights(
                inputNorm: try full(p + "input_layernorm.weight", shape: [c.hiddenSize]),
                qkvProj: try columnParallel([(attention + "q_proj", [qRows], q), (attention + "k_proj", kvRows, kv),
                                             (attention + "v_proj", kvRows, kv)], bias: bias),
                qNorm: try full(attention + "q_norm.weight", shape: [d]),
                kNorm: try full(attention + "k_norm.weight", shape: [d]),
                oProj: try rowParallel(attention + "o_proj.weight", columns: qRows, total: q),
                oBias: bias ? try full(attention + "o_proj.bias", shape: [c.hiddenSize]) : nil,
                postAttentionNorm: try full(p + "post_attention_layernorm.weight", shape: [c.hiddenSize]),
                gateUpProj: try columnParallel([(p + "mlp.gate_proj", [plan.intermediate], inter),
                                                (p + "mlp.up_proj", [plan.intermediate], inter)], bias: false),
                downProj: try rowParallel(p + "mlp.down_proj.weight", columns: plan.intermediate, total: inter)))
        }
        let finalNorm = try full("model.norm.weight", shape: [c.hiddenSize])
        let lmHead: Linear
        // As Hugging Face does: a stored lm_head.weight is used even when the config says tied
        // (it is normally an identical copy); otherwise the embedding doubles as the output layer.
        if checkpoint.tensor("lm_head.weight") != nil {
            lmHead = try vocabularyShard(of: "lm_head.weight", embedding: nil)
        } else {
            lmHead = try vocabularyShard(of: "model.embed_tokens.weight", embedding: embedding.f32)
        }
        return ModelWeights(embedding: embedding, layers: layers, finalNorm: finalNorm, lmHead: lmHead,
                            checkpointDType: try lookup("model.embed_tokens.weight").dtype)
    }

    /// Every tensor the config implies is present, and nothing else is.
    private func checkNames() throws {
        var expected: Set<String> = ["model.embed_tokens.weight", "model.norm.weight"]
        if !config.tieWordEmbeddings { expected.insert("lm_head.weight") }
        for i in 0..<config.numLayers {
            let p = "model.layers.\(i)."
            for name in ["input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm",
                         "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                         "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
                expected.insert(p + name + ".weight")
            }
            if config.attentionBias {
                for name in ["q_proj", "k_proj", "v_proj", "o_proj"] { expected.insert(p + "self_attn.\(name).bias") }
            }
        }
        let present = Set(checkpoint.tensors.keys)
        // GPTQ and AWQ store int4 weights as packed int32 `qweight` with `scales` and `qzeros`.
        if let quantized = present.sorted().first(where: { name in
            ["qweight", "qzeros", "scales", "g_idx"].contains { name.hasSuffix("." + $0) }
        }) {
            throw ModelLoadError(path, "tensor \(quantized) is from a GPTQ/AWQ-quantized checkpoint (qweight/scales/qzeros), which this tool does not read; give it the float32/bfloat16/float16 checkpoint and quantize at load with --weights q8_0 or q4_0")
        }
        if let missing = expected.subtracting(present).sorted().first {
            throw ModelLoadError(path, "missing tensor \(missing)")
        }
        // A tied checkpoint may store lm_head.weight anyway, usually a copy of the embedding.
        let allowed = expected.union(config.tieWordEmbeddings ? ["lm_head.weight"] : [])
        if let unexpected = present.subtracting(allowed).sorted().first {
            throw ModelLoadError(path, "unexpected tensor \(unexpected) for a \(config.numLayers)-layer Qwen3 config")
        }
    }

    /// A tensor checkNames has found present.
    private func lookup(_ name: String) throws -> TensorView {
        guard let t = checkpoint.tensor(name) else { throw ModelLoadError(path, "missing tensor \(name)") }
        return t
    }

    private func tensor(_ name: String, shape: [Int]) throws -> TensorView {
        let t = try lookup(name)
        if t.shape != shape {
            throw ModelLoadError(t.path, "tensor \(name) has shape \(t.shape), config.json implies \(shape)")
        }
        return t
    }

    /// The embedding: bfloat16 when the linear weights are quantized and the checkpoint holds
    /// bfloat16 (kept as is, so the lookup is exact and the q4_0 model's memory is not dominated by
    /// a float32 copy of the largest tensor); float32 otherwise.
    private func embeddingTable(shape: [Int]) throws -> EmbeddingTable {
        let name = "model.embed_tokens.weight"
        let t = try tensor(name, shape: shape)
        guard kernels.precision.isQuantized, t.dtype == .bf16 else { return .f32(try full(name, shape: shape)) }
        let table = try BFloat16Buffer(count: t.elementCount)
        UnsafeMutableRawPointer(table.pointer).copyMemory(from: t.data, byteCount: t.elementCount * 2)
        let floats = try FloatBuffer(count: shape[1])
        for row in 0..<shape[0] {  // refuse NaN and infinity as the float32 path does, a row at a time
            try Self.convert(t, from: row * shape[1], count: shape[1], into: floats.pointer)
        }
        return .bf16(table)
    }

    /// A whole tensor as float32.
    private func full(_ name: String, shape: [Int]) throws -> FloatBuffer {
        let t = try tensor(name, shape: shape)
        let out = try FloatBuffer(count: t.elementCount)
        try Self.convert(t, from: 0, count: t.elementCount, into: out.pointer)
        return out
    }

    /// One column-parallel layer from the output rows `rows` of each (total, hidden) weight in
    /// `parts`, concatenated in order (q, k, v or gate, up: their outputs then come from one GEMM),
    /// with the same rows of their biases.
    private func columnParallel(_ parts: [(prefix: String, rows: [Range<Int>], total: Int)], bias: Bool) throws -> Linear {
        let k = config.hiddenSize
        let n = parts.reduce(0) { $0 + $1.rows.reduce(0) { $0 + $1.count } }
        let raw = try FloatBuffer(count: n * k)
        let biasBuffer = bias ? try FloatBuffer(count: n) : nil
        var at = 0
        for part in parts {
            let t = try tensor(part.prefix + ".weight", shape: [part.total, k])
            let b = bias ? try tensor(part.prefix + ".bias", shape: [part.total]) : nil
            for range in part.rows {
                try Self.convert(t, from: range.lowerBound * k, count: range.count * k, into: raw.pointer + at * k)
                if let b, let biasBuffer {
                    try Self.convert(b, from: range.lowerBound, count: range.count, into: biasBuffer.pointer + at)
                }
                at += range.count
            }
        }
        return Linear(outFeatures: n, inFeatures: k,
                      weight: try kernels.prepare(weight: raw, outFeatures: n, inFeatures: k), bias: biasBuffer)
    }

    /// Input columns `columns` of a (hidden, total) weight: this rank's partial sum of the output.
    private func rowParallel(_ name: String, columns: Range<Int>, total: Int) throws -> Linear {
        let n = config.hiddenSize, k = columns.count
        let t = try tensor(name, shape: [n, total])
        let raw = try FloatBuffer(count: n * k)
        for row in 0..<n {
            try Self.convert(t, from: row * total + columns.lowerBound, count: k, into: raw.pointer + row * k)
        }
        return Linear(outFeatures: n, inFeatures: k,
                      weight: try kernels.prepare(weight: raw, outFeatures: n, inFeatures: k), bias: nil)
    }

    /// This rank's vocabulary rows of the output projection. A tied baseline run on one rank reads
    /// the embedding itself rather than a second copy. `embedding` is the float32 table when tied
    /// (a bfloat16 table is converted from the checkpoint again).
    private func vocabularyShard(of name: String, embedding: FloatBuffer?) throws -> Linear {
        let (v, k) = (config.vocabSize, config.hiddenSize)
        let t = try tensor(name, shape: [v, k])
        let rows = plan.vocab
        if let embedding, rows.count == v, kernels.isa == .baseline, kernels.precision == .f32 {
            return Linear(outFeatures: v, inFeatures: k, weight: .f32(embedding), bias: nil)
        }
        let raw = try FloatBuffer(count: rows.count * k)
        if let embedding {
            (raw.pointer).update(from: embedding.pointer + rows.lowerBound * k, count: rows.count * k)
        } else {
            try Self.convert(t, from: rows.lowerBound * k, count: rows.count * k, into: raw.pointer)
        }
        return Linear(outFeatures: rows.count, inFeatures: k,
                      weight: try kernels.prepare(weight: raw, outFeatures: rows.count, inFeatures: k), bias: nil)
    }

    /// Converts `count` elements starting at element `from` of a tensor to float32, refusing
    /// NaN and infinity: a model holding them computes garbage, and its timings mean nothing.
    static func convert(_ t: TensorView, from: Int, count: Int, into dst: UnsafeMutablePointer<Float>) throws {
        if count == 0 { return }
        convertUnchecked(t, from: from, count: count, into: dst)
        let bad = ck_count_nonfinite_f32(dst, count)
        if bad > 0 {
            throw ModelLoadError(t.path, "tensor \(t.name) holds \(bad) NaN or infinite values; refusing to run a model that computes garbage")
        }
    }

    static func convertUnchecked(_ t: TensorView, from: Int, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let src = t.data + from * t.dtype.byteSize
        switch t.dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .bf16:
            ck_convert_bf16_to_f32(src.assumingMemoryBound(to: UInt16.self), dst, count)
        case .f16:
            ck_convert_f16_to_f32(src.assumingMemoryBound(to: UInt16.self), dst, count)
        }
    }
}
