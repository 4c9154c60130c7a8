import BenchSupport
import XCTest

final class ResultTableTests: XCTestCase {
    let rows: [ResultRow] = [["test": "pp8", "cpu": "AMD EPYC, \"Zen 4\"", "samples_ms": [1.5, 2.25], "tokens_per_s": 100.0],
                             ["test": "pp16", "tokens_per_s": 200.0]]
    let columns = ["test", "cpu", "samples_ms", "tokens_per_s"].map { Column($0, $0) }

    func testCSVQuotesFieldsAndLeavesMissingValuesEmpty() {
        let lines = ResultTable.csv(rows, columns: columns).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines[0], "test,cpu,samples_ms,tokens_per_s")
        XCTAssertEqual(lines[1], "pp8,\"AMD EPYC, \"\"Zen 4\"\"\",1.5000;2.2500,100")
        XCTAssertEqual(lines[2], "pp16,,,200")
    }

    func testMarkdownHasAHeaderRuleAndOneLinePerRow() {
        let lines = ResultTable.markdown(rows, columns: columns).split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(lines[1], "|---|---|---|---|")
        XCTAssertTrue(lines[3].hasPrefix("| pp16 |  |  | 200 |"), String(lines[3]))
    }

    func testJSONLinesAppendOneObjectPerRow() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rows-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ResultTable.appendJSONLines(rows, to: path)
        try ResultTable.appendJSONLines([rows[1]], to: path)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        XCTAssertEqual(first["samples_ms"] as? [Double], [1.5, 2.25])
    }

    func testStatisticsOfSamples() {
        let s = Statistics(samples: [4, 1, 3, 2])
        XCTAssertEqual(s.median, 2.5)
        XCTAssertEqual(s.mean, 2.5)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 4)
        XCTAssertEqual(s.stddev, (5.0 / 3).squareRoot(), accuracy: 1e-12)  // n - 1 in the denominator
        XCTAssertEqual(Statistics(samples: [7]).stddev, 0)
    }
}
