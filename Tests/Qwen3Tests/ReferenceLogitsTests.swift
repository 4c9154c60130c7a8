// ReferenceLogitsTests.swift — the whole model against Hugging Face transformers' logits.
import CKernels
import XCTest
@testable import Qwen3

enum CKernelsProbe {
    static var hasBF16: Bool { ck_cpu_has_avx512_bf16() != 0 }
}

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
            for isa in KernelISA.allCases where isa.isSupported {  // baseline, avx2, avx512
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

    /// bf16 weights with activations rounded to bf16 at every matmul input: each rounding has
    /// relative error up to u = 2^-9, seven matmuls per layer add such errors, and they compound
    /// through the layers; across 11 checkpoints the worst observed error is 0.9-1.7% of the
    /// largest |logit|. The bound is 3% of the largest |logit| (about 15 u): twice the worst
    /// observed, far below what a wrong kernel gives (a wrong layout or lost sum is O(100%)).
    func testBF16WeightsStayWithinBF16Tolerance() throws {
        var paths: [KernelISA] = [.baseline]
        if KernelISA.avx512.isSupported && CKernelsProbe.hasBF16 { paths.append(.avx512) }
        for name in Fixtures.names {
            let reference = try Fixtures.load(name)
            let bound = 0.03 * reference.logits.map(abs).max()!
            for isa in paths {
                let model = try Qwen3Model(path: reference.folder.path, isa: isa, precision: .bf16)
                let n = reference.tokens.count
                for (attention, k) in [(AttentionKind.standard, n), (.streaming(qBlock: 3, kvBlock: 5), n / 2)] {
                    let logits = try runLogits(model: model, tokens: reference.tokens, attention: attention, decodeFrom: k)
                    let diff = maxAbsDiff(logits, reference.logits)
                    XCTAssertLessThanOrEqual(diff, bound, "\(name) bf16 \(isa.rawValue) \(attention) decode-from \(k)")
                }
            }
        }
    }

    func testBF16NeedsAKernelThatHasIt() {
        XCTAssertThrowsError(try Qwen3Model(path: Fixtures.root.appendingPathComponent("tied-f32").path, isa: .avx2, precision: .bf16)) {
            XCTAssertTrue("\($0)".contains("no AVX2 kernel"))
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
        XCTAssertFalse(model.weights.lmHead.weight.isStorage(of: model.weights.embedding.f32!))
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
