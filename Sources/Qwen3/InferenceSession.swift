// InferenceSession.swift — the Qwen3 forward pass over this rank's rows, the same for every method,
// attention kind, shard and split, and the buffers it runs in, allocated once from one list.
import CKernels
import Foundation

/// Floats of every buffer a session allocates (the KV cache in bytes, as its elements may be bf16),
/// worked out before any is: the memory check, the allocations and the reported size all read this
/// one list.
struct SessionMemory {
    // Activations, each (rows this rank computes, width).
    var x: Int            // residual stream (hidden)
    var xn: Int           // normed input of a sublayer (hidden)
    var qkv: Int          // fused projection, per row [q (local heads x head_dim) | k | v (slots x head_dim)]
    var q: Int            // queries, normed and rotated (local heads x head_dim)
    var k: Int            // new keys, normed and rotated (slots x head_dim)
    var attended: Int     // attention output (local heads x head_dim)
    var projected: Int    // o_proj and down_proj partial sums (hidden)
    var gateUp: Int       // fused projection, per row [gate | up] (2 x local intermediate)
    var activated: Int    // silu(gate) * up (local intermediate)
    var localLogits: Int  // (logit rows, local vocabulary)
    var gathered: Int     // every rank's logits in rank order; 0 when localLogits serves
    var logits: Int       // (logit rows, vocabulary); 0 when localLogits serves
    var kvSend: Int       // sequence parallel: this rank's new K rows, then its V rows, in the cache's
                          // precision (a float holds two bf16)
    var kvAll: Int        // sequence parallel: every rank's kvSend, in rank order
    var scratch: Int      // attention scratch
    var rotary: Int       // cos and sin tables, (capacity, head_dim / 2) each
    var positions: Int    // position of each row (Int32, the size of a float)
    var cache: ByteCount  // keys and values of every layer, f32 or bf16

    /// A size in bytes among the float counts.
    struct ByteCount { var bytes: Int }

    /// Bytes of every buffer above.
    var bytes: Int {
        let floats = Mirror(reflecting: self).children.reduce(0) { $0 + ($1.value as? Int ?? 0) }
        return floats * MemoryLayout<Float>.size + cache.bytes
    }
}

/// Everything one run needs besides the weights: activations, KV cache, rotary tables, scratch,
/// all allocated once, sized from the request; `forward` never allocates a buffer.
///
/// Under sequence parallelism a step of several tokens is split zig-zag over the ranks
/// (`ParallelPlan.tokenSplit`): each rank computes its tokens through every layer with all the
/// weights, and after each layer's K/V projection the ranks all-gather their new keys and values,
/// so every rank's cache holds every position and each query sees every earlier key. Single-token
/// steps (decode) are not split: every rank runs them whole on its full cache.
public final class InferenceSession {
    public let model: Qwen3Model
    public let attention: AttentionKind
    /// How the KV cache holds keys and values.
    public let kvPrecision: KVPrecision
    public let capacity: Int
    public let maxTokens: Int
    /// Tokens already in the KV cache.
    public private(set) var position = 0
    /// When set, `forward` adds the time, FLOPs and bytes of each operation class to it.
    public var profile: OpProfile?
    /// Calls of `forward` so far: what a benchmark really ran, warm-up included.
    public private(set) var forwardCalls = 0
    /// What the session sized before allocating; `byteCount` is what it then holds.
    let memory: SessionMemory

    private let cache: KVCache
    private let rotary: RotaryTable
    private let localHeads: Int
    private let scratchSlots: Int
    private let x, xn, qkv, q, k, attended, projected, gateUp, activated: FloatBuffer
    private let localLogits, gathered, logits, kvSend, kvAll, scratch: FloatBuffer
    private let positions: AlignedBuffer<Int32>

