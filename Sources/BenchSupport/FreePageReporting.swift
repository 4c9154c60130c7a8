// FreePageReporting.swift — waiting out a virtual machine's report of freed memory to its host.
import Foundation

/// Linux guests with virtio-balloon free page reporting hand freed memory back to the hypervisor:
/// 2 MiB blocks that stayed free are reported in passes 2 s apart, and the vCPUs stall while the host
/// discards them. A sweep frees each model before it loads the next, so the next model's first timed
/// iterations ran during those passes: on this project's 2-core EPYC VM, after a bf16 model (1.1 GB)
/// was freed, the reports went on for 6 s and a q8_0 prefill of 128 tokens had iterations of 270-300 ms
/// among 200-ms ones (bench/load_spike.sh; bench/results/2026-12-01-settle/).
///
/// `settle` waits until the kernel's running total of reported memory has stood still for longer than
/// the reporting delay. Where the counter does not exist (bare metal, other hypervisors) it returns at once.
public struct FreePageReporting {
    /// The kernel's running total of reported memory, in KiB (mm/page_reporting.c).
    public static let counterPath = "/sys/module/page_reporting/parameters/reported_kib"
    /// Releases smaller than this are not waited for: a test fixture frees a few MiB, and a quiet
    /// period costs seconds.
    public static let minimumBytes = 256 << 20
    /// Longer than the kernel's delay between passes (2 s), so a still counter means the passes ended.
    public static let quietSeconds = 2.5
    /// Other processes freeing memory keep the counter moving; the wait gives up after this.
    public static let limitSeconds = 30.0

    public struct Wait: Equatable {
        public let seconds: Double
        public let reportedKiB: Int
        /// The limit was reached while the counter still moved.
        public let timedOut: Bool
    }

    let readKiB: () -> Int?
    let now: () -> Double
    let sleep: (Double) -> Void

    public init(readKiB: @escaping () -> Int?, now: @escaping () -> Double, sleep: @escaping (Double) -> Void) {
        (self.readKiB, self.now, self.sleep) = (readKiB, now, sleep)
    }

    /// This machine's counter, clock and sleep.
    public static let system = FreePageReporting(
        readKiB: {
            guard let text = try? String(contentsOfFile: counterPath, encoding: .utf8) else { return nil }
            return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        },
        now: { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 },
        sleep: { usleep(UInt32($0 * 1e6)) })

    /// Polls the counter until it has not changed for `quiet` seconds, or `limit` seconds have passed.
    /// Nil when there is no counter to read.
    public func settle(quiet: Double = quietSeconds, limit: Double = limitSeconds, poll: Double = 0.1) -> Wait? {
        guard let first = readKiB() else { return nil }
        let start = now()
        var (last, lastChange) = (first, start)
        while true {
            let t = now()
            if t - lastChange >= quiet { return Wait(seconds: t - start, reportedKiB: last - first, timedOut: false) }
            if t - start >= limit { return Wait(seconds: t - start, reportedKiB: last - first, timedOut: true) }
            sleep(poll)
            guard let value = readKiB() else { return Wait(seconds: now() - start, reportedKiB: last - first, timedOut: false) }
            if value != last { (last, lastChange) = (value, now()) }
        }
    }

    /// After a release of `bytes`: settles if the release was large enough to matter, and says so on
    /// stderr (unless `quiet`) so that the wait is not a mystery.
    public func settle(afterReleasing bytes: Int, what: String, quiet: Bool) {
        guard bytes >= Self.minimumBytes, let wait = settle() else { return }
        guard !quiet else { return }
        let mib = Double(wait.reportedKiB) / 1024
        let outcome = wait.timedOut ? "gave up after" : "waited"
        FileHandle.standardError.write(Data(String(
            format: "note: %@ %.1f s for freed memory to be reported to the hypervisor after releasing %@ (%.0f MiB reported), so that no timed iteration runs during it\n",
            outcome, wait.seconds, what, mib).utf8))
    }
}
