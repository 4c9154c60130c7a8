// Communicator.swift — the collectives tensor parallelism needs; over one process they cost nothing.

/// Time and volume spent in collectives since the communicator was created.
public struct CommunicationStatistics: Sendable {
    public var seconds: Double = 0
    /// Bytes this rank handed to collectives (the payload; the transport may move more or less).
    public var payloadBytes: Int = 0
    public var calls: Int = 0

    public init() {}

    public static func - (a: Self, b: Self) -> Self {
        var d = CommunicationStatistics()
        d.seconds = a.seconds - b.seconds
        d.payloadBytes = a.payloadBytes - b.payloadBytes
        d.calls = a.calls - b.calls
        return d
    }
}

/// Collective operations over the processes that share one model.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Element-wise sum of `count` floats across every rank, result on every rank, in place.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Every rank's `counts[rank]` floats, concatenated in rank order, on every rank.
    func allGather(_ send: UnsafePointer<Float>, into receive: UnsafeMutablePointer<Float>, counts: [Int])
    /// Every rank's `counts[rank]` bytes, concatenated in rank order, on every rank (a bf16 cache's rows).
    func allGather(bytes send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int])
    /// Every rank's `values` (the same count on each), concatenated in rank order, on every rank.
    func allGather(_ values: [Double]) -> [Double]
    /// Element-wise maximum over ranks.
    func max(_ values: [Double]) -> [Double]
    /// Waits until every rank arrives.
    func barrier()
    /// Collective check after a step that may fail on some ranks only: nil if every rank passed,
    /// else the message of the lowest failing rank, on every rank. Keeps ranks from waiting
    /// forever in a later collective for a rank that has already given up.
    func firstFailure(_ message: String?) -> (rank: Int, message: String)?
    var statistics: CommunicationStatistics { get }
}

/// The communicator of a run that is one process: every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allGather(_ send: UnsafePointer<Float>, into receive: UnsafeMutablePointer<Float>, counts: [Int]) {
        if send != UnsafePointer(receive) { receive.update(from: send, count: counts[0]) }
    }
    public func allGather(bytes send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int]) {
        if send != UnsafeRawPointer(receive) { receive.copyMemory(from: send, byteCount: counts[0]) }
    }
    public func allGather(_ values: [Double]) -> [Double] { values }
    public func max(_ values: [Double]) -> [Double] { values }
    public func barrier() {}
    public func firstFailure(_ message: String?) -> (rank: Int, message: String)? { message.map { (0, $0) } }
    public var statistics: CommunicationStatistics { CommunicationStatistics() }
}
