// KVCache.swift — keys and values of every layer for this rank's KV heads, sized once from the request.
import CKernels

/// Per layer, K and V laid out (local kv slots, capacity, head_dim): each head's positions are
/// contiguous, which is what both attention kernels stream. Elements are Float, or bfloat16
/// (`precision` .bf16) rounded to nearest even as they are stored.
final class KVCache {
    let capacity: Int
    let slots: Int
    let headDim: Int
    let precision: KVPrecision
    /// Per layer, the keys and the values: `precision` elements, (slots, capacity, head_dim).
    let keys: [UnsafeMutableRawPointer]
    let values: [UnsafeMutableRawPointer]
    private let buffers: [AnyObject]
    let byteCount: Int

    init(layers: Int, slots: Int, capacity: Int, headDim: Int, precision: KVPrecision) throws {
        self.capacity = capacity
        self.slots = slots
        self.headDim = headDim
        self.precision = precision
        let count = slots * capacity * headDim
        var pointers: [UnsafeMutableRawPointer] = [], buffers: [AnyObject] = []
        for _ in 0..<(2 * layers) {
            switch precision {
            case .f32:
                let b = try FloatBuffer(count: count)
                pointers.append(UnsafeMutableRawPointer(b.pointer))
                buffers.append(b)
            case .bf16:
                let b = try BFloat16Buffer(count: count)
                pointers.append(UnsafeMutableRawPointer(b.pointer))
                buffers.append(b)
            }
        }
        keys = Array(pointers[..<layers])
        values = Array(pointers[layers...])
        self.buffers = buffers
        byteCount = 2 * layers * Self.size(slots: slots, capacity: capacity, headDim: headDim, precision: precision)
    }

    /// Bytes of one layer's keys (or values).
    static func size(slots: Int, capacity: Int, headDim: Int, precision: KVPrecision) -> Int {
        slots * capacity * headDim * precision.elementBytes
    }

    /// Bytes a cache of this size holds (keys and values of every layer).
    static func bytes(layers: Int, slots: Int, capacity: Int, headDim: Int, precision: KVPrecision) -> Int {
        2 * layers * size(slots: slots, capacity: capacity, headDim: headDim, precision: precision)
    }

    /// Copies T new tokens' keys and values to positions start..<start+T, rounded to the cache's
    /// precision. Token t's slots (each head_dim floats) start at keys + t * keyStride and values +
    /// t * valueStride: a (T, slots, head_dim) tensor, or rows of the fused q/k/v projection. The
    /// caller keeps start + T <= capacity.
    func store(layer: Int, keys k: UnsafePointer<Float>, keyStride: Int, values v: UnsafePointer<Float>,
               valueStride: Int, tokens: Int, start: Int) {
        assert(start + tokens <= capacity, "KV cache overflow")
        switch precision {
        case .f32:
            ck_kv_store_f32(k, keyStride, v, valueStride, tokens, slots, headDim, capacity, start,
                            keys[layer].assumingMemoryBound(to: Float.self),
                            values[layer].assumingMemoryBound(to: Float.self))
        case .bf16:
            ck_kv_store_bf16(k, keyStride, v, valueStride, tokens, slots, headDim, capacity, start,
                             keys[layer].assumingMemoryBound(to: UInt16.self),
                             values[layer].assumingMemoryBound(to: UInt16.self))
        }
    }

    /// Copies T tokens' keys and values already in the cache's precision (an exchange's rows:
    /// (T, slots, head_dim) each, contiguous) to positions start..<start+T.
    func store(layer: Int, cachedKeys k: UnsafeRawPointer, cachedValues v: UnsafeRawPointer, tokens: Int, start: Int) {
        assert(start + tokens <= capacity, "KV cache overflow")
        let row = headDim * precision.elementBytes
        for t in 0..<tokens {
            for s in 0..<slots {
                let dst = (s * capacity + start + t) * row, src = (t * slots + s) * row
                (keys[layer] + dst).copyMemory(from: k + src, byteCount: row)
                (values[layer] + dst).copyMemory(from: v + src, byteCount: row)
            }
        }
    }
}
