// KVStoreTests.swift — ck_kv_store_f32 / _bf16: new tokens' rows land at their (slot, position) of
// the cache, copied or rounded as ck_convert_f32_to_bf16 rounds, nothing else written; one
// thread (a decode step) and split over threads (a prefill).
import CKernels
import XCTest

final class KVStoreTests: XCTestCase {
    func testRowsLandAtTheirSlotAndPosition() {
        let (slots, d, cap, start) = (8, 128, 200, 37)
        withThreads(2) {
            // 3 tokens: one thread; 100 tokens: 102400 elements, over the parallel threshold.
            for tokens in [1, 3, 100] {
                // Rows of a fused projection: each token's keys and values inside a wider row.
                let width = 3 * slots * d, kOffset = slots * d, vOffset = 2 * slots * d
                var rng = Rng(UInt64(tokens))
                let rows = rng.floats(tokens * width, scale: 4)
                var kf = [Float](repeating: .nan, count: slots * cap * d), vf = kf
                var kb = [UInt16](repeating: 0xffff, count: slots * cap * d), vb = kb
                rows.withUnsafeBufferPointer { r in
                    let k = r.baseAddress! + kOffset, v = r.baseAddress! + vOffset
                    ck_kv_store_f32(k, width, v, width, tokens, slots, d, cap, start, &kf, &vf)
                    ck_kv_store_bf16(k, width, v, width, tokens, slots, d, cap, start, &kb, &vb)
                }
                var rounded = [UInt16](repeating: 0, count: rows.count)
                ck_convert_f32_to_bf16(rows, &rounded, rows.count)
                for s in 0..<slots {
                    for p in 0..<cap {
                        let t = p - start, at = (s * cap + p) * d
                        for e in 0..<d {
                            if t >= 0 && t < tokens {
                                let src = t * width + s * d + e
                                XCTAssertEqual(kf[at + e].bitPattern, rows[src + kOffset].bitPattern)
                                XCTAssertEqual(vf[at + e].bitPattern, rows[src + vOffset].bitPattern)
                                XCTAssertEqual(kb[at + e], rounded[src + kOffset])
                                XCTAssertEqual(vb[at + e], rounded[src + vOffset])
                            } else {
                                XCTAssertTrue(kf[at + e].isNaN && vf[at + e].isNaN, "f32 cache written outside the new rows")
                                XCTAssertTrue(kb[at + e] == 0xffff && vb[at + e] == 0xffff, "bf16 cache written outside the new rows")
                            }
                        }
                    }
                }
            }
        }
    }
}
