// ParallelPlanTests.swift — every head, MLP column, vocabulary row and cache position is owned exactly
// once, evenly, and the attention benchmark's head split is the model's.
import XCTest
@testable import Qwen3

final class ParallelPlanTests: XCTestCase {
    func configs() -> [Qwen3Config] {
        var odd = Qwen3Config.qwen3_0_6B
        odd.numHeads = 6; odd.numKVHeads = 2; odd.intermediateSize = 80; odd.vocabSize = 300
        var mha = Qwen3Config.qwen3_0_6B
        mha.numHeads = 5; mha.numKVHeads = 5; mha.intermediateSize = 1000; mha.vocabSize = 97
        return [.qwen3_0_6B, odd, mha]
    }

    func testEverythingOwnedOnceAndBalanced() throws {
        for config in configs() {
            for size in 1...config.numHeads {
                let plans = try (0..<size).map { try ShardPlan(config: config, rank: $0, size: size) }
                XCTAssertEqual(plans.flatMap { Array($0.queryHeads) }, Array(0..<config.numHeads))
                XCTAssertEqual(plans.flatMap { Array($0.intermediate) }, Array(0..<config.intermediateSize))
                XCTAssertEqual(plans.flatMap { Array($0.vocab) }, Array(0..<config.vocabSize))
                let heads = plans.map(\.queryHeads.count)
                XCTAssertLessThanOrEqual(heads.max()! - heads.min()!, 1, "\(config.numHeads) heads over \(size)")
                let unit = ShardPlan.intermediateUnit
                // Balanced within one unit, counting a ragged last unit as a whole one.
                let units = plans.map { ($0.intermediate.count + unit - 1) / unit }
                XCTAssertLessThanOrEqual(units.max()! - units.min()!, 1)
                for plan in plans {
                    // Local query head i must read the KV head its global head maps to.
                    let perSlot = plan.queryHeads.count / plan.kvHeads.count
                    XCTAssertEqual(plan.queryHeads.count % plan.kvHeads.count, 0)
                    for (i, head) in plan.queryHeads.enumerated() {
                        XCTAssertEqual(plan.kvHeads[i / perSlot], head / config.groupSize)
                    }
                }
            }
        }
    }

    func testSingleProcessOwnsTheWholeModel() throws {
        let c = Qwen3Config.qwen3_0_6B
        let plan = try ShardPlan(config: c, rank: 0, size: 1)
        XCTAssertEqual(plan.queryHeads, 0..<16)
        XCTAssertEqual(plan.kvHeads, Array(0..<8))
        XCTAssertEqual(plan.intermediate, 0..<3072)
        XCTAssertEqual(plan.vocab, 0..<151_936)
    }

    func testStraddlingGroupReplicatesKVHeads() throws {
        var c = Qwen3Config.qwen3_0_6B
        c.numHeads = 6; c.numKVHeads = 2
        // 4 ranks: heads 0-1, 2-3, 4, 5; rank 1 holds head 2 (kv 0) and head 3 (kv 1).
        let plan = try ShardPlan(config: c, rank: 1, size: 4)
        XCTAssertEqual(plan.queryHeads, 2..<4)
        XCTAssertEqual(plan.kvHeads, [0, 1])
        let first = try ShardPlan(config: c, rank: 0, size: 4)
        XCTAssertEqual(first.kvHeads, [0])
    }

    func testMoreRanksThanHeadsIsAnError() {
        XCTAssertThrowsError(try ShardPlan(config: .qwen3_0_6B, rank: 0, size: 17)) { error in
            XCTAssertTrue("\(error)".contains("16 query heads"))
        }
    }

    func testAttentionBenchmarkSplitIsTheModels() throws {
        var c = Qwen3Config.qwen3_0_6B
        c.numHeads = 6; c.numKVHeads = 2
        for size in 1...6 {
            for rank in 0..<size {
                let model = try ShardPlan(config: c, rank: rank, size: size)
                let tool = try ShardPlan(heads: 6, kvHeads: 2, rank: rank, size: size)
                XCTAssertEqual(model.queryHeads, tool.queryHeads)
                XCTAssertEqual(model.kvHeads, tool.kvHeads)
                XCTAssertEqual(tool.headShards.flatMap { Array($0) }, Array(0..<6))
            }
        }
        XCTAssertEqual(try ShardPlan(config: c, rank: 0, size: 2).vocabularyShards.flatMap { Array($0) },
                       Array(0..<c.vocabSize))
    }

    func testSequenceParallelismHoldsTheWholeModelAndSplitsOnlyMultiTokenSteps() throws {
        let plan = try ParallelPlan(config: .qwen3_0_6B, parallelism: .sequence, rank: 1, size: 3)
        XCTAssertEqual(plan.shard, try ShardPlan(config: .qwen3_0_6B, rank: 0, size: 1))
        XCTAssertNil(plan.tokenSplit(1))
        XCTAssertEqual(plan.tokenSplit(10), SequenceSplit(tokens: 10, ranks: 3))
        let heads = try ParallelPlan(config: .qwen3_0_6B, parallelism: .heads, rank: 1, size: 3)
        XCTAssertNil(heads.tokenSplit(10))
        XCTAssertEqual(heads.shard, try ShardPlan(config: .qwen3_0_6B, rank: 1, size: 3))
    }

    func testCacheSlicesCoverEveryPositionOnce() {
        for cached in [0, 1, 5, 129, 4096] {
            for ranks in 1...5 {
                let slices = (0..<ranks).map { ParallelPlan.cacheSlice(cached: cached, ranks: ranks, rank: $0) }
                XCTAssertEqual(slices.flatMap { Array($0) }, Array(0..<cached))
                XCTAssertLessThanOrEqual(slices.map(\.count).max()! - slices.map(\.count).min()!, 1)
            }
        }
    }
}
