// TestSupport.swift — deterministic inputs, the float rounding unit, and small helpers shared by
// the kernel tests.
import CKernels
import XCTest

/// Unit roundoff of float32 (round to nearest): every correctly rounded operation has relative
/// error at most u. Error bounds in the tests are multiples of u derived from the inputs.
let u = Double(Float.ulpOfOne) / 2

/// y = x · W^T exactly (in double) for x (M, K) and W (N, K), and the error bound of each output of
/// a float computation of it: a float sum of K products in any order, with or without FMA, is
/// within gamma_K * sum|x w| of the exact value, gamma_K = K u / (1 - K u). `slack` is added to
/// every bound, and the whole |x w| of each term whose weight `dropped` selects.
func exactProducts(x: [Double], w: [Double], M: Int, N: Int, K: Int, slack: Double = 0,
                   dropped: ((Double) -> Bool)? = nil) -> (exact: [Double], tol: [Double]) {
    var exact = [Double](repeating: 0, count: M * N)
    var tol = [Double](repeating: 0, count: M * N)
    let gamma = Double(K) * u / (1 - Double(K) * u)
    x.withUnsafeBufferPointer { x in
        w.withUnsafeBufferPointer { w in
            for m in 0..<M {
                for n in 0..<N {
                    var s = 0.0, a = 0.0, lost = 0.0
                    for k in 0..<K {
                        let p = x[m * K + k] * w[n * K + k]
                        s += p
                        a += abs(p)
                        if let dropped, dropped(w[n * K + k]) { lost += abs(p) }
                    }
                    exact[m * N + n] = s
                    tol[m * N + n] = gamma * a + slack + lost
                }
            }
        }
    }
    return (exact, tol)
}

/// SplitMix64: the same inputs on every run, so a failure reproduces.
struct Rng {
    var state: UInt64

    init(_ seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    mutating func float(_ scale: Float = 1) -> Float {
        Float(Double(next() >> 11) * 0x1p-53 * 2 - 1) * scale
    }

    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in float(scale) }
    }

    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

func skipUnlessAVX2() throws {
    if ck_cpu_has_avx2_fma() == 0 { throw XCTSkip("CPU lacks AVX2+FMA") }
}

/// Runs body with the kernels' OpenMP thread count set to n, restoring the previous count.
func withThreads<R>(_ n: Int32, _ body: () throws -> R) rethrows -> R {
    let saved = ck_get_max_threads()
    ck_set_num_threads(n)
    defer { ck_set_num_threads(saved) }
    return try body()
}

/// Asserts |got[i] - want[i]| <= tol[i] for every i, reporting the worst offender.
func assertClose(_ got: [Float], _ want: [Double], tol: [Double], _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, what, file: file, line: line)
    var worst = -1
    var worstRatio = 1.0
    for i in 0..<min(got.count, want.count) {
        if Double(got[i]) == want[i] { continue }  // also an expected infinity
        let err = abs(Double(got[i]) - want[i])
        if !(err <= tol[i]) {
            let ratio = tol[i] > 0 ? err / tol[i] : .infinity
            if worst < 0 || ratio > worstRatio || ratio.isNaN { worst = i; worstRatio = ratio }
        }
    }
    if worst >= 0 {
        XCTFail("\(what): element \(worst) is \(got[worst]), want \(want[worst]) ± \(tol[worst])",
                file: file, line: line)
    }
}

/// Asserts a and b hold the same float bit patterns, reporting the first difference.
func assertBitIdentical(_ a: [Float], _ b: [Float], _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    if let i = a.indices.first(where: { i in i < b.count && a[i].bitPattern != b[i].bitPattern }) {
        XCTFail("\(what): element \(i) is \(a[i]) vs \(b[i])", file: file, line: line)
    }
}
