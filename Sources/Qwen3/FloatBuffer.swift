// FloatBuffer.swift — owned, 64-byte-aligned arrays: every weight and activation lives in one.
#if canImport(Glibc)
import Glibc
#endif

/// Fixed-size storage, aligned for AVX-512 loads, zero-initialised, freed on deinit.
public final class AlignedBuffer<Element> {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Element>

    public init(count: Int) {
        self.count = count
        let bytes = Swift.max(count, 1) * MemoryLayout<Element>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        // Large buffers (weights, KV cache) benefit from transparent huge pages: fewer TLB misses
        // when a matmul streams hundreds of megabytes.
        if bytes >= 4 << 20 { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1))
    }

    deinit { pointer.deallocate() }

    public var byteCount: Int { count * MemoryLayout<Element>.stride }
}

public typealias FloatBuffer = AlignedBuffer<Float>
/// bfloat16 values as their 16-bit patterns.
public typealias BFloat16Buffer = AlignedBuffer<UInt16>
