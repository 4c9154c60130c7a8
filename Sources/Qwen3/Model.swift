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
    // Activations, each (maxTokens, width).
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
    private let gathered: FloatBuffer     // every rank's local logits, in rank order
    private let logits: FloatBuffer       // (logit rows, vocab)
    private let scratch: FloatBuffer
    private let positions: UnsafeMutablePointer<Int32>

    /// - Parameters:
    ///   - capacity: most tokens the KV cache will hold (prompt plus generated).
    ///   - maxTokens: most tokens one `forward` call processes.
    ///   - allLogits: whether `forward` may be asked for logits of every token, not only the last.
    public init(model: Qwen3Model, attention: AttentionKind, capacity: Int, maxTokens: Int,
                allLogits: Bool) throws {
        let c = model.config, plan = model.plan
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
        localHeads = plan.queryHeads.count
        let slots = plan.kvHeads.count, d = c.headDim
        scratchSlots = Int(ck_get_max_threads())
        let scratchFloats = AttentionKernels.scratchFloats(attention, tokens: maxTokens, pos0: capacity - maxTokens,
                                                           headDim: d, slots: scratchSlots)
        let logitRows = allLogits ? maxTokens : 1
        let needed = MemoryLayout<Float>.stride * (
            scratchFloats + maxTokens * (3 * c.hiddenSize + 2 * localHeads * d + 2 * slots * d
                                         + 2 * plan.intermediate.count)
            + logitRows * (plan.vocab.count + (plan.size > 1 ? 2 * c.vocabSize : 0))
            + 2 * c.numLayers * slots * capacity * d)
        let available = Self.physicalMemory()
        if needed > available / 10 * 9 {
            throw RequestError("this request needs \(needed) bytes of activations, KV cache and attention scratch (\(attention.name) attention), more than this machine's \(available) bytes of memory")
        }
        cache = KVCache(layers: c.numLayers, slots: slots, capacity: capacity, headDim: d)
        rotary = RotaryTable(positions: capacity, headDim: d, theta: c.ropeTheta)
        x = FloatBuffer(count: maxTokens * c.hiddenSize)
        xn = FloatBuffer(count: maxTokens * c.hiddenSize)
        q = FloatBuffer(count: maxTokens * localHeads * d)
        k = FloatBuffer(count: maxTokens * slots * d)
        v = FloatBuffer(count: maxTokens * slots * d)
        attended = FloatBuffer(count: maxTokens * localHeads * d)
        projected = FloatBuffer(count: maxTokens * c.hiddenSize)
        gate = FloatBuffer(count: maxTokens * plan.intermediate.count)
        up = FloatBuffer(count: maxTokens * plan.intermediate.count)
        localLogits = FloatBuffer(count: logitRows * plan.vocab.count)
        gathered = plan.size > 1 ? FloatBuffer(count: logitRows * c.vocabSize) : localLogits
        logits = plan.size > 1 ? FloatBuffer(count: logitRows * c.vocabSize) : localLogits
        scratch = FloatBuffer(count: scratchFloats)
        positions = .allocate(capacity: maxTokens)
    }

    deinit { positions.deallocate() }

    /// Bytes of activations, KV cache and scratch this session holds.
    public var byteCount: Int {
        let logitBuffers = model.plan.size > 1 ? [localLogits, gathered, logits] : [logits]
        return ([x, xn, q, k, v, attended, projected, gate, up, scratch, rotary.cos, rotary.sin] + logitBuffers)
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
        if allLogits && localLogits.count < n * model.plan.vocab.count {
            throw RequestError("this session was not created for all-token logits")
        }
        for token in tokens where token < 0 || Int(token) >= c.vocabSize {
            throw RequestError("token id \(token) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        let scale = 1 / Float(d).squareRoot()
        let localHeads = self.localHeads
        let (qWidth, kvWidth) = (Double(localHeads * d), Double(slots * d))
        let tokensD = Double(n)

        step(.embedding) {
            for (t, token) in tokens.enumerated() {
                (x.pointer + t * h).update(from: weights.embedding.pointer + Int(token) * h, count: h)
                positions[t] = Int32(position + t)
            }
        }
        for (l, layer) in weights.layers.enumerated() {
            // Attention block: pre-norm, q/k/v, per-head q/k RMSNorm, RoPE, cache, attention.
            step(.norms) { kernels.rmsnorm(x.pointer, layer.inputNorm.pointer, xn.pointer, n, h, eps) }
            step(.qkv, flops: 2 * tokensD * Double(h) * (qWidth + 2 * kvWidth)) {
                layer.qProj.apply(kernels, xn.pointer, q.pointer, rows: n)
                layer.kProj.apply(kernels, xn.pointer, k.pointer, rows: n)
                layer.vProj.apply(kernels, xn.pointer, v.pointer, rows: n)
            }
            step(.norms) {
                kernels.rmsnorm(q.pointer, layer.qNorm.pointer, q.pointer, n * localHeads, d, eps)
                kernels.rmsnorm(k.pointer, layer.kNorm.pointer, k.pointer, n * slots, d, eps)
            }
            step(.rope) {
                kernels.rope(q.pointer, n, localHeads, d, positions, rotary.cos.pointer, rotary.sin.pointer)
                kernels.rope(k.pointer, n, slots, d, positions, rotary.cos.pointer, rotary.sin.pointer)
            }
            step(.kvCache) { cache.store(layer: l, keys: k.pointer, values: v.pointer, tokens: n, start: position) }
            // Causal QK^T and PV: each query attends to position + t + 1 keys.
            let pairs = tokensD * Double(position) + tokensD * (tokensD + 1) / 2
            step(.attention, flops: 4 * pairs * qWidth) { attend(layer: l, tokens: n, scale: scale) }
            // Row-parallel o_proj: partial sums over this rank's heads, then one all-reduce.
            step(.oProj, flops: 2 * tokensD * qWidth * Double(h)) {
                layer.oProj.apply(kernels, attended.pointer, projected.pointer, rows: n)
            }
            step(.allReduce) { comm.allReduceSum(projected.pointer, count: n * h) }
            step(.residual) {
                if let bias = layer.oBias { ck_add_bias_f32(projected.pointer, bias.pointer, n, h) }
                kernels.add(x.pointer, projected.pointer, n * h)
            }

            // MLP block: x += down(silu(gate(xn)) * up(xn)), down row-parallel.
            step(.norms) { kernels.rmsnorm(x.pointer, layer.postAttentionNorm.pointer, xn.pointer, n, h, eps) }
            step(.gateUp, flops: 4 * tokensD * Double(h * inter)) {
                layer.gateProj.apply(kernels, xn.pointer, gate.pointer, rows: n)
                layer.upProj.apply(kernels, xn.pointer, up.pointer, rows: n)
            }
            step(.silu) { kernels.siluMul(gate.pointer, up.pointer, gate.pointer, n * inter) }
            step(.down, flops: 2 * tokensD * Double(h * inter)) {
                layer.downProj.apply(kernels, gate.pointer, projected.pointer, rows: n)
            }
            step(.allReduce) { comm.allReduceSum(projected.pointer, count: n * h) }
            step(.residual) { kernels.add(x.pointer, projected.pointer, n * h) }
        }

        // Final norm and lm_head, for the last token only unless every row is asked for.
        let first = allLogits ? 0 : n - 1, rows = n - first
        step(.norms) { kernels.rmsnorm(x.pointer + first * h, weights.finalNorm.pointer, xn.pointer, rows, h, eps) }
        step(.lmHead, flops: 2 * Double(rows * h * model.plan.vocab.count)) {
            weights.lmHead.apply(kernels, xn.pointer, localLogits.pointer, rows: rows)
        }
        step(.gather) { gatherLogits(rows: rows) }
        position += n
        forwardCalls += 1
        return UnsafeBufferPointer(start: logits.pointer, count: rows * c.vocabSize)
    }

    /// Runs one step of the forward pass, timed when profiling.
    @inline(__always)
    private func step(_ op: ProfiledOp, flops: Double = 0, _ body: () -> Void) {
        if let profile { profile.measure(op, flops: flops, body) } else { body() }
    }

    /// lm_head is column-parallel over the vocabulary: collect every rank's columns into whole rows.
    private func gatherLogits(rows: Int) {
        let plan = model.plan, vocab = model.config.vocabSize
        if plan.size == 1 { return }
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

    private func attend(layer l: Int, tokens n: Int, scale: Float) {
        AttentionKernels(kernels: model.kernels).run(
            attention, q: q.pointer, keys: cache.keys[l].pointer, values: cache.values[l].pointer,
            out: attended.pointer, tokens: n, pos0: position, heads: localHeads, kvHeads: cache.slots,
            headDim: model.config.headDim, capacity: capacity, scale: scale, scratch: scratch.pointer,
            slots: scratchSlots)
    }

    static func physicalMemory() -> Int { Int(ProcessInfo.processInfo.physicalMemory) }
}
