// KVCache.swift — keys and values of every layer for this rank's KV heads, sized once from the request.

/// Per layer, K and V laid out (local kv slots, capacity, head_dim): each head's positions are
/// contiguous, which is what both attention kernels stream.
final class KVCache {
    let capacity: Int
    let slots: Int
    let headDim: Int
    let keys: [FloatBuffer]
    let values: [FloatBuffer]

    init(layers: Int, slots: Int, capacity: Int, headDim: Int) throws {
        self.capacity = capacity
        self.slots = slots
        self.headDim = headDim
        keys = try (0..<layers).map { _ in try FloatBuffer(count: slots * capacity * headDim) }
        values = try (0..<layers).map { _ in try FloatBuffer(count: slots * capacity * headDim) }
    }

    /// Floats a cache of this size holds (keys and values of every layer).
    static func floats(layers: Int, slots: Int, capacity: Int, headDim: Int) -> Int {
        2 * layers * slots * capacity * headDim
    }

    var byteCount: Int { (keys + values).reduce(0) { $0 + $1.byteCount } }

    /// Copies T new tokens' keys and values to positions start..<start+T. Token t's slots (each
    /// head_dim floats) start at keys + t * keyStride and values + t * valueStride: a (T, slots,
    /// head_dim) tensor, or rows of the fused q/k/v projection. The caller keeps start + T <= capacity.
    func store(layer: Int, keys k: UnsafePointer<Float>, keyStride: Int, values v: UnsafePointer<Float>,
               valueStride: Int, tokens: Int, start: Int) {
        assert(start + tokens <= capacity, "KV cache overflow")
        let d = headDim
        for t in 0..<tokens {
            for s in 0..<slots {
                let dst = (s * capacity + start + t) * d
                (keys[layer].pointer + dst).update(from: k + t * keyStride + s * d, count: d)
                (values[layer].pointer + dst).update(from: v + t * valueStride + s * d, count: d)
            }
        }
    }
}
