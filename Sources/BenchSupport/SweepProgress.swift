// SweepProgress.swift — "test k of n" progress on stderr, only on a terminal and only where asked.
import Foundation

/// Progress of a sweep on stderr, rewritten in place. Silent unless stderr is a terminal, the
/// caller is rank 0 and the user did not pass --quiet, so logs and pipes never see it.
public final class SweepProgress {
    public let enabled: Bool
    private let tests: Int
    private let start = Clock.now()
    private var test = 0
    private var name = ""
    private var dirty = false

    public init(tests: Int, quiet: Bool, rank: Int) {
        self.tests = tests
        enabled = !quiet && rank == 0 && isatty(STDERR_FILENO) == 1
    }

    /// A new test of the sweep begins.
    public func begin(_ name: String) {
        test += 1
        self.name = name
        show("starting")
    }

    /// An iteration of the current test finished. `done` of `total`, warm-up included.
    public func iteration(_ done: Int, of total: Int) {
        guard enabled else { return }
        let elapsed = Double(Clock.now() - start) / 1e9
        let fraction = (Double(test - 1) + Double(done) / Double(total)) / Double(tests)
        let left = fraction > 0 ? elapsed / fraction - elapsed : 0
        show(String(format: "iteration %d/%d, %.0f s elapsed, about %.0f s left", done, total, elapsed, left))
    }

    /// Clears the progress line before the results are printed.
    public func finish() {
        guard enabled, dirty else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        dirty = false
    }

    private func show(_ detail: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[Ktest \(test) of \(tests) (\(name)): \(detail)".utf8))
        dirty = true
    }
}
