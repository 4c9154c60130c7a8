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
            swiglu = isa == .avx512 ? ck_swiglu_f32_avx512 : ck_swiglu_f32_avx2
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

    /// Writes rows `rows` of a weight W[N, K] to dst (rows.count, K) as float32 in checkpoint
    /// layout, refusing NaN and infinity: where `prepare` and `rows` read a weight from.
    typealias WeightRows = (_ rows: Range<Int>, _ dst: UnsafeMutablePointer<Float>) throws -> Void

    /// Lays out a linear layer's weight W[N, K] the way `matmul` reads it: `rows(...)`, packed for
    /// the ISA's micro-kernels unless baseline.
    func prepare(outFeatures n: Int, inFeatures k: Int, scratch: WeightScratch, rows: WeightRows) throws -> WeightStorage {
        try layout(outFeatures: n, inFeatures: k, packed: isa != .baseline, scratch: scratch, rows: rows)
    }

    /// W[N, K] in `precision`'s elements, row-major, unpacked: what baseline multiplies and what an
    /// embedding table of its own holds. bf16 rounds to nearest even (exact for a bf16 checkpoint:
    /// bf16 -> f32 -> bf16 round-trips); q8_0 / q4_0 are GGUF blocks, which need whole blocks of 32
    /// along K: a layer whose input dimension is not a multiple of 32 (a small test model, an o_proj
    /// shard of heads narrower than 32) keeps float32 weights and the ISA's float32 matmul, exact
    /// where it cannot be blocked (`Linear.apply` picks the matmul from the storage).
    func rows(outFeatures n: Int, inFeatures k: Int, scratch: WeightScratch, rows: WeightRows) throws -> WeightStorage {
        try layout(outFeatures: n, inFeatures: k, packed: false, scratch: scratch, rows: rows)
    }

    /// `rows(...)`, packed or not, made `scratch.chunkRows` output rows at a time: a chunk is read
    /// into the scratch's float32 rows, rounded or quantized into its halves or blocks, and written
    /// at its place in the final buffer, so no temporary holds the whole tensor (the tied lm_head of
    /// Qwen3-0.6B took 622 MB of float32 and up to 311 MB of halves or blocks). Every packed layout
    /// is panel-major with panels of 32 rows (CK_Q_NR, CK_BF16_NR, CK_AVX512_NR) or 16
    /// (CK_AVX2_NR), a panel's bytes independent of N: a chunk starting at row r, a multiple of 32,
    /// packed at size(r, K) writes the bytes the whole tensor's pack writes there, and only the
    /// last chunk pads its last panel, as the whole tensor's pack does.
    private func layout(outFeatures n: Int, inFeatures k: Int, packed: Bool, scratch: WeightScratch,
                        rows read: WeightRows) throws -> WeightStorage {
        let quantized = precision.isQuantized && k % precision.blockSize == 0
        if !quantized, precision != .bf16, !packed {  // float32 rows are the weight itself
            let w = try FloatBuffer(count: n * k)
            try read(0..<n, w.pointer)
            return .f32(w)
        }
        let storage: WeightStorage
        let write: (UnsafeMutablePointer<Float>, Range<Int>) throws -> Void  // (a chunk's float32 rows, their rows of W)
        if quantized {
            let q8 = precision == .q8_0
            let rowBytes = k / Int(CK_QK) * Int(q8 ? CK_Q8_0_BLOCK_BYTES : CK_Q4_0_BLOCK_BYTES)
            let quantize = q8 ? ck_quantize_q8_0 : ck_quantize_q4_0
            if packed {
                let (size, pack) = q8 ? (ck_pack_q8_0_size, ck_pack_q8_0) : (ck_pack_q4_0_size, ck_pack_q4_0)
                let out = try AlignedBuffer<UInt8>(count: size(n, k))
                write = { src, rows in
                    let blocks = try scratch.bytes(rows.count * rowBytes)
                    quantize(src, blocks, rows.count, k)
                    pack(blocks, out.pointer + size(rows.lowerBound, k), rows.count, k)
                }
                storage = .quantized(out)
            } else {
                let out = try AlignedBuffer<UInt8>(count: n * rowBytes)
                write = { src, rows in quantize(src, out.pointer + rows.lowerBound * rowBytes, rows.count, k) }
                storage = .quantized(out)
            }
        } else if precision == .bf16 {
            if packed {
                let out = try BFloat16Buffer(count: ck_pack_bf16_size(n, k))
                write = { src, rows in
                    let halves = try scratch.bytes(rows.count * k * 2).assumingMemoryBound(to: UInt16.self)
                    ck_convert_f32_to_bf16(src, halves, rows.count * k)
                    ck_pack_bf16(halves, out.pointer + ck_pack_bf16_size(rows.lowerBound, k), rows.count, k)
                }
                storage = .bf16(out)
            } else {
                let out = try BFloat16Buffer(count: n * k)
                write = { src, rows in ck_convert_f32_to_bf16(src, out.pointer + rows.lowerBound * k, rows.count * k) }
                storage = .bf16(out)
            }
        } else {  // float32, packed for avx2 or avx512
            let (size, pack) = isa == .avx512 ? (ck_pack_f32_avx512_size, ck_pack_f32_avx512)
                                              : (ck_pack_f32_avx2_size, ck_pack_f32_avx2)
            let out = try FloatBuffer(count: size(n, k))
            write = { src, rows in pack(src, out.pointer + size(rows.lowerBound, k), rows.count, k) }
            storage = .f32(out)
        }
        let chunk = scratch.chunkRows(inFeatures: k)
        for start in stride(from: 0, to: n, by: chunk) {
            let rows = start ..< min(n, start + chunk)
            let src = try scratch.floats(rows.count * k)
            try read(rows, src)
            try write(src, rows)
        }
        return storage
    }
}

