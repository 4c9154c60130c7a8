import BenchSupport
import XCTest

/// The settle loop against a scripted counter and a fake clock: each sleep advances the clock, and the
/// counter reads the value scripted for that moment.
final class FreePageReportingTests: XCTestCase {
    private final class Script {
        var time = 0.0
        var sleeps = 0
        let counter: (Double) -> Int?
        init(_ counter: @escaping (Double) -> Int?) { self.counter = counter }
        var reporting: FreePageReporting {
            FreePageReporting(readKiB: { self.counter(self.time) }, now: { self.time },
                              sleep: { self.time += $0; self.sleeps += 1 })
        }
    }

    func testNoCounterMeansNoWait() {
        let script = Script { _ in nil }
        XCTAssertNil(script.reporting.settle())
        XCTAssertEqual(script.sleeps, 0)
    }

    func testAStillCounterWaitsOneQuietPeriod() throws {
        let script = Script { _ in 1000 }
        let wait = try XCTUnwrap(script.reporting.settle(quiet: 2.5, limit: 30, poll: 0.1))
        XCTAssertEqual(wait.seconds, 2.5, accuracy: 0.11)
        XCTAssertEqual(wait.reportedKiB, 0)
        XCTAssertFalse(wait.timedOut)
    }

    /// Passes 2 s apart (as the kernel's): the wait ends a quiet period after the last one, and
    /// counts what they reported.
    func testWaitsUntilThePassesEnd() throws {
        let script = Script { t in t < 2 ? 500 : t < 4 ? 500 + 65536 : t < 6 ? 500 + 131072 : 500 + 200_000 }
        let wait = try XCTUnwrap(script.reporting.settle(quiet: 2.5, limit: 30, poll: 0.1))
        XCTAssertEqual(wait.seconds, 8.5, accuracy: 0.25)  // a change is seen at the next poll
        XCTAssertEqual(wait.reportedKiB, 200_000)
        XCTAssertFalse(wait.timedOut)
    }

    func testGivesUpAtTheLimitWhileTheCounterMoves() throws {
        let script = Script { t in Int(t * 10) }
        let wait = try XCTUnwrap(script.reporting.settle(quiet: 2.5, limit: 5, poll: 0.1))
        XCTAssertTrue(wait.timedOut)
        XCTAssertEqual(wait.seconds, 5, accuracy: 0.11)
        XCTAssertGreaterThan(wait.reportedKiB, 40)
    }

    /// Small releases (a test fixture) are not waited for at all.
    func testSmallReleasesDoNotWait() {
        let script = Script { _ in 1000 }
        script.reporting.settle(afterReleasing: 8 << 20, what: "a fixture", quiet: true)
        XCTAssertEqual(script.sleeps, 0)
        script.reporting.settle(afterReleasing: FreePageReporting.minimumBytes, what: "a model", quiet: true)
        XCTAssertGreaterThan(script.sleeps, 0)
    }
}
