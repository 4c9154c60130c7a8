// PartialAttention.swift — one query's attention over a slice of the KV cache as a partial softmax
// state, and the merge of such states: how decode splits the cache across ranks (flash-decoding
// across processes). Plain Swift loops over SIMD8 vectors; the library's kernels normalise their
// output and so cannot hand back the state.
import Dispatch
import Foundation

/// Per query head: `m`, the largest score of the slice; `l`, the sum of exp(score - m); `acc`, the
/// sum of exp(score - m) * v (headDim floats). A rank's state is (heads, headDim + 2): acc, m, l.
/// An empty slice has m = -inf, l = 0, acc = 0 and weighs nothing in the merge.
enum PartialAttention {
    static func stateFloats(heads: Int, headDim: Int) -> Int { heads * (headDim + 2) }

    /// Scratch floats: the scores of the slice, one row per worker.
    static func scratchFloats(keys: Int, workers: Int) -> Int { Swift.max(1, keys) * workers }

    /// state (heads, headDim + 2) of q (heads, headDim) against cache positions `slice` of keys and
    /// values (kvHeads, capacity, headDim). Query head h reads KV head h / (heads / kvHeads).
    /// `workers` threads split the heads.
    static func partial(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                        slice: Range<Int>, heads: Int, kvHeads: Int, headDim d: Int, capacity: Int, scale: Float,
                        state: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, workers: Int) {
        let group = heads / kvHeads, n = slice.count
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let scores = scratch + w * Swift.max(1, n)
            for h in (w * heads / workers)..<((w + 1) * heads / workers) {
                let qh = q + h * d, kv = h / group
                let kh = keys + (kv * capacity + slice.lowerBound) * d
                let vh = values + (kv * capacity + slice.lowerBound) * d
                let acc = state + h * (d + 2)
                acc.update(repeating: 0, count: d)
                var m = -Float.infinity, l: Float = 0
                for j in 0..<n {
                    scores[j] = scale * dot(qh, kh + j * d, d)
                    m = Swift.max(m, scores[j])
                }
                for j in 0..<n {
                    let p = expf(scores[j] - m)
                    l += p
                    axpy(p, vh + j * d, acc, d)
                }
                acc[d] = m
                acc[d + 1] = l
            }
        }
    }

    /// out (heads, headDim) = the softmax-weighted sum of `parts` states (parts, heads, headDim + 2).
    static func merge(states: UnsafePointer<Float>, parts: Int, heads: Int, headDim d: Int,
                      out: UnsafeMutablePointer<Float>) {
        let stride = heads * (d + 2)
        for h in 0..<heads {
            var m = -Float.infinity
            for r in 0..<parts { m = Swift.max(m, states[r * stride + h * (d + 2) + d]) }
            let o = out + h * d
            o.update(repeating: 0, count: d)
            var l: Float = 0
            for r in 0..<parts {
                let s = states + r * stride + h * (d + 2)
                guard s[d + 1] > 0 else { continue }
                let w = expf(s[d] - m)
                l += w * s[d + 1]
                axpy(w, s, o, d)
            }
            let inverse = 1 / l
            for i in 0..<d { o[i] *= inverse }
        }
    }

    @inline(__always) private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum = SIMD8<Float>(), i = 0
        while i + 8 <= n {
            sum.addProduct(load(a + i), load(b + i))
            i += 8
        }
        var s = sum.sum()
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// y += a * x
    @inline(__always) static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load(UnsafePointer(y + i)).addingProduct(SIMD8(repeating: a), load(x + i))
            UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            y[i] += a * x[i]
            i += 1
        }
    }
}
