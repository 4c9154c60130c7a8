// Profile.swift — time per operation class of the forward pass, when asked for; free when not.
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

/// Accumulated nanoseconds and floating-point operations per operation class.
public final class OpProfile {
    public private(set) var nanoseconds: [ProfiledOp: UInt64] = [:]
    public private(set) var flops: [ProfiledOp: Double] = [:]

    public init() {}

    @inline(__always)
    func measure(_ op: ProfiledOp, flops work: Double = 0, _ body: () -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        nanoseconds[op, default: 0] += DispatchTime.now().uptimeNanoseconds - start
        flops[op, default: 0] += work
    }

    public var totalNanoseconds: UInt64 { nanoseconds.values.reduce(0, +) }
}
