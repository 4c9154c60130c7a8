// Kernels.swift — the dispatch table: a method picks one set of C kernels; the forward pass is shared.
import CKernels

/// The instruction-set path a run uses for its kernels.
public enum KernelISA: String, CaseIterable, Sendable {
    /// Plain C loops with OpenMP (the `baseline` and `mpi` methods).
    case baseline
    /// AVX2 + FMA intrinsics with packed weights (the `avx2` and `mpi+avx2` methods).
    case avx2
    /// AVX-512 matmul and attention; the other ops use their AVX2 kernels.
    case avx512

    /// Whether this CPU can run the path.
    public var isSupported: Bool {
        switch self {
        case .baseline: return true
        case .avx2: return ck_cpu_has_avx2_fma() != 0
        case .avx512: return ck_cpu_has_avx512() != 0 && ck_cpu_has_avx2_fma() != 0
        }
    }

    /// The fastest path this CPU supports.
    public static var fastestSupported: KernelISA {
        [.avx512, .avx2].first { $0.isSupported } ?? .baseline
    }

    /// The one check of kernel support: throws, in one line, when this CPU lacks the instructions of
    /// this path, or the path has no matmul for `weights` or no attention for a `kv` cache. The
    /// tools call it before a sweep starts; the kernel table calls it at load, a session at creation.
    public func check(weights: WeightPrecision, kv: KVPrecision = .f32) throws {
        guard isSupported else {
            let needs = self == .avx512 ? "AVX-512 (F, BW, VL)" : "AVX2 and FMA"
            throw RequestError("this CPU lacks the instructions for the \(rawValue) kernels (\(needs))")
        }
        if kv == .bf16, self == .avx512, ck_cpu_has_avx512_bf16() == 0 {
            throw RequestError("--kv-dtype bf16 with the avx512 kernels needs AVX512_BF16, which this CPU lacks; use --kv-dtype f32, or --method avx2 (which widens the bf16 cache to f32 on load)")
        }
        switch (self, weights) {
        case (.avx2, .bf16):
            throw RequestError("--weights bf16 has no AVX2 kernel (AVX2 lacks bfloat16 dot products); use --method avx512 (AVX512_BF16) or baseline, or --weights f32")
        case (.avx512, .bf16) where ck_cpu_has_avx512_bf16() == 0:
            throw RequestError("--weights bf16 with the avx512 kernels needs AVX512_BF16, which this CPU lacks; use --weights f32 or --method baseline")
        case (.avx512, .q8_0), (.avx512, .q4_0):
            if ck_cpu_has_avx512_vnni() == 0 {
                throw RequestError("--weights \(weights.rawValue) with the avx512 kernels needs AVX512_VNNI (vpdpbusd), which this CPU lacks; use --method avx2 (vpmaddubsw) or baseline")
            }
        default:
            return
        }
    }
}

/// How linear-layer weights are held and multiplied: float32; bfloat16 with the activations
/// rounded to bfloat16 at each matmul input and float32 sums; or GGUF's q8_0 / q4_0 blocks (32
/// weights along K with one float16 scale) with the activations quantized per block of 32 to int8
/// at each matmul input, exact int32 block sums and float32 scaling. Everything between matmuls
/// is float32.
public enum WeightPrecision: String, CaseIterable, Sendable {
    case f32, bf16, q8_0, q4_0

    /// Bytes a linear weight occupies in memory (a block's scale shared by its 32 weights).
    public var bytesPerWeight: Double {
        switch self {
        case .f32: return 4
        case .bf16: return 2
        case .q8_0: return Double(CK_Q8_0_BLOCK_BYTES) / Double(CK_QK)
        case .q4_0: return Double(CK_Q4_0_BLOCK_BYTES) / Double(CK_QK)
        }
    }

    public var isQuantized: Bool { self == .q8_0 || self == .q4_0 }

    /// Input dimensions a layer needs for this format: a multiple of the block (32) when
    /// quantized. A layer whose input dimension is not keeps float32 weights (see `Kernels.prepare`).
    public var blockSize: Int { isQuantized ? Int(CK_QK) : 1 }
}

/// How the KV cache holds keys and values: float32, or bfloat16 rounded to nearest even when
/// stored (half the bytes). On a bf16 cache the avx512 attention also rounds q and the softmax
/// weights to bf16 for vdpbf16ps (AVX512_BF16); avx2 widens the cache to f32 on load; baseline is
/// the plain-C reference of the avx512 rounding (ckernels.h).
public enum KVPrecision: String, CaseIterable, Sendable {
    case f32, bf16

