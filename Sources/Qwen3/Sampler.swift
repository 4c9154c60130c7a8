// Sampler.swift — the next token from logits: greedy, or temperature, top-k and top-p with a seed.
import Foundation

/// Chooses tokens. Temperature 0 is greedy (the first largest logit, as argmax). Otherwise the
/// logits are divided by the temperature, cut to the k largest (k = 0: all), then to the smallest
/// set whose probability reaches top-p (at least one token), and one is drawn from what is left,
/// renormalised, with SplitMix64: the same seed and logits give the same tokens.
public struct Sampler {
    public let temperature: Float
    public let topK: Int
    public let topP: Float
    private var generator: SplitMix64

    public init(temperature: Float, topK: Int, topP: Float, seed: UInt64) throws {
        guard temperature.isFinite, temperature >= 0 else { throw RequestError("--temperature must be 0 or more, got \(temperature)") }
        guard topK >= 0 else { throw RequestError("--top-k must be 0 (no limit) or more, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw RequestError("--top-p must be in (0, 1], got \(topP)") }
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        generator = SplitMix64(seed: seed)
    }

    public var isGreedy: Bool { temperature == 0 }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        if isGreedy { return Self.argmax(logits) }
        var order = Array(0..<logits.count)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if topK > 0 && topK < order.count { order.removeLast(order.count - topK) }
        let top = Double(logits[order[0]])
        var weights = order.map { exp((Double(logits[$0]) - top) / Double(temperature)) }
        let total = weights.reduce(0, +)
        var kept = 0, cumulative = 0.0
        while kept < weights.count {
            cumulative += weights[kept] / total
            kept += 1
            if cumulative >= Double(topP) { break }
        }
        weights.removeLast(weights.count - kept)
        let draw = Double(generator.next() >> 11) / Double(1 << 53) * weights.reduce(0, +)
        var sum = 0.0
        for (i, w) in weights.enumerated() {
            sum += w
            if draw < sum { return Int32(order[i]) }
        }
        return Int32(order[kept - 1])
    }

    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }
}
