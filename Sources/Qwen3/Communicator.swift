// Communicator.swift — the collectives tensor parallelism needs; over one process they cost nothing.

/// Collective operations over the processes that share one model.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Element-wise sum of `count` floats across every rank, result on every rank, in place.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Waits until every rank arrives.
    func barrier()
}

/// The communicator of a run that is one process: every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func barrier() {}
}
