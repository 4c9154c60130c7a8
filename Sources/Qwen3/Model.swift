// Model.swift — the Qwen3 forward pass: one function for every method, attention kind and shard.
import CKernels
import Foundation

/// A loaded Qwen3 model: configuration, this rank's weights, its kernels and its communicator.
public final class Qwen3Model {
    public let config: Qwen3Config
    public let plan: ShardPlan
    public let isa: KernelISA
    public let precision: WeightPrecision
    let kernels: Kernels
    let weights: ModelWeights
    /// Every process of the job (rank order, failure agreement, sequence-parallel K/V exchange).
    public let communicator: Communicator
    /// The processes the weights are split over: the job under head parallelism, this process alone
    /// under sequence parallelism (every rank holds every weight).
    let tensorParallel: Communicator
    public let parallelism: Parallelism

    /// Loads `path` (a .safetensors file with config.json beside it, a shard index, or a folder).
    public init(path: String, isa: KernelISA, precision: WeightPrecision = .f32,
                communicator: Communicator = SingleProcessCommunicator(), parallelism: Parallelism = .heads) throws {
        let folder = Self.folder(of: path)
        config = try Qwen3Config.load(from: folder.appendingPathComponent("config.json"))
        self.parallelism = parallelism
        tensorParallel = parallelism == .heads ? communicator : SingleProcessCommunicator()
        plan = try ShardPlan(config: config, rank: tensorParallel.rank, size: tensorParallel.size)
        kernels = try Kernels(isa, precision: precision)
        self.isa = isa
        self.precision = precision
        self.communicator = communicator
        // Refuse up front what cannot fit: this rank's share of the weights, in memory precision,
        // plus the replicated float32 embedding.
        let bytesPerWeight: Double = precision == .f32 ? 4 : 2
        let needed = config.parameterEstimate / Double(plan.size) * bytesPerWeight
            + Double(config.vocabSize) * Double(config.hiddenSize) * 4
        let available = InferenceSession.physicalMemory()
        if needed > Double(available) * 0.9 {
            let bytes = needed < 9e18 ? String(Int(needed)) : String(format: "%.3g", needed)
            throw RequestError("the model needs about \(bytes) bytes of weights in \(precision.rawValue) on each of \(communicator.size) process(es) (\(parallelism.rawValue) parallelism), more than this machine's \(available) bytes of memory")
        }
        let checkpoint = try SafetensorsCheckpoint(path: path)
        weights = try WeightLoader(checkpoint: checkpoint, config: config, plan: plan, kernels: kernels,
                                   path: path).load()
    }

    /// The folder that holds config.json for a model path.
    static func folder(of path: String) -> URL {
        var isDirectory: ObjCBool = false
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return url
        }
        return url.deletingLastPathComponent()
    }

    /// Bytes of weights this rank holds in memory.
    public var weightBytes: Int { weights.byteCount }

    /// Element type the checkpoint stored (weights are computed in float32 either way).
    public var checkpointDType: TensorDType { weights.checkpointDType }
}

/// Everything one run needs besides the weights: activations, KV cache, rotary tables, scratch,
/// all allocated here once, sized from the request; `forward` never allocates.
///
/// Under sequence parallelism a step of several tokens is split zig-zag over the ranks
/// (`SequenceSplit`): each rank computes its tokens through every layer with all the weights, and
/// after each layer's K/V projection the ranks all-gather their new keys and values, so every
/// rank's cache holds every position and each query sees every earlier key. Single-token steps
/// (decode) are not split: every rank runs them whole on its full cache.
public final class InferenceSession {
    public let model: Qwen3Model
    public let attention: AttentionKind
    public let capacity: Int
    public let maxTokens: Int
    /// Tokens already in the KV cache.
    public private(set) var position = 0
    /// When set, `forward` adds the time of each operation class to it.
    public var profile: OpProfile?
    /// Calls of `forward` so far: what a benchmark really ran, warm-up included.
    public private(set) var forwardCalls = 0

