// SessionMemoryTests.swift — the memory a session checks before allocating is the memory it then holds.
import XCTest
@testable import Qwen3

final class SessionMemoryTests: XCTestCase {
    /// For both attentions, all-token logits or not, and a tied or untied fixture, the estimate the
    /// session refuses requests by equals the bytes of the buffers it allocated.
    func testEstimateEqualsAllocatedBytes() throws {
        for name in ["tied-f32", "gqa8-untied-f32"] {
            let model = try Qwen3Model(path: Fixtures.root.appendingPathComponent(name).path, isa: .baseline)
            for attention in [AttentionKind.standard, .streaming(qBlock: 8, kvBlock: 16)] {
                for (capacity, maxTokens, allLogits) in [(40, 40, true), (64, 16, false), (1, 1, false)] {
                    let session = try InferenceSession(model: model, attention: attention, capacity: capacity,
                                                       maxTokens: maxTokens, allLogits: allLogits)
                    XCTAssertEqual(session.byteCount, session.memory.bytes, "\(name) \(attention.name) \(capacity)/\(maxTokens)")
                    XCTAssertGreaterThan(session.memory.cache, 0)
                }
            }
        }
    }
}
