// Accuracy.swift — --accuracy: how far a lossy path's logits are from the float32 path's on the
// same checkpoint and tokens (the figures llama-perplexity --kl-divergence gives).
import Foundation

/// Logits of one run against the float32 run's, position by position.
struct LogitAgreement {
    /// Largest |logit - f32 logit| over every position and vocabulary entry.
    let maxAbsDiff: Double
    /// Mean over positions of KL(p_f32 || p): the next-token distributions, in nats.
    let klMean: Double
    /// Fraction of positions whose most likely token is the float32 run's.
    let top1Agreement: Double

    /// reference, logits: (positions, vocab), row-major.
    init(reference: [Float], logits: [Float], vocab: Int) {
        let positions = reference.count / vocab
        var maxDiff = 0.0, kl = 0.0, agree = 0
        for t in 0..<positions {
            let p = reference[(t * vocab)..<((t + 1) * vocab)], q = logits[(t * vocab)..<((t + 1) * vocab)]
            for (a, b) in zip(p, q) { maxDiff = max(maxDiff, abs(Double(a) - Double(b))) }
            let lp = Self.logSoftmax(p), lq = Self.logSoftmax(q)
            // KL >= 0; nearly one-hot rows can sum to a rounding-sized negative value.
            kl += max(0, zip(lp, lq).reduce(0.0) { $0 + exp($1.0) * ($1.0 - $1.1) })
            if p.indices.max(by: { p[$0] < p[$1] }) == q.indices.max(by: { q[$0] < q[$1] }) { agree += 1 }
        }
        maxAbsDiff = maxDiff
        klMean = kl / Double(max(positions, 1))
        top1Agreement = Double(agree) / Double(max(positions, 1))
    }

    static func logSoftmax(_ x: ArraySlice<Float>) -> [Double] {
        let m = Double(x.max() ?? 0)
        let lse = m + log(x.reduce(0.0) { $0 + exp(Double($1) - m) })
        return x.map { Double($0) - lse }
    }

    var json: [String: Any] {
        ["max_abs_dlogit": maxAbsDiff, "kl_mean": klMean, "top1_agreement": top1Agreement]
    }
}