    /// - Parameters:
    ///   - capacity: most tokens the KV cache will hold (prompt plus generated).
    ///   - maxTokens: most tokens one `forward` call processes.
    ///   - allLogits: whether `forward` may be asked for logits of every token, not only the last.
    ///   - kvPrecision: the KV cache's element type (bf16: keys and values rounded when stored).
    public init(model: Qwen3Model, attention: AttentionKind, capacity: Int, maxTokens: Int,
                allLogits: Bool, kvPrecision: KVPrecision = .f32) throws {
        let c = model.config, plan = model.plan, shard = plan.shard
        try model.kernels.isa.check(weights: model.kernels.precision, kv: kvPrecision)
        guard maxTokens >= 1, capacity >= maxTokens else {
            throw RequestError("invalid session size: \(maxTokens) tokens per step, cache of \(capacity)")
        }
        if capacity > c.maxPositionEmbeddings {
            throw RequestError("\(capacity) tokens exceed the model's max_position_embeddings (\(c.maxPositionEmbeddings))")
        }
        if case .streaming(let qBlock, let kvBlock) = attention, qBlock < 1 || kvBlock < 1 {
            throw RequestError("attention block sizes must be at least 1 (q-block \(qBlock), kv-block \(kvBlock))")
        }
        self.model = model
        self.attention = attention
        self.kvPrecision = kvPrecision
        self.capacity = capacity
        self.maxTokens = maxTokens
        localHeads = shard.queryHeads.count
        let slots = shard.kvHeads.count, d = c.headDim, h = c.hiddenSize, inter = shard.intermediate.count
        let splits = plan.splitsTokens(maxTokens)
        // Rows this rank computes in one step, and the longest run of consecutive ones.
        let rows = plan.rows(forSteps: maxTokens)
        let run = splits ? max(1, (maxTokens + 2 * plan.size - 1) / (2 * plan.size)) : maxTokens
        scratchSlots = Int(ck_get_max_threads())
        let logitRows = allLogits ? maxTokens : 1
        let gatheredRows = splits || shard.size > 1 ? logitRows : 0
        memory = SessionMemory(
            x: rows * h, xn: rows * h, qkv: rows * (localHeads + 2 * slots) * d, q: rows * localHeads * d,
            k: rows * slots * d, attended: rows * localHeads * d, projected: rows * h,
            gateUp: rows * 2 * inter, activated: rows * inter,
            localLogits: (allLogits ? rows : 1) * shard.vocab.count,
            gathered: gatheredRows * c.vocabSize, logits: gatheredRows * c.vocabSize,
            kvSend: splits ? Self.floats(holding: 2 * rows * slots * d, of: kvPrecision) : 0,
            kvAll: splits ? Self.floats(holding: 2 * maxTokens * slots * d, of: kvPrecision) : 0,
            scratch: AttentionKernels.scratchFloats(attention, tokens: run, pos0: capacity - run, headDim: d,
                                                    group: localHeads / slots, slots: scratchSlots),
            rotary: 2 * capacity * (d / 2), positions: rows,
            cache: .init(bytes: KVCache.bytes(layers: c.numLayers, slots: slots, capacity: capacity, headDim: d,
                                              precision: kvPrecision)))
        let available = Qwen3Model.physicalMemory()
        if memory.bytes > available / 10 * 9 {
            throw RequestError("this request needs \(memory.bytes) bytes of activations, KV cache and attention scratch (\(attention.name) attention), more than this machine's \(available) bytes of memory")
        }
        let m = memory
        cache = try KVCache(layers: c.numLayers, slots: slots, capacity: capacity, headDim: d, precision: kvPrecision)
        rotary = try RotaryTable(positions: capacity, headDim: d, theta: c.ropeTheta)
        (x, xn, qkv, q, k) = (try FloatBuffer(count: m.x), try FloatBuffer(count: m.xn), try FloatBuffer(count: m.qkv),
                              try FloatBuffer(count: m.q), try FloatBuffer(count: m.k))
        (attended, projected) = (try FloatBuffer(count: m.attended), try FloatBuffer(count: m.projected))
        (gateUp, activated) = (try FloatBuffer(count: m.gateUp), try FloatBuffer(count: m.activated))
        localLogits = try FloatBuffer(count: m.localLogits)
        gathered = m.gathered > 0 ? try FloatBuffer(count: m.gathered) : localLogits
        logits = m.logits > 0 ? try FloatBuffer(count: m.logits) : localLogits
        (kvSend, kvAll) = (try FloatBuffer(count: m.kvSend), try FloatBuffer(count: m.kvAll))
        scratch = try FloatBuffer(count: m.scratch)
        positions = try AlignedBuffer<Int32>(count: m.positions)
    }

