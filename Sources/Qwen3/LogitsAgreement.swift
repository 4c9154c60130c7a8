// LogitsAgreement.swift — how far a lossy path's logits are from the f32 path's: the figures every
// lossy format reports (max |Δlogit|, KL divergence of the next-token distribution, top-1 agreement).

import Foundation

/// The agreement of `rows` rows of logits (rows, vocab) with reference rows of the same shape.
public struct LogitsAgreement: CustomStringConvertible {
    public let rows: Int
    /// Largest |logit - reference logit| over every row and token.
    public let maxAbsDiff: Double
    /// KL(reference softmax || softmax) per row, in nats: mean and largest.
    public let meanKL: Double, maxKL: Double
    /// Rows whose argmax is the reference's.
    public let top1Agreeing: Int
    /// Rows whose reference top-1 leads its top-2 by more than 2 maxAbsDiff: no error that small can
    /// change their argmax, so each of them must agree.
    public let top1Decided: Int, top1DecidedAgreeing: Int

    /// Throws when the two are not rows of `vocab` logits of one shape.
    public init(_ logits: some Collection<Float>, reference: some Collection<Float>, vocab: Int) throws {
        let a = Array(logits), b = Array(reference)
        guard a.count == b.count, vocab > 0, a.count % vocab == 0, !a.isEmpty else {
            throw RequestError("cannot compare \(a.count) logits with \(b.count) in rows of \(vocab)")
        }
        rows = a.count / vocab
        var maxDiff = 0.0
        for i in 0..<a.count { maxDiff = Swift.max(maxDiff, Double(abs(a[i] - b[i]))) }
        maxAbsDiff = maxDiff
        var klSum = 0.0, klMax = 0.0, agree = 0, decided = 0, decidedAgree = 0
        for r in 0..<rows {
            let x = a[(r * vocab)..<((r + 1) * vocab)].map(Double.init)
            let y = b[(r * vocab)..<((r + 1) * vocab)].map(Double.init)
            let (lx, ly) = (Self.logSoftmax(x), Self.logSoftmax(y))
            var kl = 0.0
            for v in 0..<vocab { kl += exp(ly[v]) * (ly[v] - lx[v]) }
            kl = Swift.max(kl, 0)  // non-negative; a sum of tiny terms can round below 0
            klSum += kl
            klMax = Swift.max(klMax, kl)
            let top = Self.argmax(y), mine = Self.argmax(x)
            if top == mine { agree += 1 }
            let second = y.indices.filter { $0 != top }.map { y[$0] }.max() ?? -.infinity
            if y[top] - second > 2 * maxDiff {
                decided += 1
                if top == mine { decidedAgree += 1 }
            }
        }
        (meanKL, maxKL, top1Agreeing, top1Decided, top1DecidedAgreeing) = (klSum / Double(rows), klMax, agree, decided, decidedAgree)
    }

    private static func argmax(_ x: [Double]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return best
    }

    private static func logSoftmax(_ x: [Double]) -> [Double] {
        let m = x.max() ?? 0
        let z = log(x.reduce(0) { $0 + exp($1 - m) })
        return x.map { $0 - m - z }
    }

    public var description: String {
        let f = { (x: Double) in String(format: "%.3g", x) }
        return "max |Δlogit| \(f(maxAbsDiff)), KL mean \(f(meanKL)) max \(f(maxKL)) nats, top-1 \(top1Agreeing)/\(rows) rows"
    }
}
