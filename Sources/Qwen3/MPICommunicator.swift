// MPICommunicator.swift — the Communicator over Open MPI's MPI_COMM_WORLD.
import CMPI
import Foundation

/// MPI_COMM_WORLD. Create one per process, after which every rank must make the same sequence of
/// collective calls. MPI is finalised when the object is released.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public private(set) var statistics = CommunicationStatistics()
    private let world = cmpi_comm_world()

    public init() throws {
        var provided: Int32 = 0
        // FUNNELED: only the main thread calls MPI; OpenMP threads never do.
        if MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided) != MPI_SUCCESS {
            throw RequestError("MPI_Init_thread failed")
        }
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        rank = Int(r)
        size = Int(s)
    }

    deinit { MPI_Finalize() }

    /// Whether this process was started by Open MPI's launcher, and as which of how many.
    public static func launchedRanks(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> (rank: Int, size: Int, localSize: Int)? {
        guard let size = environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) else { return nil }
        let rank = environment["OMPI_COMM_WORLD_RANK"].flatMap(Int.init) ?? 0
        let local = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? size
        return (rank, size, local)
    }

    private func timed(bytes: Int, _ body: () -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        statistics.seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        statistics.payloadBytes += bytes
        statistics.calls += 1
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        timed(bytes: count * 4) {
            _ = MPI_Allreduce(cmpi_in_place(), buffer, Int32(count), cmpi_float(), cmpi_sum(), world)
        }
    }

    public func allGather(_ send: UnsafePointer<Float>, into receive: UnsafeMutablePointer<Float>, counts: [Int]) {
        assert(counts.count == size, "one count per rank")
        let counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + counts32[r - 1] }
        timed(bytes: counts[rank] * 4) {
            _ = MPI_Allgatherv(send, counts32[rank], cmpi_float(), receive, counts32, displacements, cmpi_float(), world)
        }
    }

    public func allGather(bytes send: UnsafeRawPointer, into receive: UnsafeMutableRawPointer, counts: [Int]) {
        assert(counts.count == size, "one count per rank")
        let counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + counts32[r - 1] }
        timed(bytes: counts[rank]) {
            _ = MPI_Allgatherv(send, counts32[rank], cmpi_byte(), receive, counts32, displacements, cmpi_byte(), world)
        }
    }

    public func allGather(_ values: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: values.count * size)
        _ = MPI_Allgather(values, Int32(values.count), cmpi_double(), &out, Int32(values.count), cmpi_double(), world)
        return out
    }

    public func max(_ values: [Double]) -> [Double] {
        var out = values
        _ = MPI_Allreduce(values, &out, Int32(values.count), cmpi_double(), cmpi_max(), world)
        return out
    }

    public func barrier() {
        timed(bytes: 0) { _ = MPI_Barrier(world) }
    }

    public func firstFailure(_ message: String?) -> (rank: Int, message: String)? {
        var mine = Int32(message == nil ? size : rank), first = Int32(0)
        _ = MPI_Allreduce(&mine, &first, 1, cmpi_int(), cmpi_min(), world)
        if first == Int32(size) { return nil }
        var bytes = Array((message ?? "").utf8)
        var length = Int32(bytes.count)
        _ = MPI_Bcast(&length, 1, cmpi_int(), first, world)
        if rank != Int(first) { bytes = [UInt8](repeating: 0, count: Int(length)) }
        _ = MPI_Bcast(&bytes, length, cmpi_char(), first, world)
        return (Int(first), String(decoding: bytes, as: UTF8.self))
    }
}
