import Qwen3
import XCTest

final class SequenceSplitTests: XCTestCase {
    func testEveryTokenHasExactlyOneOwnerAndWorkIsBalanced() {
        for ranks in 1...5 {
            for tokens in 1...40 {
                let split = SequenceSplit(tokens: tokens, ranks: ranks)
                var seen = [Int](repeating: 0, count: tokens)
                for rank in 0..<ranks {
                    let ranges = split.ranges(of: rank)
                    XCTAssertLessThanOrEqual(ranges.count, 2)
                    var row = 0
                    for range in ranges {
                        for t in range {
                            seen[t] += 1
                            let owner = split.owner(of: t)
                            XCTAssertEqual(owner.rank, rank)
                            XCTAssertEqual(owner.row, row)
                            row += 1
                        }
                    }
                    XCTAssertEqual(row, split.count(of: rank))
                    XCTAssertLessThanOrEqual(split.count(of: rank), SequenceSplit.largestShare(tokens: tokens, ranks: ranks))
                }
                XCTAssertEqual(seen, [Int](repeating: 1, count: tokens), "\(tokens) tokens over \(ranks) ranks")
            }
        }
        // Zig-zag balances causal work: rank shares of sum(position + 1) within 10% at 4096 tokens.
        let split = SequenceSplit(tokens: 4096, ranks: 4)
        let work = (0..<4).map { rank in split.ranges(of: rank).flatMap { Array($0) }.reduce(0) { $0 + $1 + 1 } }
        XCTAssertLessThan(Double(work.max()!) / Double(work.min()!), 1.1, "\(work)")
    }
}
