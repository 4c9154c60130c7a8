// Statistics.swift — summary statistics of per-iteration times, and the clock that takes them.
import Foundation

/// Per-iteration times in milliseconds, after warm-up, and their summary.
public struct Statistics {
    public let samples: [Double]
    public init(samples: [Double]) { self.samples = samples }

    public var total: Double { samples.reduce(0, +) }
    public var mean: Double { samples.isEmpty ? 0 : total / Double(samples.count) }
    public var median: Double {
        let sorted = samples.sorted(), n = sorted.count
        if n == 0 { return 0 }
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
    /// Sample standard deviation (n - 1 in the denominator); 0 for fewer than two samples.
    public var stddev: Double {
        guard samples.count > 1 else { return 0 }
        let m = mean
        return (samples.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(samples.count - 1)).squareRoot()
    }
    public var min: Double { samples.min() ?? 0 }
    public var max: Double { samples.max() ?? 0 }

    /// The summary under the keys every JSON row uses.
    public var json: [String: Any] {
        ["samples_ms": samples, "total_ms": total, "median_ms": median, "mean_ms": mean,
         "stddev_ms": stddev, "min_ms": min, "max_ms": max]
    }
}

/// A monotonic clock in nanoseconds.
public enum Clock {
    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    public static func ms(_ a: UInt64, _ b: UInt64) -> Double { Double(b - a) / 1e6 }
}
