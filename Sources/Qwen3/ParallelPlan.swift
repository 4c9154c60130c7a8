// ParallelPlan.swift — who computes what: the one owner of how a job's work is split over ranks
// (heads, MLP columns, vocabulary, prompt tokens, cache slices) and of the collective that joins
// each split. The model and benchmark_mpi_attention both take their splits from here.

/// How the work of one rank is decided, with the collective that joins each part:
///
/// | split                         | owner            | joined by                                     |
/// |-------------------------------|------------------|-----------------------------------------------|
/// | query heads (+ their KV heads)| `ShardPlan`      | o_proj row-parallel partial sums, all-reduce  |
/// | MLP intermediate columns      | `ShardPlan`      | down_proj row-parallel partial sums, all-reduce |
/// | vocabulary rows of lm_head    | `ShardPlan`      | logits all-gather (`vocabularyShards`)        |
/// | prompt tokens, zig-zag        | `SequenceSplit`  | K/V all-gather per layer; logits from owner   |
/// | decode cache slices           | `cacheSlice`     | partial softmax states all-gathered, merged   |
///
/// Under `.heads` the tensor split spans the job and tokens are never split; under `.sequence` every
/// rank holds the whole model (a one-rank `ShardPlan`) and a step of several tokens is split.
public struct ParallelPlan: Sendable {
    public let parallelism: Parallelism
    public let rank: Int
    public let size: Int
    /// This rank's share of the weights: the job's tensor split under `.heads`, everything under `.sequence`.
    public let shard: ShardPlan

    public init(config: Qwen3Config, parallelism: Parallelism, rank: Int, size: Int,
                precision: WeightPrecision = .f32) throws {
        guard size >= 1, rank >= 0, rank < size else {
            throw RequestError("invalid rank \(rank) of \(size) processes")
        }
        self.parallelism = parallelism
        self.rank = rank
        self.size = size
        shard = parallelism == .heads ? try ShardPlan(config: config, rank: rank, size: size, precision: precision)
                                      : try ShardPlan(config: config, rank: 0, size: 1, precision: precision)
    }

    /// Whether a step of `tokens` tokens is split over the ranks by token (sequence parallelism).
    public func splitsTokens(_ tokens: Int) -> Bool { parallelism == .sequence && size > 1 && tokens > 1 }

    /// The zig-zag token split of a step, or nil when every rank runs the step whole.
    public func tokenSplit(_ tokens: Int) -> SequenceSplit? {
        splitsTokens(tokens) ? SequenceSplit(tokens: tokens, ranks: size) : nil
    }

    /// Most rows this rank computes in one step of up to `tokens` tokens.
    public func rows(forSteps tokens: Int) -> Int {
        parallelism == .sequence && size > 1 ? max(1, SequenceSplit.largestShare(tokens: tokens, ranks: size)) : tokens
    }

    /// The vocabulary rows every rank's lm_head computes, in rank order (joined by an all-gather).
    public var vocabularyShards: [Range<Int>] { shard.vocabularyShards }

    /// Decode split by the cache (flash-decoding over ranks): the contiguous slice of the `cached`
    /// positions `rank` of `ranks` attends over; the partial softmax states are all-gathered and merged.
    public static func cacheSlice(cached: Int, ranks: Int, rank: Int) -> Range<Int> {
        ShardPlan.split(cached, parts: ranks, unit: 1, index: rank)
    }
}

/// A rank's share of the model under tensor (head) parallelism. Column-parallel layers (q, k, v,
/// gate, up, lm_head) keep the output rows listed here; row-parallel layers (o_proj, down_proj) keep
/// the matching input columns and their partial sums are all-reduced. With one rank the shard is
/// the whole model.
public struct ShardPlan: Equatable, Sendable {
    public let rank: Int
    public let size: Int
    /// Global query heads of this rank, contiguous.
    public let queryHeads: Range<Int>
    /// Global KV head held in each local KV slot. Local query head i reads slot
    /// i / (queryHeads.count / kvHeads.count). A KV head is repeated when ranks outnumber KV heads
    /// or when a group of query heads straddles two ranks.
    public let kvHeads: [Int]
    /// Columns of the MLP's intermediate dimension, split in units of `unit`.
    public let intermediate: Range<Int>
    /// Rows of the vocabulary (lm_head) this rank computes logits for.
    public let vocab: Range<Int>
    /// The unit of the intermediate and vocabulary splits (see `intermediateUnit(for:)`).
    public let unit: Int
    private let headCount: Int
    private let vocabSize: Int

    /// Intermediate and vocabulary splits are whole multiples of this, the AVX2 panel width,
    /// so only the last rank has a ragged panel.
    public static let intermediateUnit = 16

    /// The split unit for a weight format: quantized down_proj shards are row-parallel along the
    /// intermediate dimension, which must fall on whole blocks of 32; float32 and bfloat16 keep 16
    /// (so their splits, and their MPI results, are what they were).
    public static func intermediateUnit(for precision: WeightPrecision) -> Int {
        max(intermediateUnit, precision.blockSize)
    }

