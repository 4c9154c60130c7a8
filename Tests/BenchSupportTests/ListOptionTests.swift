import BenchSupport
import XCTest

final class ListOptionTests: XCTestCase {
    func testIntegerListsKeepOrderAndRejectBadItems() throws {
        XCTAssertEqual(try ListOption.integers("32, 128,512,128", option: "--prompt-len", range: 1...Int.max), [32, 128, 512])
        XCTAssertThrowsError(try ListOption.integers("32,,128", option: "--prompt-len", range: 1...Int.max))
        XCTAssertThrowsError(try ListOption.integers("32,0", option: "--prompt-len", range: 1...Int.max))
        XCTAssertThrowsError(try ListOption.integers("x", option: "--threads", range: 1...Int.max))
    }
}