    /// Bytes of one cached element.
    public var elementBytes: Int { self == .f32 ? 4 : 2 }
}

/// Attention algorithm and its tiling.
public enum AttentionKind: Equatable, Sendable {
    /// Scores materialised per head (T x context), softmax, times V.
    case standard
    /// Block-wise online softmax over `kvBlock` keys for `qBlock` query tokens (each with every
    /// query head of its KV head's group) at a time.
    case streaming(qBlock: Int, kvBlock: Int)

    /// Streaming tiles chosen by measurement, Qwen3-0.6B shapes (16/8 heads, head_dim 128), two
    /// threads: 32 tokens x 2 heads = 64 query rows against 512 keys. Against the 64 x 128 chosen
    /// when there were only float tiles, alternating call by call in one process (medians of
    /// paired ratios), 32 x 256 made the AVX512_BF16 tile 1.4-3.5% faster from S = 512 to 16384,
    /// the AVX-512 float tile 0.8-2.3%, the AVX2 one 0.5-2.8%; 512 keys instead of 256 then gained
    /// 1.3% more at S = 8192 (bf16), 0.3-0.4% at 2048, level at 512. 16 tokens were 1% slower
    /// than 32. Decode, through the row tiles, measured level or faster at each step.
    public static let defaultQBlock = 32
    public static let defaultKVBlock = 512

    public var name: String {
        if case .standard = self { return "standard" }
        return "streaming"
    }
}

/// A linear layer's weight in the layout its matmul kernel reads.
enum WeightStorage {
    case f32(FloatBuffer)
    case bf16(BFloat16Buffer)
    /// q8_0 or q4_0 blocks (the kernels' precision says which), packed unless baseline.
    case quantized(AlignedBuffer<UInt8>)

    var raw: UnsafeRawPointer {
        switch self {
        case .f32(let b): return UnsafeRawPointer(b.pointer)
        case .bf16(let b): return UnsafeRawPointer(b.pointer)
        case .quantized(let b): return UnsafeRawPointer(b.pointer)
        }
    }

    var byteCount: Int {
        switch self {
        case .f32(let b): return b.byteCount
        case .bf16(let b): return b.byteCount
        case .quantized(let b): return b.byteCount
        }
    }

    var isF32: Bool {
        if case .f32 = self { return true }
        return false
    }

    /// Whether this is `buffer` itself (a tied lm_head reading the embedding), not a copy.
    func isStorage(of buffer: FloatBuffer) -> Bool {
        if case .f32(let b) = self { return b === buffer }
        return false
    }
}

