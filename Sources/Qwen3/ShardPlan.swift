// ShardPlan.swift — which heads, MLP columns and vocabulary rows one rank owns (Megatron tensor parallelism).

/// A rank's share of the model. Column-parallel layers (q, k, v, gate, up, lm_head) keep the output
/// rows listed here; row-parallel layers (o_proj, down_proj) keep the matching input columns and
/// their partial sums are all-reduced. With one rank the shard is the whole model.
public struct ShardPlan: Equatable, Sendable {
    public let rank: Int
    public let size: Int
    /// Global query heads of this rank, contiguous.
    public let queryHeads: Range<Int>
    /// Global KV head held in each local KV slot. Local query head i reads slot
    /// i / (queryHeads.count / kvHeads.count). A KV head is repeated when ranks outnumber KV heads
    /// or when a group of query heads straddles two ranks.
    public let kvHeads: [Int]
    /// Columns of the MLP's intermediate dimension, split in units of `intermediateUnit`.
    public let intermediate: Range<Int>
    /// Rows of the vocabulary (lm_head) this rank computes logits for.
    public let vocab: Range<Int>

    /// Intermediate and vocabulary splits are whole multiples of this, the AVX2 panel width,
    /// so only the last rank has a ragged panel.
    public static let intermediateUnit = 16

    public init(config: Qwen3Config, rank: Int, size: Int) throws {
        guard size >= 1, rank >= 0, rank < size else {
            throw RequestError("invalid rank \(rank) of \(size) processes")
        }
        if size > config.numHeads {
            throw RequestError("\(size) processes but the model has \(config.numHeads) query heads: tensor parallelism needs at most one process per query head")
        }
        self.rank = rank
        self.size = size
        queryHeads = Self.split(config.numHeads, parts: size, unit: 1, index: rank)
        intermediate = Self.split(config.intermediateSize, parts: size, unit: Self.intermediateUnit, index: rank)
        vocab = Self.split(config.vocabSize, parts: size, unit: Self.intermediateUnit, index: rank)

        let group = config.groupSize
        let needed = queryHeads.map { $0 / group }
        var distinct: [Int] = []
        for head in needed where distinct.last != head { distinct.append(head) }
        let perSlot = queryHeads.count / distinct.count
        let aligned = queryHeads.count % distinct.count == 0
            && distinct.allSatisfy { kv in needed.filter { $0 == kv }.count == perSlot }
        kvHeads = aligned ? distinct : needed
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