    private let cache: KVCache
    private let rotary: RotaryTable
    private let localHeads: Int
    private let scratchSlots: Int
    private let splitsSequence: Bool
    // Activations, each (rows this rank computes, width).
    private let x: FloatBuffer          // residual stream (hidden)
    private let xn: FloatBuffer         // normed input of a sublayer (hidden)
    private let q: FloatBuffer          // queries (local heads * head_dim)
    private let k: FloatBuffer          // new keys (local kv slots * head_dim)
    private let v: FloatBuffer          // new values (local kv slots * head_dim)
    private let attended: FloatBuffer   // attention output (local heads * head_dim)
    private let projected: FloatBuffer  // o_proj / down_proj partial sums (hidden)
    private let gate: FloatBuffer       // (local intermediate)
    private let up: FloatBuffer         // (local intermediate)
    private let localLogits: FloatBuffer  // (logit rows, local vocab)
    private let gathered: FloatBuffer     // every rank's logits, in rank order
    private let logits: FloatBuffer       // (logit rows, vocab)
    private let kvSend: FloatBuffer       // sequence parallel: this rank's new K rows, then its V rows
    private let kvAll: FloatBuffer        // sequence parallel: every rank's kvSend, in rank order
    private let scratch: FloatBuffer
    private let positions: UnsafeMutablePointer<Int32>

    /// - Parameters:
    ///   - capacity: most tokens the KV cache will hold (prompt plus generated).
    ///   - maxTokens: most tokens one `forward` call processes.
    ///   - allLogits: whether `forward` may be asked for logits of every token, not only the last.
    public init(model: Qwen3Model, attention: AttentionKind, capacity: Int, maxTokens: Int,
                allLogits: Bool) throws {
        let c = model.config, plan = model.plan, ranks = model.communicator.size
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
        self.capacity = capacity
        self.maxTokens = maxTokens
        splitsSequence = model.parallelism == .sequence && ranks > 1
        localHeads = plan.queryHeads.count
        let slots = plan.kvHeads.count, d = c.headDim
        // Rows this rank computes in one step, and the longest run of consecutive ones.
        let rows = splitsSequence ? max(1, SequenceSplit.largestShare(tokens: maxTokens, ranks: ranks)) : maxTokens
        let run = splitsSequence ? max(1, (maxTokens + 2 * ranks - 1) / (2 * ranks)) : maxTokens
        scratchSlots = Int(ck_get_max_threads())
        let scratchFloats = AttentionKernels.scratchFloats(attention, tokens: run, pos0: capacity - run, headDim: d,
                                                           group: localHeads / slots, slots: scratchSlots)
        let logitRows = allLogits ? maxTokens : 1
        let localLogitRows = allLogits ? rows : 1
        let gatheredRows = splitsSequence || plan.size > 1 ? logitRows : 0
        let kvFloats = splitsSequence ? 2 * slots * d * (rows + maxTokens) : 0
        let needed = MemoryLayout<Float>.stride * (
            scratchFloats + rows * (3 * c.hiddenSize + 2 * localHeads * d + 2 * slots * d + 2 * plan.intermediate.count)
            + localLogitRows * plan.vocab.count + 2 * gatheredRows * c.vocabSize + kvFloats
            + 2 * c.numLayers * slots * capacity * d)
        let available = Self.physicalMemory()
        if needed > available / 10 * 9 {
            throw RequestError("this request needs \(needed) bytes of activations, KV cache and attention scratch (\(attention.name) attention), more than this machine's \(available) bytes of memory")
        }
        cache = KVCache(layers: c.numLayers, slots: slots, capacity: capacity, headDim: d)
        rotary = RotaryTable(positions: capacity, headDim: d, theta: c.ropeTheta)
        x = FloatBuffer(count: rows * c.hiddenSize)
        xn = FloatBuffer(count: rows * c.hiddenSize)
        q = FloatBuffer(count: rows * localHeads * d)
        k = FloatBuffer(count: rows * slots * d)
        v = FloatBuffer(count: rows * slots * d)
        attended = FloatBuffer(count: rows * localHeads * d)
        projected = FloatBuffer(count: rows * c.hiddenSize)
        gate = FloatBuffer(count: rows * plan.intermediate.count)
        up = FloatBuffer(count: rows * plan.intermediate.count)
        localLogits = FloatBuffer(count: localLogitRows * plan.vocab.count)
        gathered = gatheredRows > 0 ? FloatBuffer(count: gatheredRows * c.vocabSize) : localLogits
        logits = gatheredRows > 0 ? FloatBuffer(count: gatheredRows * c.vocabSize) : localLogits
        kvSend = FloatBuffer(count: splitsSequence ? 2 * rows * slots * d : 0)
        kvAll = FloatBuffer(count: splitsSequence ? 2 * maxTokens * slots * d : 0)
        scratch = FloatBuffer(count: scratchFloats)
        positions = .allocate(capacity: rows)
    }

