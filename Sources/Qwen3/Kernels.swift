// Kernels.swift — the dispatch table: a method picks one set of C kernels; the forward pass is shared.
import CKernels

/// The instruction-set path a run uses for its kernels.
public enum KernelISA: String, CaseIterable, Sendable {
    /// Plain C loops with OpenMP (the `baseline` and `mpi` methods).
    case baseline
    /// AVX2 + FMA intrinsics with packed weights (the `avx2` and `mpi+avx2` methods).
    case avx2

    /// Whether this CPU can run the path.
    public var isSupported: Bool {
        switch self {
        case .baseline: return true
        case .avx2: return ck_cpu_has_avx2_fma() != 0
        }
    }

    /// The fastest path this CPU supports.
    public static var fastestSupported: KernelISA { KernelISA.avx2.isSupported ? .avx2 : .baseline }
}

/// Attention algorithm and its tiling.
public enum AttentionKind: Equatable, Sendable {
    /// Scores materialised per head (T x context), softmax, times V.
    case standard
    /// Block-wise online softmax over `kvBlock` keys for `qBlock` queries at a time.
    case streaming(qBlock: Int, kvBlock: Int)

    public var name: String {
        if case .standard = self { return "standard" }
        return "streaming"
    }
}

/// Function pointers for one ISA path. Every op of the forward pass goes through this table.
struct Kernels {
    typealias Matmul = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                       UnsafeMutablePointer<Float>?, Int, Int, Int) -> Void
    typealias RMSNorm = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                        UnsafeMutablePointer<Float>?, Int, Int, Float) -> Void
    typealias Rope = @convention(c) (UnsafeMutablePointer<Float>?, Int, Int, Int, UnsafePointer<Int32>?,
                                     UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void
    typealias SiluMul = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                        UnsafeMutablePointer<Float>?, Int) -> Void
    typealias Add = @convention(c) (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) -> Void
    typealias StandardAttention = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias StreamingAttention = @convention(c) (
        UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
        Int, Int, Int, Int, Int, Int, Float, Int, Int, UnsafeMutablePointer<Float>?, Int32) -> Void

    let isa: KernelISA
    let matmul: Matmul
    let rmsnorm: RMSNorm
    let rope: Rope
    let siluMul: SiluMul
    let add: Add
    let standardAttention: StandardAttention
    let streamingAttention: StreamingAttention

    init(_ isa: KernelISA) throws {
        guard isa.isSupported else {
            throw RequestError("this CPU lacks the instructions for the \(isa.rawValue) kernels (AVX2 and FMA)")
        }
        self.isa = isa
        switch isa {
        case .baseline:
            matmul = ck_matmul_f32_ref
            rmsnorm = ck_rmsnorm_f32_ref
            rope = ck_rope_f32_ref
            siluMul = ck_silu_mul_f32_ref
            add = ck_add_f32_ref
            standardAttention = ck_attention_standard_f32_ref
            streamingAttention = ck_attention_streaming_f32_ref
        case .avx2:
            matmul = ck_matmul_f32_avx2
            rmsnorm = ck_rmsnorm_f32_avx2
            rope = ck_rope_f32_avx2
            siluMul = ck_silu_mul_f32_avx2
            add = ck_add_f32_avx2
            standardAttention = ck_attention_standard_f32_avx2
            streamingAttention = ck_attention_streaming_f32_avx2
        }
    }

    /// Lays out a linear layer's weight W[N, K] the way `matmul` reads it.
    func prepare(weight: FloatBuffer, outFeatures n: Int, inFeatures k: Int) -> FloatBuffer {
        switch isa {
        case .baseline:
            return weight
        case .avx2:
            let packed = FloatBuffer(count: ck_pack_f32_avx2_size(n, k))
            ck_pack_f32_avx2(weight.pointer, packed.pointer, n, k)
            return packed
        }
    }
}

/// A linear layer's shard: y[M, N] = x[M, K] · W[N, K]^T (+ bias), W in the kernels' layout.
final class Linear {
    let outFeatures: Int
    let inFeatures: Int
    let weight: FloatBuffer
    let bias: FloatBuffer?

    init(outFeatures: Int, inFeatures: Int, weight: FloatBuffer, bias: FloatBuffer?) {
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
        kernels.matmul(x, weight.pointer, y, rows, outFeatures, inFeatures)
        if let bias { ck_add_bias_f32(y, bias.pointer, rows, outFeatures) }
    }
}
