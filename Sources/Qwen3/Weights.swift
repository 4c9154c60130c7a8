// Weights.swift — binds checkpoint tensor names to this rank's shard of every layer, prepared in the kernels' layout.
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

/// The token embedding table (vocab, hidden), replicated: row t is token t's embedding, read a
/// row at a time into float32. It is held in the format of the model's lm_head, as a GGUF file
/// holds token_embd: float32, bfloat16, or q8_0 / q4_0 blocks dequantized at lookup; a tied model
/// whose lm_head holds the whole vocabulary on this rank reads that lm_head's own rows (`shared`),
/// so the largest tensor is held once.
enum EmbeddingTable {
    /// A table of its own, unpacked (`Kernels.rows`), in `format`'s elements.
    case own(WeightStorage, WeightPrecision)
    /// The rows of a tied lm_head in the layout its matmul reads: packed unless `isa` is baseline.
    case shared(Linear, WeightPrecision, KernelISA)

    /// dst[0..<width] = row `token`.
    func copyRow(_ token: Int, width: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .own(let rows, let format): Self.copyRow(token, of: rows, format, packed: false, width: width, into: dst)
        case .shared(let head, let format, let isa):
            Self.copyRow(token, of: head.weight, format, packed: isa != .baseline, width: width, into: dst)
        }
    }

    private static func copyRow(_ token: Int, of rows: WeightStorage, _ format: WeightPrecision, packed: Bool,
                                width: Int, into dst: UnsafeMutablePointer<Float>) {
        switch rows {
        case .f32(let b):
            precondition(!packed, "a packed float32 lm_head is not shared with the embedding")
            dst.update(from: b.pointer + token * width, count: width)
        case .bf16(let b) where packed: ck_packed_row_bf16(b.pointer, token, width, dst)
        case .bf16(let b): ck_convert_bf16_to_f32(b.pointer + token * width, dst, width)
        case .quantized(let b) where packed:
            if format == .q8_0 { ck_packed_row_q8_0(b.pointer, token, width, dst) } else { ck_packed_row_q4_0(b.pointer, token, width, dst) }
        case .quantized(let b):
            let rowBytes = width / Int(CK_QK) * Int(format == .q8_0 ? CK_Q8_0_BLOCK_BYTES : CK_Q4_0_BLOCK_BYTES)
            if format == .q8_0 { ck_dequantize_q8_0(b.pointer + token * rowBytes, dst, 1, width) }
            else { ck_dequantize_q4_0(b.pointer + token * rowBytes, dst, 1, width) }
        }
    }

    /// Bytes this table adds to the model's (none when it shares the lm_head's).
    var byteCount: Int {
        if case .own(let rows, _) = self { return rows.byteCount }
        return 0
    }

    var f32: FloatBuffer? {
        if case .own(.f32(let b), _) = self { return b }
        return nil
    }

    /// What the table holds, for the report.
    var summary: String {
        switch self {
        case .own(.f32, _): return "float32"
        case .own(.bf16, _): return "bfloat16"
        case .own(.quantized, let format): return "\(format.rawValue) blocks"
        case .shared(_, let format, _): return "the tied lm_head's \(format.rawValue) rows, not a second copy"
        }
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
    /// What the linear layers and the embedding table are prepared through, a chunk of rows at a time.
    var scratch = WeightScratch()

    func load() throws -> ModelWeights {
        try checkNames()
        let c = config, d = c.headDim
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
        let (embedding, lmHead) = try embeddingAndOutput()
        return ModelWeights(embedding: embedding, layers: layers, finalNorm: finalNorm, lmHead: lmHead,
                            checkpointDType: try lookup("model.embed_tokens.weight").dtype)
    }

    /// The embedding table and this rank's vocabulary rows of the output projection. As Hugging
    /// Face does, a stored lm_head.weight is used even when the config says tied (it is normally an
    /// identical copy); otherwise the embedding doubles as the output layer, and a tied lm_head
    /// that holds every row in the model's format is also the table the lookup reads.
    private func embeddingAndOutput() throws -> (EmbeddingTable, Linear) {
        let name = "model.embed_tokens.weight", shape = [config.vocabSize, config.hiddenSize]
        let tied = checkpoint.tensor("lm_head.weight") == nil
        let precision = kernels.precision
        if precision == .f32 {
            let table = try full(name, shape: shape)
            return (.own(.f32(table), .f32),
                    try vocabularyShard(of: tied ? name : "lm_head.weight", embedding: tied ? table : nil))
        }
        let lmHead = try vocabularyShard(of: tied ? name : "lm_head.weight", embedding: nil)
        if tied, lmHead.outFeatures == config.vocabSize, !lmHead.weight.isF32 {
            return (.shared(lmHead, precision, kernels.isa), lmHead)
        }
        // A table of its own (an untied model, or a tied one whose lm_head is split over the
        // ranks), in the lm_head's elements: bfloat16, GGUF blocks quantized as the linear layers
        // are, or float32 where those stay float32 (a hidden size that is not a multiple of 32).
        let t = try tensor(name, shape: shape), k = shape[1]
        let table = try kernels.rows(outFeatures: shape[0], inFeatures: k, scratch: scratch) { rows, dst in
            try Self.convert(t, from: rows.lowerBound * k, count: rows.count * k, into: dst)
        }
        return (.own(table, precision), lmHead)
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
        let biasBuffer = bias ? try FloatBuffer(count: n) : nil
        var pieces: [(tensor: TensorView, rows: Range<Int>)] = []  // the layer's rows, in order
        var at = 0
        for part in parts {
            let t = try tensor(part.prefix + ".weight", shape: [part.total, k])
            let b = bias ? try tensor(part.prefix + ".bias", shape: [part.total]) : nil
            for range in part.rows {
                if let b, let biasBuffer {
                    try Self.convert(b, from: range.lowerBound, count: range.count, into: biasBuffer.pointer + at)
                }
                pieces.append((t, range))
                at += range.count
            }
        }
        let weight = try kernels.prepare(outFeatures: n, inFeatures: k, scratch: scratch) { rows, dst in
            var first = 0  // the layer's row where the piece starts
            for piece in pieces {
                let lo = max(rows.lowerBound, first), hi = min(rows.upperBound, first + piece.rows.count)
                if lo < hi {
                    try Self.convert(piece.tensor, from: (piece.rows.lowerBound + lo - first) * k, count: (hi - lo) * k,
                                     into: dst + (lo - rows.lowerBound) * k)
                }
                first += piece.rows.count
            }
        }
        return Linear(outFeatures: n, inFeatures: k, weight: weight, bias: biasBuffer)
    }

    /// Input columns `columns` of a (hidden, total) weight: this rank's partial sum of the output.
    private func rowParallel(_ name: String, columns: Range<Int>, total: Int) throws -> Linear {
        let n = config.hiddenSize, k = columns.count
        let t = try tensor(name, shape: [n, total])
        let weight = try kernels.prepare(outFeatures: n, inFeatures: k, scratch: scratch) { rows, dst in
            for row in rows {
                try Self.convert(t, from: row * total + columns.lowerBound, count: k, into: dst + (row - rows.lowerBound) * k)
            }
        }
        return Linear(outFeatures: n, inFeatures: k, weight: weight, bias: nil)
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
        let weight = try kernels.prepare(outFeatures: rows.count, inFeatures: k, scratch: scratch) { chunk, dst in
            let first = rows.lowerBound + chunk.lowerBound  // the chunk's first vocabulary row
            if let embedding {
                dst.update(from: embedding.pointer + first * k, count: chunk.count * k)
            } else {
                try Self.convert(t, from: first * k, count: chunk.count * k, into: dst)
            }
        }
        return Linear(outFeatures: rows.count, inFeatures: k, weight: weight, bias: nil)
    }

    /// Converts `count` elements starting at element `from` of a tensor to float32, refusing
    /// NaN and infinity: a model holding them computes garbage, and its timings mean nothing.
    static func convert(_ t: TensorView, from: Int, count: Int, into dst: UnsafeMutablePointer<Float>) throws {
        if count == 0 { return }
        convertUnchecked(t, from: from, count: count, into: dst)
        let bad = ck_count_nonfinite_f32(dst, count)
        if bad > 0 {
            // Loading reads a tensor a chunk at a time and stops at the first bad one: the count is
            // that range's, not the tensor's.
            throw ModelLoadError(t.path, "tensor \(t.name) holds NaN or infinite values (\(bad) among elements \(from)..<\(from + count), the first range read that has any); refusing to run a model that computes garbage")
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
