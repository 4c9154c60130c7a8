// ReferenceLogitsTests.swift — the whole model against Hugging Face transformers' logits.
import XCTest
@testable import Qwen3

final class ReferenceLogitsTests: XCTestCase {
    /// f32 checkpoints computed in f32 must agree with transformers (float32, eager) to 1e-3.
    /// The bf16 fixture's reference was computed in float32 from the same bf16-rounded weights,
    /// so the same bound applies to it.
    let tolerance: Float = 1e-3

    let attentions: [AttentionKind] = [
        .standard, .streaming(qBlock: 64, kvBlock: 64), .streaming(qBlock: 3, kvBlock: 5),
        .streaming(qBlock: 1, kvBlock: 1), .streaming(qBlock: 7, kvBlock: 128),
    ]

    func testEveryFixtureMethodAttentionAndDecodeSplit() throws {
        for name in Fixtures.names {
            let reference = try Fixtures.load(name)
            for isa in KernelISA.allCases where isa.isSupported {
                let model = try Qwen3Model(path: reference.folder.path, isa: isa)
                XCTAssertEqual(model.config.vocabSize, reference.vocab)
                let n = reference.tokens.count
                for attention in attentions {
                    for k in [n, n / 2, 1] {
                        let logits = try runLogits(model: model, tokens: reference.tokens, attention: attention, decodeFrom: k)
                        let diff = maxAbsDiff(logits, reference.logits)
                        XCTAssertLessThanOrEqual(diff, tolerance,
                            "\(name) \(isa.rawValue) \(attention) decode-from \(k): max abs diff \(diff)")
                    }
                }
            }
        }
    }

    func testModelFileAndShardIndexPathsLoadTheSameModel() throws {
        let tied = try Fixtures.load("tied-f32")
        let viaFile = try Qwen3Model(path: tied.folder.appendingPathComponent("model.safetensors").path, isa: .baseline)
        let logits = try runLogits(model: viaFile, tokens: tied.tokens, attention: .standard, decodeFrom: tied.tokens.count)
        XCTAssertLessThanOrEqual(maxAbsDiff(logits, tied.logits), tolerance)

        let sharded = try Fixtures.load("untied-sharded-f32")
        let index = sharded.folder.appendingPathComponent("model.safetensors.index.json").path
        let viaIndex = try Qwen3Model(path: index, isa: .baseline)
        let shardedLogits = try runLogits(model: viaIndex, tokens: sharded.tokens, attention: .standard,
                                          decodeFrom: sharded.tokens.count)
        XCTAssertLessThanOrEqual(maxAbsDiff(shardedLogits, sharded.logits), tolerance)
    }

    func testTiedCheckpointThatStoresLMHeadUsesIt() throws {
        let reference = try Fixtures.load("tied-with-lmhead-f32")
        let model = try Qwen3Model(path: reference.folder.path, isa: .baseline)
        XCTAssertTrue(model.config.tieWordEmbeddings)
        XCTAssertFalse(model.weights.lmHead.weight === model.weights.embedding)
    }

    func testPrefillLogitsOfLastTokenEqualAllTokenRow() throws {
        let reference = try Fixtures.load("tied-f32")
        let model = try Qwen3Model(path: reference.folder.path, isa: KernelISA.fastestSupported)
        let session = try InferenceSession(model: model, attention: .standard, capacity: reference.tokens.count,
                                           maxTokens: reference.tokens.count, allLogits: false)
        let last = Array(try session.forward(reference.tokens))
        let v = reference.vocab, n = reference.tokens.count
        XCTAssertLessThanOrEqual(maxAbsDiff(last, reference.logits[(n - 1) * v ..< n * v]), tolerance)
    }
}