    deinit { positions.deallocate() }

    /// Bytes of activations, KV cache and scratch this session holds.
    public var byteCount: Int {
        let logitBuffers = logits === localLogits ? [logits] : [localLogits, gathered, logits]
        return ([x, xn, q, k, v, attended, projected, gate, up, kvSend, kvAll, scratch, rotary.cos, rotary.sin] + logitBuffers)
            .reduce(cache.byteCount) { $0 + $1.byteCount }
    }

    /// Empties the KV cache.
    public func reset() { position = 0 }

    /// Runs `tokens` through the model at positions position..<position+tokens.count, appending their
    /// keys and values to the cache. Returns the logits (rows, vocab) of the last token, or of every
    /// token when `allLogits`; valid until the next call.
    @discardableResult
    public func forward(_ tokens: [Int32], allLogits: Bool = false) throws -> UnsafeBufferPointer<Float> {
        let c = model.config, kernels = model.kernels, weights = model.weights, comm = model.tensorParallel
        let n = tokens.count, h = c.hiddenSize, d = c.headDim, eps = c.rmsNormEps
        let slots = cache.slots, inter = model.plan.intermediate.count
        guard n >= 1, n <= maxTokens else {
            throw RequestError("\(n) tokens in one step; this session takes 1 to \(maxTokens)")
        }
        guard position + n <= capacity else {
            throw RequestError("the KV cache holds \(capacity) tokens; \(position + n) requested")
        }
        if allLogits && logits.count < n * c.vocabSize {
            throw RequestError("this session was not created for all-token logits")
        }
        for token in tokens where token < 0 || Int(token) >= c.vocabSize {
            throw RequestError("token id \(token) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        // The tokens this rank computes: all of them, or its zig-zag share of a split step.
        let split = splitsSequence && n > 1 ? SequenceSplit(tokens: n, ranks: model.communicator.size) : nil
        let mine = split?.ranges(of: model.communicator.rank) ?? [0..<n]
        let m = mine.reduce(0) { $0 + $1.count }
        let kvCounts = split?.counts.map { 2 * $0 * slots * d } ?? []
        let scale = 1 / Float(d).squareRoot()
        let localHeads = self.localHeads
        let (qWidth, kvWidth) = (Double(localHeads * d), Double(slots * d))
        let rowsD = Double(m)

        step(.embedding, bytes: 8 * Double(m * h)) {
            var row = 0
            for range in mine {
                for t in range {
                    (x.pointer + row * h).update(from: weights.embedding.pointer + Int(tokens[t]) * h, count: h)
                    positions[row] = Int32(position + t)
                    row += 1
                }
            }
        }
        for (l, layer) in weights.layers.enumerated() {
            // Attention block: pre-norm, q/k/v, per-head q/k RMSNorm, RoPE, cache, attention.
            if m > 0 {
                step(.norms, bytes: 4 * Double(2 * m * h + h)) {
                    kernels.rmsnorm(x.pointer, layer.inputNorm.pointer, xn.pointer, m, h, eps)
                }
                step(.qkv, flops: 2 * rowsD * Double(h) * (qWidth + 2 * kvWidth),
                     bytes: layer.qProj.bytesMoved(rows: m) + layer.kProj.bytesMoved(rows: m) + layer.vProj.bytesMoved(rows: m)) {
                    layer.qProj.apply(kernels, xn.pointer, q.pointer, rows: m)
                    layer.kProj.apply(kernels, xn.pointer, k.pointer, rows: m)
                    layer.vProj.apply(kernels, xn.pointer, v.pointer, rows: m)
                }
                step(.norms, bytes: 4 * Double(2 * m * (localHeads + slots) * d + 2 * d)) {
                    kernels.rmsnorm(q.pointer, layer.qNorm.pointer, q.pointer, m * localHeads, d, eps)
                    kernels.rmsnorm(k.pointer, layer.kNorm.pointer, k.pointer, m * slots, d, eps)
                }
                step(.rope, bytes: 4 * Double(2 * m * (localHeads + slots) * d + m * d)) {
                    kernels.rope(q.pointer, m, localHeads, d, positions, rotary.cos.pointer, rotary.sin.pointer)
                    kernels.rope(k.pointer, m, slots, d, positions, rotary.cos.pointer, rotary.sin.pointer)
                }
            }
            if let split {
                step(.kvExchange, bytes: 8 * Double(m * slots * d)) {
                    exchangeKeysAndValues(layer: l, split: split, counts: kvCounts)
                }
            } else {
                step(.kvCache, bytes: 16 * Double(n * slots * d)) {
                    cache.store(layer: l, keys: k.pointer, values: v.pointer, tokens: n, start: position)
                }
            }
            guard m > 0 else { continue }
            // Causal QK^T and PV: the query at position p attends to p + 1 keys.
            var pairs = 0.0
            for range in mine {
                let first = Double(position + range.lowerBound), count = Double(range.count)
                pairs += count * first + count * (count + 1) / 2
            }
            // Bytes: the keys and values visible to each run's last query, read once, plus q and out.
            step(.attention, flops: 4 * pairs * qWidth,
                 bytes: 8 * (Double(mine.reduce(0) { $0 + position + $1.upperBound }) * kvWidth + rowsD * qWidth)) {
                var row = 0
                for range in mine {
                    attend(layer: l, row: row, tokens: range.count, pos0: position + range.lowerBound, scale: scale)
                    row += range.count
                }
            }
            // Row-parallel o_proj: partial sums over this rank's heads, then one all-reduce.
            step(.oProj, flops: 2 * rowsD * qWidth * Double(h), bytes: layer.oProj.bytesMoved(rows: m)) {
                layer.oProj.apply(kernels, attended.pointer, projected.pointer, rows: m)
            }
            step(.allReduce, bytes: comm.size > 1 ? 4 * Double(m * h) : 0) { comm.allReduceSum(projected.pointer, count: m * h) }
            step(.residual, bytes: 4 * Double(layer.oBias == nil ? 3 * m * h : 5 * m * h + h)) {
                if let bias = layer.oBias { ck_add_bias_f32(projected.pointer, bias.pointer, m, h) }
                kernels.add(x.pointer, projected.pointer, m * h)
            }

            // MLP block: x += down(silu(gate(xn)) * up(xn)), down row-parallel.
            step(.norms, bytes: 4 * Double(2 * m * h + h)) {
                kernels.rmsnorm(x.pointer, layer.postAttentionNorm.pointer, xn.pointer, m, h, eps)
            }
            step(.gateUp, flops: 4 * rowsD * Double(h * inter),
                 bytes: layer.gateProj.bytesMoved(rows: m) + layer.upProj.bytesMoved(rows: m)) {
                layer.gateProj.apply(kernels, xn.pointer, gate.pointer, rows: m)
                layer.upProj.apply(kernels, xn.pointer, up.pointer, rows: m)
            }
            step(.silu, bytes: 12 * Double(m * inter)) { kernels.siluMul(gate.pointer, up.pointer, gate.pointer, m * inter) }
            step(.down, flops: 2 * rowsD * Double(h * inter), bytes: layer.downProj.bytesMoved(rows: m)) {
                layer.downProj.apply(kernels, gate.pointer, projected.pointer, rows: m)
            }
            step(.allReduce, bytes: comm.size > 1 ? 4 * Double(m * h) : 0) { comm.allReduceSum(projected.pointer, count: m * h) }
            step(.residual, bytes: 12 * Double(m * h)) { kernels.add(x.pointer, projected.pointer, m * h) }
        }

        // Final norm and lm_head: for the last token only unless every row is asked for.
        let rows = allLogits ? n : 1
        if let split {
            let (owner, row) = split.owner(of: n - 1)
            let first = allLogits ? 0 : row, count = allLogits ? m : (owner == model.communicator.rank ? 1 : 0)
            if count > 0 { logitsOf(localRows: first, count: count) }
            step(.gather, bytes: 4 * Double(count * c.vocabSize)) { gatherSequenceLogits(split: split, allLogits: allLogits) }
        } else {
            logitsOf(localRows: allLogits ? 0 : n - 1, count: rows)
            step(.gather, bytes: 4 * Double(model.plan.size > 1 ? rows * model.plan.vocab.count : 0)) { gatherVocabularyShards(rows: rows) }
        }
        position += n
        forwardCalls += 1
        return UnsafeBufferPointer(start: logits.pointer, count: rows * c.vocabSize)
    }

    /// Final RMSNorm and lm_head for `count` of this rank's rows from `first`, into localLogits.
    private func logitsOf(localRows first: Int, count: Int) {
        let c = model.config, h = c.hiddenSize, weights = model.weights
        step(.norms, bytes: 4 * Double(2 * count * h + h)) {
            model.kernels.rmsnorm(x.pointer + first * h, weights.finalNorm.pointer, xn.pointer, count, h, c.rmsNormEps)
        }
        step(.lmHead, flops: 2 * Double(count * h * model.plan.vocab.count), bytes: weights.lmHead.bytesMoved(rows: count)) {
            weights.lmHead.apply(model.kernels, xn.pointer, localLogits.pointer, rows: count)
        }
    }

    /// Runs one step of the forward pass, timed when profiling; its FLOPs and bytes (see OpProfile)
    /// are only worked out then.
    @inline(__always)
    private func step(_ op: ProfiledOp, flops: @autoclosure () -> Double = 0, bytes: @autoclosure () -> Double = 0,
                      _ body: () -> Void) {
        if let profile { profile.measure(op, flops: flops(), bytes: bytes(), body) } else { body() }
    }

    /// Sequence parallel: every rank's new keys and values into every rank's cache, at their positions.
    /// `counts`: floats each rank sends (its tokens' K rows, then their V rows).
    private func exchangeKeysAndValues(layer l: Int, split: SequenceSplit, counts kvCounts: [Int]) {
        let comm = model.communicator, width = cache.slots * model.config.headDim
        let m = split.count(of: comm.rank)
        kvSend.pointer.update(from: k.pointer, count: m * width)
        (kvSend.pointer + m * width).update(from: v.pointer, count: m * width)
        comm.allGather(kvSend.pointer, into: kvAll.pointer, counts: kvCounts)
        var offset = 0
        for rank in 0..<comm.size {
            let block = kvAll.pointer + offset, rows = split.count(of: rank)
            var row = 0
            for range in split.ranges(of: rank) {
                cache.store(layer: l, keys: block + row * width, values: block + (rows + row) * width,
                            tokens: range.count, start: position + range.lowerBound)
                row += range.count
            }
            offset += kvCounts[rank]
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

    /// Head parallel: lm_head is column-parallel over the vocabulary; collect every rank's columns into whole rows.
    private func gatherVocabularyShards(rows: Int) {
        let plan = model.plan, vocab = model.config.vocabSize
        if plan.size == 1 {
            // Sequence parallelism keeps separate buffers for its split steps; a whole step's rows are local.
            if logits !== localLogits { logits.pointer.update(from: localLogits.pointer, count: rows * vocab) }
            return
        }
        let shards = (0..<plan.size).map { ShardPlan.split(vocab, parts: plan.size, unit: ShardPlan.intermediateUnit, index: $0) }
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
    private func attend(layer l: Int, row: Int, tokens n: Int, pos0: Int, scale: Float) {
        let width = localHeads * model.config.headDim
        AttentionKernels(kernels: model.kernels).run(
            attention, q: q.pointer + row * width, keys: cache.keys[l].pointer, values: cache.values[l].pointer,
            out: attended.pointer + row * width, tokens: n, pos0: pos0, heads: localHeads, kvHeads: cache.slots,
            headDim: model.config.headDim, capacity: capacity, scale: scale, scratch: scratch.pointer,
            slots: scratchSlots)
    }

    static func physicalMemory() -> Int { Int(ProcessInfo.processInfo.physicalMemory) }
}