    public init(config: Qwen3Config, rank: Int, size: Int, precision: WeightPrecision = .f32) throws {
        try self.init(heads: config.numHeads, kvHeads: config.numKVHeads, intermediate: config.intermediateSize,
                      vocab: config.vocabSize, rank: rank, size: size, unit: Self.intermediateUnit(for: precision))
    }

    /// The split of `heads` query heads over `kvHeads` KV heads (and of the MLP and vocabulary, which
    /// the attention benchmark leaves at 0) exactly as the model splits them.
    public init(heads: Int, kvHeads: Int, intermediate: Int = 0, vocab: Int = 0, rank: Int, size: Int,
                unit: Int = ShardPlan.intermediateUnit) throws {
        guard size >= 1, rank >= 0, rank < size else {
            throw RequestError("invalid rank \(rank) of \(size) processes")
        }
        guard heads >= 1, kvHeads >= 1, heads % kvHeads == 0 else {
            throw RequestError("\(heads) query heads cannot share \(kvHeads) KV heads evenly")
        }
        if size > heads {
            throw RequestError("\(size) processes but the model has \(heads) query heads: tensor parallelism needs at most one process per query head")
        }
        self.rank = rank
        self.size = size
        headCount = heads
        vocabSize = vocab
        self.unit = unit
        queryHeads = Self.split(heads, parts: size, unit: 1, index: rank)
        self.intermediate = Self.split(intermediate, parts: size, unit: unit, index: rank)
        self.vocab = Self.split(vocab, parts: size, unit: unit, index: rank)

        let group = heads / kvHeads
        let needed = queryHeads.map { $0 / group }
        var distinct: [Int] = []
        for head in needed where distinct.last != head { distinct.append(head) }
        let perSlot = queryHeads.count / distinct.count
        let aligned = queryHeads.count % distinct.count == 0
            && distinct.allSatisfy { kv in needed.filter { $0 == kv }.count == perSlot }
        self.kvHeads = aligned ? distinct : needed
    }

    /// Every rank's query heads, in rank order.
    public var headShards: [Range<Int>] {
        (0..<size).map { Self.split(headCount, parts: size, unit: 1, index: $0) }
    }

    /// Every rank's vocabulary rows, in rank order.
    public var vocabularyShards: [Range<Int>] {
        (0..<size).map { Self.split(vocabSize, parts: size, unit: unit, index: $0) }
    }

    /// The `index`-th of `parts` near-equal ranges over 0..<total, in whole `unit`s; the first
    /// ranges take one extra unit when the units do not divide evenly.
    public static func split(_ total: Int, parts: Int, unit: Int, index: Int) -> Range<Int> {
        let units = (total + unit - 1) / unit
        let base = units / parts, extra = units % parts
        let startUnit = index * base + min(index, extra)
        let endUnit = startUnit + base + (index < extra ? 1 : 0)
        return min(startUnit * unit, total) ..< min(endUnit * unit, total)
    }
}

/// Zig-zag split of a step's n tokens over P ranks: the tokens are cut into 2P near-equal contiguous
/// chunks and rank r takes chunks r and 2P-1-r. Causal attention costs grow with position, so pairing
/// an early chunk with a late one gives every rank about the same work. Ranks may get no tokens when
/// n < 2P; they still take part in every exchange.
public struct SequenceSplit: Equatable, Sendable {
    public let ranks: Int
    public let tokens: Int
    /// Each rank's token ranges, in ascending order, empty ones left out; worked out once, since
    /// every layer's K/V exchange walks them.
    private let shares: [[Range<Int>]]
    /// Tokens each rank computes.
    public let counts: [Int]

    public init(tokens: Int, ranks: Int) {
        self.tokens = tokens
        self.ranks = ranks
        let chunks = 2 * ranks
        shares = (0..<ranks).map { rank in
            [ShardPlan.split(tokens, parts: chunks, unit: 1, index: rank),
             ShardPlan.split(tokens, parts: chunks, unit: 1, index: chunks - 1 - rank)].filter { !$0.isEmpty }
        }
        counts = shares.map { $0.reduce(0) { $0 + $1.count } }
    }

    /// Token ranges of `rank`, in ascending order, empty ones left out.
    public func ranges(of rank: Int) -> [Range<Int>] { shares[rank] }

    /// Tokens `rank` computes.
    public func count(of rank: Int) -> Int { counts[rank] }

    /// The rank that computes token `index` (0 ..< tokens), and the token's row among that rank's tokens.
    public func owner(of index: Int) -> (rank: Int, row: Int) {
        for rank in 0..<ranks {
            var row = 0
            for range in ranges(of: rank) {
                if range.contains(index) { return (rank, row + index - range.lowerBound) }
                row += range.count
            }
        }
        return (0, 0)  // unreachable for 0 <= index < tokens: the chunks cover every token
    }

    /// Most tokens any rank computes when a step has up to `tokens` tokens (chunk sizes only grow with n).
    public static func largestShare(tokens: Int, ranks: Int) -> Int {
        let split = SequenceSplit(tokens: tokens, ranks: ranks)
        return (0..<ranks).map(split.count(of:)).max() ?? tokens
    }
}
