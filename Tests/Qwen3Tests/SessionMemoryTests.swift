// SessionMemoryTests.swift — the memory a session checks before allocating is the memory it then holds.
import XCTest
@testable import Qwen3

final class SessionMemoryTests: XCTestCase {
    /// For both attentions, both cache precisions, all-token logits or not, and a tied or untied
    /// fixture, the estimate the session refuses requests by equals the bytes of the buffers it
    /// allocated; a bf16 cache is counted in its real bytes, half the f32 cache's.
    func testEstimateEqualsAllocatedBytes() throws {
        for name in ["tied-f32", "gqa8-untied-f32"] {
            let model = try Qwen3Model(path: Fixtures.root.appendingPathComponent(name).path, isa: .baseline)
            for attention in [AttentionKind.standard, .streaming(qBlock: 8, kvBlock: 16)] {
                for (capacity, maxTokens, allLogits) in [(40, 40, true), (64, 16, false), (1, 1, false)] {
                    var cacheBytes: [KVPrecision: Int] = [:]
                    for kv in KVPrecision.allCases {
                        let session = try InferenceSession(model: model, attention: attention, capacity: capacity,
                                                           maxTokens: maxTokens, allLogits: allLogits, kvPrecision: kv)
                        XCTAssertEqual(session.byteCount, session.memory.bytes,
                                       "\(name) \(attention.name) \(kv) \(capacity)/\(maxTokens)")
                        cacheBytes[kv] = session.memory.cache.bytes
                    }
                    XCTAssertGreaterThan(cacheBytes[.f32]!, 0)
                    XCTAssertEqual(2 * cacheBytes[.bf16]!, cacheBytes[.f32]!)
                }
            }
        }
    }
}
