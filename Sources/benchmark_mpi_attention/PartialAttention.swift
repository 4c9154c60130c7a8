// PartialAttention.swift — one query's attention over a slice of the KV cache as a partial softmax
// state, and the merge of such states: how decode splits the cache across ranks (flash-decoding
// across processes). Plain Swift loops, which the compiler vectorises for SSE (the package builds
// without -march): ~12 GFLOP/s on one Zen 4 core. The library's kernels normalise their output
// and so cannot hand back the state.
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

    /// Eight independent partial sums: the loop is unrolled by hand because float addition is not
    /// reassociated by the compiler; LLVM turns the eight lanes into one vector.
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
        var i = 0
        while i + 8 <= n {
            s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]
            s4 += a[i + 4] * b[i + 4]; s5 += a[i + 5] * b[i + 5]; s6 += a[i + 6] * b[i + 6]; s7 += a[i + 7] * b[i + 7]
            i += 8
        }
        var s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// y += a * x
    @inline(__always) static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += a * x[i] }
    }
}