/// Function pointers for one ISA path and weight precision. Every op of the forward pass goes
/// through this table.
struct Kernels {
    typealias Matmul = (UnsafePointer<Float>, UnsafeRawPointer, UnsafeMutablePointer<Float>, Int, Int, Int) -> Void
    typealias RMSNorm = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                        UnsafeMutablePointer<Float>?, Int, Int, Float) -> Void
    typealias Rope = @convention(c) (UnsafeMutablePointer<Float>?, Int, Int, Int, UnsafePointer<Int32>?,
                                     UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void
    typealias RMSNormHeads = @convention(c) (UnsafePointer<Float>?, Int, UnsafePointer<Float>?,
                                             UnsafeMutablePointer<Float>?, Int, Int, Int, Float) -> Void
    typealias SwiGLU = @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int) -> Void
    typealias Add = @convention(c) (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) -> Void
    typealias StandardAttention = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias StreamingAttention = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, Int, Int, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias StandardAttentionBF16 = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<UInt16>?, UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias StreamingAttentionBF16 = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<UInt16>?, UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, Int, Int, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias PartialAttention = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, Int, Int, Int, Int, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias PartialAttentionBF16 = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<UInt16>?, UnsafePointer<UInt16>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, Int, Int, Int, Int, UnsafeMutablePointer<Float>?, Int32) -> Void

    let isa: KernelISA
    let precision: WeightPrecision
    /// The matmul of `precision`'s weights.
    let matmul: Matmul
    /// This ISA's float32 matmul: the same as `matmul` for f32, and for the layers a quantized
    /// model keeps in float32 (input dimension not a multiple of 32).
    let f32Matmul: Matmul
    let rmsnorm: RMSNorm
    let rope: Rope
    let rmsnormHeads: RMSNormHeads
    let swiglu: SwiGLU
    let add: Add
    let standardAttention: StandardAttention
    let streamingAttention: StreamingAttention
    /// Over a bf16 cache (only called once `isa.check(weights:kv: .bf16)` passed).
    let standardAttentionBF16: StandardAttentionBF16
    let streamingAttentionBF16: StreamingAttentionBF16
    /// The streaming tiles' partial softmax states over a key range, f32 and bf16 cache.
    let partialAttention: PartialAttention
    let partialAttentionBF16: PartialAttentionBF16

    init(_ isa: KernelISA, precision: WeightPrecision = .f32) throws {
        try isa.check(weights: precision)
        self.isa = isa
        self.precision = precision
        switch isa {
        case .baseline:
            f32Matmul = { ck_matmul_f32_ref($0, $1.assumingMemoryBound(to: Float.self), $2, $3, $4, $5) }
        case .avx2:
            f32Matmul = { ck_matmul_f32_avx2($0, $1.assumingMemoryBound(to: Float.self), $2, $3, $4, $5) }
        case .avx512:
            f32Matmul = { ck_matmul_f32_avx512($0, $1.assumingMemoryBound(to: Float.self), $2, $3, $4, $5) }
        }
        switch (isa, precision) {
        case (_, .f32):
            matmul = f32Matmul
        case (.baseline, .bf16):
            matmul = { ck_matmul_bf16_ref($0, $1.assumingMemoryBound(to: UInt16.self), $2, $3, $4, $5) }
        case (_, .bf16):  // avx512: check(weights:) refused avx2
            matmul = { ck_matmul_bf16_avx512($0, $1.assumingMemoryBound(to: UInt16.self), $2, $3, $4, $5) }
        case (.baseline, .q8_0): matmul = ck_matmul_q8_0_ref
        case (.baseline, .q4_0): matmul = ck_matmul_q4_0_ref
        case (.avx2, .q8_0): matmul = ck_matmul_q8_0_avx2
        case (.avx2, .q4_0): matmul = ck_matmul_q4_0_avx2
        case (.avx512, .q8_0): matmul = ck_matmul_q8_0_avx512
        case (.avx512, .q4_0): matmul = ck_matmul_q4_0_avx512
        }
        switch isa {
        case .baseline:
            rmsnorm = ck_rmsnorm_f32_ref
            rope = ck_rope_f32_ref
            rmsnormHeads = ck_rmsnorm_heads_f32_ref
            swiglu = ck_swiglu_f32_ref
            add = ck_add_f32_ref
            standardAttention = ck_attention_standard_f32_ref
            streamingAttention = ck_attention_streaming_f32_ref
            standardAttentionBF16 = ck_attention_standard_bf16_ref
            streamingAttentionBF16 = ck_attention_streaming_bf16_ref
            partialAttention = ck_attention_partial_f32_ref
            partialAttentionBF16 = ck_attention_partial_bf16_ref
        case .avx2, .avx512:
            rmsnorm = ck_rmsnorm_f32_avx2
            rope = ck_rope_f32_avx2
            rmsnormHeads = ck_rmsnorm_heads_f32_avx2
            swiglu = ck_swiglu_f32_avx2
            add = ck_add_f32_avx2
            standardAttention = isa == .avx512 ? ck_attention_standard_f32_avx512
                                               : ck_attention_standard_f32_avx2
            streamingAttention = isa == .avx512 ? ck_attention_streaming_f32_avx512
                                                : ck_attention_streaming_f32_avx2
            standardAttentionBF16 = isa == .avx512 ? ck_attention_standard_bf16_avx512
                                                   : ck_attention_standard_bf16_avx2
            streamingAttentionBF16 = isa == .avx512 ? ck_attention_streaming_bf16_avx512
                                                    : ck_attention_streaming_bf16_avx2
            partialAttention = isa == .avx512 ? ck_attention_partial_f32_avx512 : ck_attention_partial_f32_avx2
            partialAttentionBF16 = isa == .avx512 ? ck_attention_partial_bf16_avx512
                                                  : ck_attention_partial_bf16_avx2
        }
    }

    /// Lays out a linear layer's weight W[N, K] (float32, checkpoint layout) the way `matmul` reads it:
    /// `rows(...)`, packed for the ISA's micro-kernels unless baseline.
    func prepare(weight: FloatBuffer, outFeatures n: Int, inFeatures k: Int) throws -> WeightStorage {
        let rows = try rows(weight: weight, outFeatures: n, inFeatures: k)
        if isa == .baseline { return rows }
        switch rows {
        case .quantized(let blocks):
            let q8 = precision == .q8_0
            let packed = try AlignedBuffer<UInt8>(count: q8 ? ck_pack_q8_0_size(n, k) : ck_pack_q4_0_size(n, k))
            if q8 { ck_pack_q8_0(blocks.pointer, packed.pointer, n, k) } else { ck_pack_q4_0(blocks.pointer, packed.pointer, n, k) }
            return .quantized(packed)
        case .bf16(let halves):
            let packed = try BFloat16Buffer(count: ck_pack_bf16_size(n, k))
            ck_pack_bf16(halves.pointer, packed.pointer, n, k)
            return .bf16(packed)
        case .f32:
            return try prepareF32(weight: weight, outFeatures: n, inFeatures: k)
        }
    }

    /// W[N, K] in `precision`'s elements, row-major, unpacked: what baseline multiplies and what an
    /// embedding table of its own holds. bf16 rounds to nearest even (exact for a bf16 checkpoint:
    /// bf16 -> f32 -> bf16 round-trips); q8_0 / q4_0 are GGUF blocks, which need whole blocks of 32
    /// along K: a layer whose input dimension is not a multiple of 32 (a small test model, an o_proj
    /// shard of heads narrower than 32) keeps float32 weights and the ISA's float32 matmul, exact
    /// where it cannot be blocked (`Linear.apply` picks the matmul from the storage).
    func rows(weight: FloatBuffer, outFeatures n: Int, inFeatures k: Int) throws -> WeightStorage {
        if precision.isQuantized, k % precision.blockSize == 0 {
            let q8 = precision == .q8_0
            let blocks = try AlignedBuffer<UInt8>(count: n * k / Int(CK_QK) * Int(q8 ? CK_Q8_0_BLOCK_BYTES : CK_Q4_0_BLOCK_BYTES))
            if q8 { ck_quantize_q8_0(weight.pointer, blocks.pointer, n, k) } else { ck_quantize_q4_0(weight.pointer, blocks.pointer, n, k) }
            return .quantized(blocks)
        }
        if precision == .bf16 {
            let halves = try BFloat16Buffer(count: n * k)
            ck_convert_f32_to_bf16(weight.pointer, halves.pointer, n * k)
            return .bf16(halves)
        }
        return .f32(weight)
    }

    private func prepareF32(weight: FloatBuffer, outFeatures n: Int, inFeatures k: Int) throws -> WeightStorage {
        switch isa {
        case .baseline:
            return .f32(weight)
        case .avx2:
            let packed = try FloatBuffer(count: ck_pack_f32_avx2_size(n, k))
            ck_pack_f32_avx2(weight.pointer, packed.pointer, n, k)
            return .f32(packed)
        case .avx512:
            let packed = try FloatBuffer(count: ck_pack_f32_avx512_size(n, k))
            ck_pack_f32_avx512(weight.pointer, packed.pointer, n, k)
            return .f32(packed)
        }
    }
}

/// A linear layer's shard: y[M, N] = x[M, K] · W[N, K]^T (+ bias), W in the kernels' layout.
final class Linear {
    let outFeatures: Int
    let inFeatures: Int
    let weight: WeightStorage
    let bias: FloatBuffer?

    init(outFeatures: Int, inFeatures: Int, weight: WeightStorage, bias: FloatBuffer?) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.weight = weight
        self.bias = bias
    }

    /// Bytes of weight memory this shard occupies.
    var byteCount: Int { weight.byteCount + (bias?.byteCount ?? 0) }

    func apply(_ kernels: Kernels, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int) {
        if outFeatures == 0 { return }
        if inFeatures == 0 {  // an empty shard contributes nothing to the row-parallel sum
            y.update(repeating: 0, count: rows * outFeatures)
            return
        }
        let matmul = weight.isF32 ? kernels.f32Matmul : kernels.matmul
        matmul(x, weight.raw, y, rows, outFeatures, inFeatures)
        if let bias { ck_add_bias_f32(y, bias.pointer, rows, outFeatures) }
    }
}
