// AttentionKernels.swift — causal GQA attention over a KV cache, as the model and the attention
// benchmark both call it: one kernel choice per ISA, scratch sized here.
import CKernels

/// The attention kernels of one ISA path (those of the dispatch table in Kernels.swift).
public struct AttentionKernels {
    public let isa: KernelISA
    let kernels: Kernels

    public init(_ isa: KernelISA) throws {
        self.isa = isa
        kernels = try Kernels(isa)
    }

    init(kernels: Kernels) {
        isa = kernels.isa
        self.kernels = kernels
    }

    /// Floats of scratch `run` needs for up to `tokens` queries after `pos0` cached positions, with
    /// `group` query heads per KV head and `slots` threads.
    public static func scratchFloats(_ kind: AttentionKind, tokens: Int, pos0: Int, headDim: Int, group: Int,
                                     slots: Int) -> Int {
        switch kind {
        case .standard:
            return ck_attention_standard_scratch(tokens, pos0, Int32(slots))
        case .streaming(let qBlock, let kvBlock):
            return ck_attention_streaming_scratch(qBlock * group, kvBlock, headDim, Int32(slots))
        }
    }

    /// out (tokens, heads, headDim) = causal attention of q (tokens, heads, headDim) at positions
    /// pos0 ..< pos0+tokens over keys and values (kvHeads, capacity, headDim) filled up to
    /// pos0+tokens. Query head h reads KV head h / (heads / kvHeads). A streaming tile is `qBlock`
    /// tokens of every query head of a KV head's group: the kernels count its rows, qBlock x group.
    public func run(_ kind: AttentionKind, q: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                    values: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, tokens: Int, pos0: Int,
                    heads: Int, kvHeads: Int, headDim: Int, capacity: Int, scale: Float,
                    scratch: UnsafeMutablePointer<Float>, slots: Int) {
        switch kind {
        case .standard:
            kernels.standardAttention(q, keys, values, out, tokens, pos0, heads, kvHeads, headDim, capacity,
                                      scale, scratch, Int32(slots))
        case .streaming(let qBlock, let kvBlock):
            kernels.streamingAttention(q, keys, values, out, tokens, pos0, heads, kvHeads, headDim, capacity,
                                       scale, qBlock * (heads / kvHeads), kvBlock, scratch, Int32(slots))
        }
    }
}