    /// Floats that hold `elements` cache elements of `precision`.
    private static func floats(holding elements: Int, of precision: KVPrecision) -> Int {
        (elements * precision.elementBytes + 3) / 4
    }

    /// Bytes of activations, KV cache and scratch this session holds.
    public var byteCount: Int {
        let logitBuffers = logits === localLogits ? [logits] : [localLogits, gathered, logits]
        let buffers = [x, xn, qkv, q, k, attended, projected, gateUp, activated, kvSend, kvAll, scratch,
                       rotary.cos, rotary.sin] + logitBuffers
        return buffers.reduce(cache.byteCount + positions.byteCount) { $0 + $1.byteCount }
    }

    /// Empties the KV cache.
    public func reset() { position = 0 }

    /// The tokens of one step this rank computes.
    private struct StepRows {
        /// The step's zig-zag split over the ranks, or nil when every rank runs it whole.
        let split: SequenceSplit?
        /// This rank's tokens of the step, ascending.
        let ranges: [Range<Int>]
        let count: Int
        /// Floats each rank contributes to a layer's K/V exchange (split steps only).
        let kvCounts: [Int]
    }

    /// Runs `tokens` through the model at positions position..<position+tokens.count, appending their
    /// keys and values to the cache. Returns the logits (rows, vocab) of the last token, or of every
    /// token when `allLogits`; valid until the next call.
    @discardableResult
    public func forward(_ tokens: [Int32], allLogits: Bool = false) throws -> UnsafeBufferPointer<Float> {
        try check(tokens, allLogits: allLogits)
        let n = tokens.count, kvWidth = 2 * cache.slots * model.config.headDim
        let split = model.plan.tokenSplit(n)
        let ranges = split?.ranges(of: model.communicator.rank) ?? [0..<n]
        let rows = StepRows(split: split, ranges: ranges, count: ranges.reduce(0) { $0 + $1.count },
                            kvCounts: split?.counts.map { $0 * kvWidth } ?? [])

        embed(tokens, rows)
        for (l, layer) in model.weights.layers.enumerated() {
            attentionBlock(layer, index: l, rows)  // x += o_proj(attention(rmsnorm(x)))
            if rows.count > 0 { mlpBlock(layer, rows.count) }  // x += down(silu(gate(xn)) * up(xn))
        }
        let logitRows = outputLogits(tokens: n, rows, allLogits: allLogits)

        position += n
        forwardCalls += 1
        return UnsafeBufferPointer(start: logits.pointer, count: logitRows * model.config.vocabSize)
    }

    private func check(_ tokens: [Int32], allLogits: Bool) throws {
        let n = tokens.count, vocab = model.config.vocabSize
        guard n >= 1, n <= maxTokens else {
            throw RequestError("\(n) tokens in one step; this session takes 1 to \(maxTokens)")
        }
        guard position + n <= capacity else {
            throw RequestError("the KV cache holds \(capacity) tokens; \(position + n) requested")
        }
        if allLogits && logits.count < n * vocab {
            throw RequestError("this session was not created for all-token logits")
        }
        for token in tokens where token < 0 || Int(token) >= vocab {
            throw RequestError("token id \(token) is outside the vocabulary (0..<\(vocab))")
        }
    }

