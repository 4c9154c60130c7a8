// SyntheticCheckpointTests.swift — generated checkpoints are deterministic and load like real ones.
import Foundation
import XCTest
@testable import Qwen3

final class SyntheticCheckpointTests: XCTestCase {
    func testDeterministicAndLoadable() throws {
        var config = Qwen3Config.qwen3_0_6B
        config.numLayers = 2; config.hiddenSize = 32; config.intermediateSize = 48; config.vocabSize = 100
        config.numHeads = 4; config.numKVHeads = 2; config.headDim = 16
        let a = try temporaryFolder(self), b = try temporaryFolder(self)
        try SyntheticCheckpoint.write(config: config, dtype: .bf16, seed: 7, to: a.path)
        try SyntheticCheckpoint.write(config: config, dtype: .bf16, seed: 7, to: b.path)
        let bytesA = try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(bytesA, try Data(contentsOf: b.appendingPathComponent("model.safetensors")))

        let model = try Qwen3Model(path: a.path, isa: .baseline)
        XCTAssertEqual(model.config, config)
        XCTAssertEqual(model.checkpointDType, .bf16)
        let session = try InferenceSession(model: model, attention: .standard, capacity: 4, maxTokens: 4, allLogits: false)
        let logits = try session.forward([1, 2, 3, 4])
        XCTAssertTrue(logits.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(logits.max()! - logits.min()!, 0.1)
    }

    func testCachedCheckpointIsGeneratedOnceAndReused() throws {
        var config = Qwen3Config.qwen3_0_6B
        config.numLayers = 1; config.hiddenSize = 16; config.intermediateSize = 16; config.vocabSize = 20
        config.numHeads = 2; config.numKVHeads = 1; config.headDim = 8
        let root = try temporaryFolder(self).path
        let first = try SyntheticCheckpoint.cached(config: config, name: "tiny", dtype: .bf16, cacheRoot: root)
        let stamp = try FileManager.default.attributesOfItem(atPath: first + "/model.safetensors")[.modificationDate] as! Date
        let second = try SyntheticCheckpoint.cached(config: config, name: "tiny", dtype: .bf16, cacheRoot: root)
        XCTAssertEqual(first, second)
        let again = try FileManager.default.attributesOfItem(atPath: second + "/model.safetensors")[.modificationDate] as! Date
        XCTAssertEqual(stamp, again)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).count, 1, "no staging folder left behind")
    }

    func testCacheRootFollowsEnvironment() {
        XCTAssertEqual(SyntheticCheckpoint.defaultCacheRoot(environment: ["QWEN3_BENCH_CACHE": "/x"]), "/x")
        XCTAssertEqual(SyntheticCheckpoint.defaultCacheRoot(environment: ["XDG_CACHE_HOME": "/y"]), "/y/qwen3-bench")
    }

    func testParameterCountOfQwen3_0_6B() {
        // 0.6B: 596M parameters with the tied embedding counted once (Hugging Face reports 596,049,920).
        XCTAssertEqual(Qwen3Config.qwen3_0_6B.parameterCount, 596_049_920)
    }
}
