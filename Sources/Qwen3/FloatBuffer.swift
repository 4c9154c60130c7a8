// FloatBuffer.swift — an owned, 64-byte-aligned float array: every weight and activation lives in one.
#if canImport(Glibc)
import Glibc
#endif

/// Fixed-size float storage, aligned for AVX-512 loads, zero-initialised, freed on deinit.
public final class FloatBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        // Large buffers (weights, KV cache) benefit from transparent huge pages: fewer TLB misses
        // when a matmul streams hundreds of megabytes.
        if bytes >= 4 << 20 { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    public var array: [Float] { Array(buffer) }

    public var byteCount: Int { count * MemoryLayout<Float>.stride }
}