    /// x = the embedding rows of this rank's tokens, with their positions.
    private func embed(_ tokens: [Int32], _ rows: StepRows) {
        let h = model.config.hiddenSize, table = model.weights.embedding
        timed(.embedding, .copy(floats: rows.count * h)) {
            var row = 0
            for range in rows.ranges {
                for t in range {
                    table.copyRow(Int(tokens[t]), width: h, into: x.pointer + row * h)
                    positions.pointer[row] = Int32(position + t)
                    row += 1
                }
            }
        }
    }

    /// x += o_proj(attention(q, k, v)) over this rank's rows, where [q | k | v] is the fused
    /// column-parallel projection of rmsnorm(x), and q and k are normed per head and rotated. The new
    /// keys and values join the cache first: every rank's cache, when the step is split by tokens.
    private func attentionBlock(_ layer: LayerWeights, index l: Int, _ rows: StepRows) {
        let c = model.config, kernels = model.kernels, m = rows.count
        let (h, d, eps, heads, slots) = (c.hiddenSize, c.headDim, c.rmsNormEps, localHeads, cache.slots)
        let width = layer.qkvProj.outFeatures, values = qkv.pointer + (heads + slots) * d
        if m > 0 {
            timed(.norms, .rmsnorm(rows: m, width: h)) {
                kernels.rmsnorm(x.pointer, layer.inputNorm.pointer, xn.pointer, m, h, eps)
            }
            timed(.qkv, .gemm(layer.qkvProj, rows: m)) { layer.qkvProj.apply(kernels, xn.pointer, qkv.pointer, rows: m) }
            timed(.norms, .rmsnorm(rows: m * heads, width: d) + .rmsnorm(rows: m * slots, width: d)) {
                kernels.rmsnormHeads(qkv.pointer, width, layer.qNorm.pointer, q.pointer, m, heads, d, eps)
                kernels.rmsnormHeads(qkv.pointer + heads * d, width, layer.kNorm.pointer, k.pointer, m, slots, d, eps)
            }
            timed(.rope, .rope(tokens: m, heads: heads + slots, headDim: d)) {
                kernels.rope(q.pointer, m, heads, d, positions.pointer, rotary.cos.pointer, rotary.sin.pointer)
                kernels.rope(k.pointer, m, slots, d, positions.pointer, rotary.cos.pointer, rotary.sin.pointer)
            }
        }
        if let split = rows.split {
            timed(.kvExchange, .collective(bytes: 2 * m * slots * d * kvPrecision.elementBytes, ranks: split.ranks)) {
                exchangeKeysAndValues(layer: l, rows, values: values, valueStride: width)
            }
        } else {
            timed(.kvCache, .cacheStore(values: 2 * m * slots * d, elementBytes: kvPrecision.elementBytes)) {
                cache.store(layer: l, keys: k.pointer, keyStride: slots * d, values: values, valueStride: width,
                            tokens: m, start: position)
            }
        }
        guard m > 0 else { return }
        let runs = rows.ranges.map { (pos0: position + $0.lowerBound, count: $0.count) }
        timed(.attention, .attention(runs: runs, heads: heads, kvHeads: slots, headDim: d,
                                     kvElementBytes: kvPrecision.elementBytes)) {
            var row = 0
            for run in runs {
                attend(layer: l, row: row, tokens: run.count, pos0: run.pos0)
                row += run.count
            }
        }
        timed(.oProj, .gemm(layer.oProj, rows: m)) { layer.oProj.apply(kernels, attended.pointer, projected.pointer, rows: m) }
        addRowParallel(rows: m, bias: layer.oBias)
    }

