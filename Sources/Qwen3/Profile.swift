// Profile.swift — time, FLOPs and bytes moved per operation class of the forward pass, when asked for;
// free when not. The FLOPs and bytes come from CostModel.swift.
import Foundation

/// The operation classes a forward pass is timed by.
public enum ProfiledOp: String, CaseIterable, Sendable {
    case embedding
    case norms = "rmsnorm (input, q/k, final)"
    case qkv = "gemm q/k/v"
    case rope
    case kvCache = "kv cache store"
    case kvExchange = "mpi k/v all-gather + store"
    case attention
    case oProj = "gemm o_proj"
    case gateUp = "gemm gate/up"
    case silu = "silu * up"
    case down = "gemm down"
    case residual = "residual add"
    case allReduce = "mpi all-reduce"
    case lmHead = "gemm lm_head"
    case gather = "mpi logits gather"

    var isGEMM: Bool { [.qkv, .oProj, .gateUp, .down, .lmHead].contains(self) }
}

/// Accumulated nanoseconds, floating-point operations and bytes moved per operation class.
///
/// Bytes are the traffic an operation cannot avoid, counted once (caches and re-reads not modelled),
/// so bytes / time is the bandwidth it achieved against that minimum:
/// - GEMMs: the weight storage of every shard applied (f32 or bf16, bias included), plus the
///   activations read and written, rows x (in + out features) x 4.
/// - rmsnorm, RoPE, silu * up, residual add, kv cache store, embedding: every float read plus every
///   float written, x 4 (norm weights and the rows of the cos/sin tables included).
/// - attention: the keys and values visible to the last query of each run of rows, read once
///   (keys x kv heads x head_dim x 4 x 2), plus the queries read and the output written.
/// - MPI all-reduce, all-gathers and the k/v exchange: the payload this rank hands to the
///   collective (as CommunicationStatistics counts it); nothing when it spans one process.
public final class OpProfile {
    public private(set) var nanoseconds: [ProfiledOp: UInt64] = [:]
    public private(set) var flops: [ProfiledOp: Double] = [:]
    public private(set) var bytes: [ProfiledOp: Double] = [:]

    public init() {}

    @inline(__always)
    func measure(_ op: ProfiledOp, cost: OpCost, _ body: () -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        nanoseconds[op, default: 0] += DispatchTime.now().uptimeNanoseconds - start
        flops[op, default: 0] += cost.flops
        bytes[op, default: 0] += cost.bytes
    }

    public var totalNanoseconds: UInt64 { nanoseconds.values.reduce(0, +) }
}
