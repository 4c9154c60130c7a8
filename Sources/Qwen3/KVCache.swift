// KVCache.swift — keys and values of every layer for this rank's KV heads, sized once from the request.

/// Per layer, K and V laid out (local kv slots, capacity, head_dim): each head's positions are
/// contiguous, which is what both attention kernels stream.
final class KVCache {
    let capacity: Int
    let slots: Int
    let headDim: Int
    let keys: [FloatBuffer]
    let values: [FloatBuffer]

    init(layers: Int, slots: Int, capacity: Int, headDim: Int) {
        self.capacity = capacity
        self.slots = slots
        self.headDim = headDim
        keys = (0..<layers).map { _ in FloatBuffer(count: slots * capacity * headDim) }
        values = (0..<layers).map { _ in FloatBuffer(count: slots * capacity * headDim) }
    }

    var byteCount: Int { (keys + values).reduce(0) { $0 + $1.byteCount } }

    /// Copies T new tokens' keys and values, each (T, slots, head_dim), to positions start..<start+T.
    func store(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, tokens: Int, start: Int) {
        precondition(start + tokens <= capacity, "KV cache overflow")
        let d = headDim
        for t in 0..<tokens {
            for s in 0..<slots {
                let src = (t * slots + s) * d
                let dst = (s * capacity + start + t) * d
                (keys[layer].pointer + dst).update(from: k + src, count: d)
                (values[layer].pointer + dst).update(from: v + src, count: d)
            }
        }
    }
}