    /// x += down(silu(gate(xn)) * up(xn)), xn = rmsnorm(x): gate and up one column-parallel GEMM,
    /// down row-parallel.
    private func mlpBlock(_ layer: LayerWeights, _ m: Int) {
        let c = model.config, kernels = model.kernels, h = c.hiddenSize
        let inter = layer.downProj.inFeatures
        timed(.norms, .rmsnorm(rows: m, width: h)) {
            kernels.rmsnorm(x.pointer, layer.postAttentionNorm.pointer, xn.pointer, m, h, c.rmsNormEps)
        }
        timed(.gateUp, .gemm(layer.gateUpProj, rows: m)) { layer.gateUpProj.apply(kernels, xn.pointer, gateUp.pointer, rows: m) }
        timed(.silu, .swiglu(rows: m, width: inter)) { kernels.swiglu(gateUp.pointer, activated.pointer, m, inter) }
        timed(.down, .gemm(layer.downProj, rows: m)) { layer.downProj.apply(kernels, activated.pointer, projected.pointer, rows: m) }
        addRowParallel(rows: m, bias: nil)
    }

    /// x += the sum over ranks of a row-parallel layer's partial outputs (one all-reduce), plus its
    /// bias, added once after the sum.
    private func addRowParallel(rows m: Int, bias: FloatBuffer?) {
        let h = model.config.hiddenSize, comm = model.tensorParallel
        timed(.allReduce, .collective(floats: m * h, ranks: comm.size)) { comm.allReduceSum(projected.pointer, count: m * h) }
        timed(.residual, .residual(rows: m, width: h, bias: bias != nil)) {
            if let bias { ck_add_bias_f32(projected.pointer, bias.pointer, m, h) }
            model.kernels.add(x.pointer, projected.pointer, m * h)
        }
    }

    /// The logits of the step's last token (or of every token) into `logits`: the final RMSNorm and
    /// the column-parallel lm_head on the rows that hold them, then the shards gathered. Returns the rows.
    private func outputLogits(tokens n: Int, _ rows: StepRows, allLogits: Bool) -> Int {
        let vocab = model.config.vocabSize, comm = model.communicator
        if let split = rows.split {
            let (owner, row) = split.owner(of: n - 1)
            let first = allLogits ? 0 : row, count = allLogits ? rows.count : (owner == comm.rank ? 1 : 0)
            if count > 0 { normAndProject(rows: first, count: count) }
            timed(.gather, .collective(floats: count * vocab, ranks: comm.size)) {
                gatherSequenceLogits(split: split, allLogits: allLogits)
            }
        } else {
            let count = allLogits ? n : 1, shard = model.plan.shard
            normAndProject(rows: allLogits ? 0 : n - 1, count: count)
            timed(.gather, .collective(floats: count * shard.vocab.count, ranks: shard.size)) {
                gatherVocabularyShards(rows: count)
            }
        }
        return allLogits ? n : 1
    }

    /// localLogits = lm_head(rmsnorm(x)) for `count` of this rank's rows from `first`.
    private func normAndProject(rows first: Int, count: Int) {
        let c = model.config, h = c.hiddenSize, weights = model.weights
        timed(.norms, .rmsnorm(rows: count, width: h)) {
            model.kernels.rmsnorm(x.pointer + first * h, weights.finalNorm.pointer, xn.pointer, count, h, c.rmsNormEps)
        }
        timed(.lmHead, .gemm(weights.lmHead, rows: count)) {
            weights.lmHead.apply(model.kernels, xn.pointer, localLogits.pointer, rows: count)
        }
    }

    /// Runs one operation of the forward pass, timed when profiling; its cost (CostModel.swift) is
    /// only worked out then.
    @inline(__always)
    private func timed(_ op: ProfiledOp, _ cost: @autoclosure () -> OpCost, _ body: () -> Void) {
        if let profile { profile.measure(op, cost: cost(), body) } else { body() }
    }

