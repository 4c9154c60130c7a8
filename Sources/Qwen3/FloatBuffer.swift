// FloatBuffer.swift — owned, 64-byte-aligned arrays: every weight and activation lives in one.
#if canImport(Glibc)
import Glibc
#endif

/// Fixed-size storage, aligned for AVX-512 loads (large buffers on 2 MiB huge-page boundaries),
/// zero-initialised, freed on deinit.
public final class AlignedBuffer<Element> {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Element>
    /// Whether the buffer was placed on huge-page boundaries and hinted MADV_HUGEPAGE.
    public let hugePageHinted: Bool

    /// Throws, naming the byte count, when the memory cannot be had.
    public init(count: Int) throws {
        self.count = count
        let (bytes, overflow) = Swift.max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        if overflow { throw RequestError("cannot allocate \(count) elements of \(MemoryLayout<Element>.stride) bytes: the size overflows") }
        var raw: UnsafeMutableRawPointer?
        hugePageHinted = bytes >= Self.hugePageThreshold && Self.hugePagesWanted
        if hugePageHinted {
            // Transparent huge pages for the weights and KV cache: the buffer starts on a 2 MiB
            // boundary and its whole huge pages are hinted. The partial last one is not: a huge page
            // is resident whole once touched, and rounding each buffer up to whole pages held 94 MiB
            // of padding in a q8_0 model (4.25 and 6.375 MiB layers).
            if posix_memalign(&raw, Self.hugePage, bytes) == 0, let raw, bytes / Self.hugePage > 0 {
                _ = madvise(raw, bytes / Self.hugePage * Self.hugePage, MADV_HUGEPAGE)
            }
        } else {
            _ = posix_memalign(&raw, 64, bytes)
        }
        guard let raw else { throw RequestError("out of memory: cannot allocate \(bytes) bytes") }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1))
    }

    deinit { free(pointer) }

    static var hugePage: Int { 2 << 20 }
    static var hugePageThreshold: Int { 4 << 20 }
    /// QWEN3_HUGEPAGES=0 turns the huge-page hint off, to measure what it is worth.
    static var hugePagesWanted: Bool { getenv("QWEN3_HUGEPAGES").map { String(cString: $0) != "0" } ?? true }

    public var byteCount: Int { count * MemoryLayout<Element>.stride }
}

public typealias FloatBuffer = AlignedBuffer<Float>
/// bfloat16 values as their 16-bit patterns.
public typealias BFloat16Buffer = AlignedBuffer<UInt16>
