// RotaryTable.swift — cos/sin tables for rotary position embeddings, computed once per run.
import Foundation

/// cos and sin of position * inv_freq[i], shape (positions, head_dim / 2).
struct RotaryTable {
    let cos: FloatBuffer
    let sin: FloatBuffer

    /// Rounds as Hugging Face does (inv_freq and the angle in float32) so long prompts agree with
    /// the reference; the cosine itself is taken in double and rounded once.
    init(positions: Int, headDim: Int, theta: Double) throws {
        let half = headDim / 2
        cos = try FloatBuffer(count: positions * half)
        sin = try FloatBuffer(count: positions * half)
        let invFreq = (0..<half).map { i in Float(1.0 / Foundation.pow(theta, Double(2 * i) / Double(headDim))) }
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Double(Float(p) * invFreq[i])
                cos.pointer[p * half + i] = Float(Foundation.cos(angle))
                sin.pointer[p * half + i] = Float(Foundation.sin(angle))
            }
        }
    }
}
