import Foundation
import Qwen3
import XCTest

final class AlignedBufferTests: XCTestCase {
    /// Large buffers start on a 2 MiB boundary with the huge-page hint; QWEN3_HUGEPAGES=0 turns that
    /// off; small buffers are 64-byte aligned either way.
    func testHugePagePlacementAndItsSwitch() throws {
        let saved = ProcessInfo.processInfo.environment["QWEN3_HUGEPAGES"]
        defer { if let saved { setenv("QWEN3_HUGEPAGES", saved, 1) } else { unsetenv("QWEN3_HUGEPAGES") } }

        unsetenv("QWEN3_HUGEPAGES")
        let large = try FloatBuffer(count: 3 << 20)  // 12 MiB
        XCTAssertTrue(large.hugePageHinted)
        XCTAssertEqual(UInt(bitPattern: large.pointer) % (2 << 20), 0)
        XCTAssertEqual(large.pointer[large.count - 1], 0)
        let small = try FloatBuffer(count: 1000)
        XCTAssertFalse(small.hugePageHinted)
        XCTAssertEqual(UInt(bitPattern: small.pointer) % 64, 0)

        setenv("QWEN3_HUGEPAGES", "0", 1)
        let off = try FloatBuffer(count: 3 << 20)
        XCTAssertFalse(off.hugePageHinted)
        XCTAssertEqual(UInt(bitPattern: off.pointer) % 64, 0)
        XCTAssertEqual(off.pointer[off.count - 1], 0)
    }

    /// Memory that cannot be had is a thrown error naming the bytes, not a crash.
    func testImpossibleAllocationThrowsWithTheByteCount() {
        XCTAssertThrowsError(try FloatBuffer(count: Int.max / 2)) { error in
            XCTAssertTrue("\(error)".contains("overflows"), "\(error)")
        }
        XCTAssertThrowsError(try FloatBuffer(count: 1 << 60)) { error in
            XCTAssertTrue("\(error)".contains("\(4 << 60) bytes"), "\(error)")
        }
    }
}