    /// Sequence parallel: every rank's new keys and values into every rank's cache, at their
    /// positions. This rank sends its rows' keys, then their values (read from the fused projection),
    /// in the cache's precision: a bf16 cache's rows are rounded once, here, and move at half the bytes.
    private func exchangeKeysAndValues(layer l: Int, _ rows: StepRows, values: UnsafePointer<Float>, valueStride: Int) {
        guard let split = rows.split else { return }
        let comm = model.communicator, width = cache.slots * model.config.headDim, m = rows.count
        let size = kvPrecision.elementBytes, send = UnsafeMutableRawPointer(kvSend.pointer)
        for row in 0..<m {
            let (key, value) = (k.pointer + row * width, values + row * valueStride)
            let (keyOut, valueOut) = (send + row * width * size, send + (m + row) * width * size)
            switch kvPrecision {
            case .f32:
                keyOut.assumingMemoryBound(to: Float.self).update(from: key, count: width)
                valueOut.assumingMemoryBound(to: Float.self).update(from: value, count: width)
            case .bf16:
                ck_convert_f32_to_bf16(key, keyOut.assumingMemoryBound(to: UInt16.self), width)
                ck_convert_f32_to_bf16(value, valueOut.assumingMemoryBound(to: UInt16.self), width)
            }
        }
        comm.allGather(bytes: UnsafeRawPointer(send), into: UnsafeMutableRawPointer(kvAll.pointer),
                       counts: rows.kvCounts.map { $0 * size })
        var offset = 0
        for rank in 0..<comm.size {
            let block = UnsafeRawPointer(kvAll.pointer) + offset * size, count = split.count(of: rank)
            var row = 0
            for range in split.ranges(of: rank) {
                cache.store(layer: l, cachedKeys: block + row * width * size,
                            cachedValues: block + (count + row) * width * size,
                            tokens: range.count, start: position + range.lowerBound)
                row += range.count
            }
            offset += rows.kvCounts[rank]
        }
    }

    /// Sequence parallel: the last token's logits from the rank that computed it, or every rank's
    /// rows put back in token order.
    private func gatherSequenceLogits(split: SequenceSplit, allLogits: Bool) {
        let comm = model.communicator, vocab = model.config.vocabSize
        if !allLogits {
            let owner = split.owner(of: split.tokens - 1).rank
            let counts = (0..<comm.size).map { $0 == owner ? vocab : 0 }
            comm.allGather(localLogits.pointer, into: logits.pointer, counts: counts)
            return
        }
        let counts = (0..<comm.size).map { split.count(of: $0) * vocab }
        comm.allGather(localLogits.pointer, into: gathered.pointer, counts: counts)
        var offset = 0
        for rank in 0..<comm.size {
            for range in split.ranges(of: rank) {
                (logits.pointer + range.lowerBound * vocab).update(from: gathered.pointer + offset, count: range.count * vocab)
                offset += range.count * vocab
            }
        }
    }

    /// Head parallel: lm_head is column-parallel over the vocabulary; every rank's columns are
    /// gathered into whole rows.
    private func gatherVocabularyShards(rows: Int) {
        let vocab = model.config.vocabSize, shards = model.plan.vocabularyShards
        if shards.count == 1 {
            // Sequence parallelism keeps separate buffers for its split steps; a whole step's rows are local.
            if logits !== localLogits { logits.pointer.update(from: localLogits.pointer, count: rows * vocab) }
            return
        }
        model.tensorParallel.allGather(localLogits.pointer, into: gathered.pointer, counts: shards.map { rows * $0.count })
        var offset = 0
        for shard in shards {
            for row in 0..<rows {
                (logits.pointer + row * vocab + shard.lowerBound)
                    .update(from: gathered.pointer + offset + row * shard.count, count: shard.count)
            }
            offset += rows * shard.count
        }
    }

    /// Attention of `tokens` consecutive query rows from `row`, at positions pos0..<pos0+tokens.
    private func attend(layer l: Int, row: Int, tokens n: Int, pos0: Int) {
        let d = model.config.headDim, width = localHeads * d
        AttentionKernels(kernels: model.kernels).run(
            attention, q: q.pointer + row * width, keys: cache.keys[l], values: cache.values[l], kv: kvPrecision,
            out: attended.pointer + row * width, tokens: n, pos0: pos0, heads: localHeads, kvHeads: cache.slots,
            headDim: d, capacity: capacity, scale: 1 / Float(d).squareRoot(), scratch: scratch.pointer,
            slots: scratchSlots)
    }
}
