// AttentionKernels.swift — causal GQA attention over a KV cache, as the model and the attention
// benchmark both call it: one kernel choice per ISA, scratch sized here, and the partial softmax
// states (with their merge) that join attention split over a cache's keys.
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
    /// pos0+tokens, of Float or (kv: .bf16) bfloat16 elements. Query head h reads KV head
    /// h / (heads / kvHeads). A streaming tile is `qBlock` tokens of every query head of a KV
    /// head's group: the kernels count its rows, qBlock x group. A bf16 cache needs
    /// `isa.check(weights:kv: .bf16)` to have passed.
    public func run(_ kind: AttentionKind, q: UnsafePointer<Float>, keys: UnsafeRawPointer,
                    values: UnsafeRawPointer, kv: KVPrecision = .f32, out: UnsafeMutablePointer<Float>,
                    tokens: Int, pos0: Int, heads: Int, kvHeads: Int, headDim: Int, capacity: Int,
                    scale: Float, scratch: UnsafeMutablePointer<Float>, slots: Int) {
        let (k32, v32) = (keys.assumingMemoryBound(to: Float.self), values.assumingMemoryBound(to: Float.self))
        let (k16, v16) = (keys.assumingMemoryBound(to: UInt16.self), values.assumingMemoryBound(to: UInt16.self))
        switch (kind, kv) {
        case (.standard, .f32):
            kernels.standardAttention(q, k32, v32, out, tokens, pos0, heads, kvHeads, headDim, capacity,
                                      scale, scratch, Int32(slots))
        case (.standard, .bf16):
            kernels.standardAttentionBF16(q, k16, v16, out, tokens, pos0, heads, kvHeads, headDim, capacity,
                                          scale, scratch, Int32(slots))
        case (.streaming(let qBlock, let kvBlock), .f32):
            kernels.streamingAttention(q, k32, v32, out, tokens, pos0, heads, kvHeads, headDim, capacity,
                                       scale, qBlock * (heads / kvHeads), kvBlock, scratch, Int32(slots))
        case (.streaming(let qBlock, let kvBlock), .bf16):
            kernels.streamingAttentionBF16(q, k16, v16, out, tokens, pos0, heads, kvHeads, headDim, capacity,
                                           scale, qBlock * (heads / kvHeads), kvBlock, scratch, Int32(slots))
        }
    }

    /// The instruction set `kind`'s kernel really runs for tiles of `tokens` tokens with `group`
    /// query heads per KV head and head size `headDim`: the AVX-512 streaming kernel computes
    /// tiles of fewer than CK_ATTENTION_AVX512_MIN_ROWS query rows (decode with a small group)
    /// with its row-major decode tile for head size CK_ATTENTION_AVX512_ROWS_D, and hands them to
    /// the AVX2 tile for other head sizes, on either cache (over bf16, the tile that widens the
    /// cache to f32).
    public func instructionSet(_ kind: AttentionKind, tokens: Int, group: Int, headDim: Int) -> KernelISA {
        guard isa == .avx512, case .streaming(let qBlock, _) = kind else { return isa }
        let fewRows = Swift.min(tokens, qBlock) * group < Int(CK_ATTENTION_AVX512_MIN_ROWS)
        return fewRows && headDim != Int(CK_ATTENTION_AVX512_ROWS_D) ? .avx2 : .avx512
    }

    /// Floats of one partial state (tokens, heads, headDim + 2): per query row the unnormalised
    /// output, then the running max m and the denominator l.
    public static func stateFloats(tokens: Int, heads: Int, headDim: Int) -> Int {
        ck_attention_state_floats(tokens * heads, headDim)
    }

    /// state (tokens, heads, headDim + 2) of q (tokens, heads, headDim) at positions pos0 ..< pos0+tokens
    /// over the cache positions `keys` (cut by causality) of keys and values (kvHeads, capacity,
    /// headDim), computed by the streaming tiles of this ISA; scratch as `scratchFloats(.streaming)`.
    public func partial(q: UnsafePointer<Float>, keys: UnsafeRawPointer, values: UnsafeRawPointer,
                        kv: KVPrecision = .f32, keyRange: Range<Int>, state: UnsafeMutablePointer<Float>,
                        tokens: Int, pos0: Int, heads: Int, kvHeads: Int, headDim: Int, capacity: Int,
                        scale: Float, qBlock: Int, kvBlock: Int, scratch: UnsafeMutablePointer<Float>, slots: Int) {
        let rows = qBlock * (heads / kvHeads), (lo, hi) = (keyRange.lowerBound, keyRange.upperBound)
        switch kv {
        case .f32:
            kernels.partialAttention(q, keys.assumingMemoryBound(to: Float.self), values.assumingMemoryBound(to: Float.self),
                                     state, tokens, pos0, heads, kvHeads, headDim, capacity, scale, lo, hi, rows,
                                     kvBlock, scratch, Int32(slots))
        case .bf16:
            kernels.partialAttentionBF16(q, keys.assumingMemoryBound(to: UInt16.self),
                                         values.assumingMemoryBound(to: UInt16.self), state, tokens, pos0, heads,
                                         kvHeads, headDim, capacity, scale, lo, hi, rows, kvBlock, scratch, Int32(slots))
        }
    }

    /// out (rows, headDim) = the attention joined from `parts` states (parts, rows, headDim + 2) over
    /// disjoint key sets; rows = tokens x heads.
    public static func merge(states: UnsafePointer<Float>, parts: Int, rows: Int, headDim: Int,
                             out: UnsafeMutablePointer<Float>) {
        ck_attention_merge_f32(states, parts, rows, headDim, out)
    }
}
