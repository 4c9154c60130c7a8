// SequenceSplit.swift — which of a step's tokens each rank computes under sequence parallelism.

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

    /// The rank that computes token `index`, and the token's row among that rank's tokens.
    public func owner(of index: Int) -> (rank: Int, row: Int) {
        for rank in 0..<ranks {
            var row = 0
            for range in ranges(of: rank) {
                if range.contains(index) { return (rank, row + index - range.lowerBound) }
                row += range.count
            }
        }
        preconditionFailure("token \(index) outside 0..<\(tokens)")
    }

    /// Most tokens any rank computes when a step has up to `tokens` tokens (chunk sizes only grow with n).
    public static func largestShare(tokens: Int, ranks: Int) -> Int {
        let split = SequenceSplit(tokens: tokens, ranks: ranks)
        return (0..<ranks).map(split.count(of:)).max() ?? tokens
    }
}
