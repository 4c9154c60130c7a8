// Work.swift — floating-point operations of a test, counted from the model's configuration.
import Qwen3

/// FLOPs of one timed iteration, the whole model over all ranks (what a single process would do).
/// Counted: every matmul as 2 x its multiply-adds (q/k/v, o_proj, gate/up, down per token and
/// layer; lm_head once per logits row: the last prompt position in prefill, every decode step) and
/// causal attention, 4 x head_dim per query head per (query, visible key) pair (QK^T and PV).
/// Not counted: norms, RoPE, SiLU, residual adds and softmax, below 1% at these shapes.
/// For Qwen3-0.6B the matmuls alone are 0.88 GFLOP per token (2 x 0.44 G weights without the embedding).
enum Work {
    /// Matmul FLOPs of one token through every layer, lm_head excluded.
    static func linearPerToken(_ c: Qwen3Config) -> Double {
        let h = Double(c.hiddenSize), q = Double(c.numHeads * c.headDim), kv = Double(c.numKVHeads * c.headDim)
        let perLayer = h * (q + 2 * kv) + q * h + 3 * h * Double(c.intermediateSize)
        return 2 * perLayer * Double(c.numLayers)
    }

    /// Attention FLOPs of one query at position `position` (it sees position + 1 keys), every layer.
    static func attention(_ c: Qwen3Config, position: Int) -> Double {
        4 * Double(c.numHeads * c.headDim) * Double(position + 1) * Double(c.numLayers)
    }

    static func lmHead(_ c: Qwen3Config) -> Double { 2 * Double(c.hiddenSize) * Double(c.vocabSize) }

    /// A prefill of `tokens` tokens from position 0, logits of the last one only.
    static func prefill(_ c: Qwen3Config, tokens: Int) -> Double {
        let n = Double(tokens), layers = Double(c.numLayers)
        // Sum over positions p < n of 4 * heads * head_dim * (p + 1) = 2 * heads * head_dim * n * (n + 1).
        return n * linearPerToken(c) + lmHead(c) + 2 * Double(c.numHeads * c.headDim) * n * (n + 1) * layers
    }

    /// `steps` single-token decode steps after a prompt of `prompt` tokens.
    static func decode(_ c: Qwen3Config, prompt: Int, steps: Int) -> Double {
        (0..<steps).reduce(0) { $0 + linearPerToken(c) + lmHead(c) + attention(c, position: prompt + $1) }
    }
}