/// The reusable buffers a load prepares weights through, a chunk of output rows at a time: the
/// chunk's float32 rows and their bf16 halves or q8_0 / q4_0 blocks. Whole-tensor temporaries
/// (hundreds of MB for an lm_head) were returned to the OS when freed, and this VM's free page
/// reporting hands such memory to the host about 2 s later, stalling the vCPUs while the first
/// timed iterations after the load ran.
final class WeightScratch {
    /// 4 MiB of float32 rows: chunks big enough that the converters and packers run in parallel
    /// with little overhead, small next to any layer of a real model.
    static let defaultChunkFloats = 1 << 20
    /// Float32 elements a chunk holds at most, unless 32 rows are more.
    let chunkFloats: Int
    private var floatRows: FloatBuffer?
    private var converted: AlignedBuffer<UInt8>?

    init(chunkFloats: Int = defaultChunkFloats) { self.chunkFloats = chunkFloats }

    /// Output rows per chunk of a weight with `k` inputs: a multiple of 32 (the panel height of every
    /// packed layout, so each chunk starts on a panel), at least 32.
    func chunkRows(inFeatures k: Int) -> Int { max(32, chunkFloats / max(k, 1) / 32 * 32) }

    /// Room for `count` float32 values, kept for the next chunk.
    func floats(_ count: Int) throws -> UnsafeMutablePointer<Float> {
        if let b = floatRows, b.count >= count { return b.pointer }
        floatRows = nil
        floatRows = try FloatBuffer(count: count)
        return floatRows!.pointer
    }

    /// Room for `count` bytes of halves or blocks, kept for the next chunk.
    func bytes(_ count: Int) throws -> UnsafeMutableRawPointer {
        if let b = converted, b.count >= count { return UnsafeMutableRawPointer(b.pointer) }
        converted = nil
        converted = try AlignedBuffer<UInt8>(count: count)
        return UnsafeMutableRawPointer(converted!.pointer)
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
