// ElementwiseTests.swift — RMSNorm, RoPE, SwiGLU, softmax and the residual add, reference and
// AVX2, against double-precision formulas with error bounds derived from the inputs.
import CKernels
import Foundation
import XCTest

final class ElementwiseTests: XCTestCase {
    private var avx2: Bool { ck_cpu_has_avx2_fma() != 0 }
    private var avx512: Bool { ck_cpu_has_avx512() != 0 }

    // MARK: RMSNorm

    private typealias RMSNorm = (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                 UnsafeMutablePointer<Float>?, Int, Int, Float) -> Void

    private func rmsnormKernels() -> [(String, RMSNorm)] {
        var k: [(String, RMSNorm)] = [("ref", ck_rmsnorm_f32_ref)]
        if avx2 { k.append(("avx2", ck_rmsnorm_f32_avx2)) }
        return k
    }

    func testRMSNormAgainstDouble() {
        let eps: Float = 1e-6
        var rng = Rng(21)
        for (name, kernel) in rmsnormKernels() {
            let shapes = [(1, 1), (3, 7), (2, 8), (5, 9), (7, 33), (4, 128), (3, 1000), (40, 1024)]
            for (rows, dim) in shapes {
                for scale: Float in [1e-3, 1, 1e3] {
                    let x = rng.floats(rows * dim, scale: scale), w = rng.floats(dim, scale: 2)
                    var want = [Double](repeating: 0, count: rows * dim), tol = want
                    for r in 0..<rows {
                        let row = x[r * dim..<(r + 1) * dim].map(Double.init)
                        let meanSquare = row.reduce(0) { $0 + $1 * $1 } / Double(dim)
                        let inv = 1 / (meanSquare + Double(eps)).squareRoot()
                        for i in 0..<dim {
                            want[r * dim + i] = Double(w[i]) * row[i] * inv
                            // Sum of squares (positive terms): gamma_dim; through the square
                            // root half of that; then the division, root, and two products.
                            tol[r * dim + i] = abs(want[r * dim + i]) * (Double(dim) / 2 + 6) * u
                        }
                    }
                    var y = [Float](repeating: .nan, count: rows * dim)
                    kernel(x, w, &y, rows, dim, eps)
                    assertClose(y, want, tol: tol,
                                "rmsnorm \(name) rows=\(rows) dim=\(dim) scale=\(scale)")
                    var inPlace = x
                    inPlace.withUnsafeMutableBufferPointer {
                        kernel($0.baseAddress, w, $0.baseAddress, rows, dim, eps)
                    }
                    assertBitIdentical(inPlace, y, "rmsnorm \(name) in place")
                }
            }
        }
    }

    /// Heads read from rows of a fused projection (row stride larger than the heads) give exactly
    /// what the row kernel gives on the same heads copied out contiguously.
    func testRMSNormHeadsOfStridedRowsEqualsContiguousRows() {
        typealias Heads = (UnsafePointer<Float>?, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
                           Int, Int, Int, Float) -> Void
        var kernels: [(String, Heads, RMSNorm)] = [("ref", ck_rmsnorm_heads_f32_ref, ck_rmsnorm_f32_ref)]
        if avx2 { kernels.append(("avx2", ck_rmsnorm_heads_f32_avx2, ck_rmsnorm_f32_avx2)) }
        var rng = Rng(22)
        for (name, heads, rows) in kernels {
            for (tokens, h, d, offset, extra) in [(1, 1, 5, 0, 0), (3, 4, 9, 7, 13), (33, 16, 128, 2048, 2048),
                                                 (300, 8, 128, 0, 3072)] {
                let ldx = offset + h * d + extra
                let x = rng.floats(tokens * ldx, scale: 3), w = rng.floats(d, scale: 2)
                var contiguous = [Float](repeating: 0, count: tokens * h * d)
                for t in 0..<tokens {
                    for i in 0..<h * d { contiguous[t * h * d + i] = x[t * ldx + offset + i] }
                }
                var want = [Float](repeating: .nan, count: tokens * h * d)
                rows(contiguous, w, &want, tokens * h, d, 1e-6)
                var got = [Float](repeating: .nan, count: tokens * h * d)
                withThreads(2) {
                    x.withUnsafeBufferPointer { heads($0.baseAddress! + offset, ldx, w, &got, tokens, h, d, 1e-6) }
                }
                assertBitIdentical(got, want, "rmsnorm_heads \(name) T=\(tokens) H=\(h) D=\(d) ldx=\(ldx)")
            }
        }
    }

    // MARK: RoPE

    private typealias Rope = (UnsafeMutablePointer<Float>?, Int, Int, Int, UnsafePointer<Int32>?,
                              UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void

    func testRopeAgainstDouble() {
        var kernels: [(String, Rope)] = [("ref", ck_rope_f32_ref)]
        if avx2 { kernels.append(("avx2", ck_rope_f32_avx2)) }
        var rng = Rng(33)
        let maxPos = 300
        for D in [2, 16, 24, 34, 128] {
            let half = D / 2
            var cosT = [Float](repeating: 0, count: maxPos * half), sinT = cosT
            for p in 0..<maxPos {
                for i in 0..<half {
                    let angle = Double(p) / pow(1_000_000, Double(2 * i) / Double(D))
                    cosT[p * half + i] = Float(cos(angle))
                    sinT[p * half + i] = Float(sin(angle))
                }
            }
            for (T, H) in [(1, 1), (3, 2), (5, 3), (70, 16)] {
                let x = rng.floats(T * H * D, scale: 4)
                let positions = (0..<T).map { _ in Int32(rng.int(maxPos)) }
                var want = [Double](repeating: 0, count: x.count), tol = want
                for t in 0..<T {
                    let p = Int(positions[t])
                    for h in 0..<H {
                        let base = (t * H + h) * D
                        for i in 0..<half {
                            let a = Double(x[base + i]), b = Double(x[base + i + half])
                            let c = Double(cosT[p * half + i]), s = Double(sinT[p * half + i])
                            want[base + i] = a * c - b * s
                            want[base + i + half] = b * c + a * s
                            // Two products and a sum, each rounded once at most.
                            tol[base + i] = 3 * u * (abs(a * c) + abs(b * s))
                            tol[base + i + half] = 3 * u * (abs(b * c) + abs(a * s))
                        }
                    }
                }
                for (name, kernel) in kernels {
                    var y = x
                    kernel(&y, T, H, D, positions, cosT, sinT)
                    assertClose(y, want, tol: tol, "rope \(name) T=\(T) H=\(H) D=\(D)")
                }
            }
        }
    }

    // MARK: SwiGLU

    private typealias SiluMul = (UnsafePointer<Float>?, UnsafePointer<Float>?,
                                 UnsafeMutablePointer<Float>?, Int) -> Void

    func testSiluMulAgainstDouble() {
        var kernels: [(String, SiluMul)] = [("ref", ck_silu_mul_f32_ref)]
        if avx2 { kernels.append(("avx2", ck_silu_mul_f32_avx2)) }
        if avx512 { kernels.append(("avx512", ck_silu_mul_f32_avx512)) }
        var rng = Rng(44)
        let extremes: [Float] = [0, -0.0, 1e-30, -1e-30, 20, -20, 87, -87, 88.5, -88.5, 89, -89,
                                 100, -100, 104, -104, 1e4, -1e4, 1e30, -1e30,
                                 .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        for n in [1, 7, 8, 9, 100, 1000, 40_000] {
            var gate = rng.floats(n, scale: 12)
            for i in 0..<min(n, extremes.count) { gate[(i * 7919) % n] = extremes[i] }
            let up = rng.floats(n, scale: 3)
            var want = [Double](repeating: 0, count: n), tol = want
            for i in 0..<n {
                let g = Double(gate[i])
                want[i] = g / (1 + exp(-g)) * Double(up[i])
                // Beyond the rounding threshold of the largest float, float gives infinity.
                if abs(want[i]) >= 0x1p128 - 0x1p103 {
                    want[i] = want[i] < 0 ? -.infinity : .infinity
                }
                // exp within a few ulps, then an add, a division and two products. Once
                // sigmoid(g) is subnormal (g < -87) it is only good to a subnormal ulp, which
                // the products scale by |g up|.
                let sub = Double(Float.leastNonzeroMagnitude)
                tol[i] = 10 * u * abs(want[i]) + sub * (1 + 2 * abs(g * Double(up[i])))
            }
            for (name, kernel) in kernels {
                var out = [Float](repeating: .nan, count: n)
                kernel(gate, up, &out, n)
                assertClose(out, want, tol: tol, "silu_mul \(name) n=\(n)")
                var aliasGate = gate, aliasUp = up
                aliasGate.withUnsafeMutableBufferPointer {
                    kernel($0.baseAddress, up, $0.baseAddress, n)
                }
                aliasUp.withUnsafeMutableBufferPointer {
                    kernel(gate, $0.baseAddress, $0.baseAddress, n)
                }
                assertBitIdentical(aliasGate, out, "silu_mul \(name) out == gate")
                assertBitIdentical(aliasUp, out, "silu_mul \(name) out == up")
            }
        }
    }

    /// SwiGLU over the rows of the fused gate/up projection is silu_mul on each row's halves.
    func testSwiGLUOfFusedRowsEqualsSiluMulOfHalves() {
        typealias SwiGLU = (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int) -> Void
        var kernels: [(String, SwiGLU, SiluMul)] = [("ref", ck_swiglu_f32_ref, ck_silu_mul_f32_ref)]
        if avx2 { kernels.append(("avx2", ck_swiglu_f32_avx2, ck_silu_mul_f32_avx2)) }
        if avx512 { kernels.append(("avx512", ck_swiglu_f32_avx512, ck_silu_mul_f32_avx512)) }
        var rng = Rng(45)
        for (name, swiglu, siluMul) in kernels {
            for (rows, n) in [(1, 1), (1, 9), (3, 17), (1, 9000), (40, 3072), (7, 5000)] {
                let gateUp = rng.floats(rows * 2 * n, scale: 8)
                var want = [Float](repeating: .nan, count: rows * n)
                for r in 0..<rows {
                    let gate = Array(gateUp[(2 * r * n)..<(2 * r * n + n)]), up = Array(gateUp[(2 * r * n + n)..<(2 * r * n + 2 * n)])
                    var row = [Float](repeating: .nan, count: n)
                    siluMul(gate, up, &row, n)
                    want.replaceSubrange((r * n)..<(r * n + n), with: row)
                }
                var got = [Float](repeating: .nan, count: rows * n)
                withThreads(2) { swiglu(gateUp, &got, rows, n) }
                assertBitIdentical(got, want, "swiglu \(name) rows=\(rows) n=\(n)")
            }
        }
    }

    // MARK: Softmax

    private typealias Softmax = (UnsafeMutablePointer<Float>?, Int) -> Void

    private func softmaxKernels() -> [(String, Softmax)] {
        var k: [(String, Softmax)] = [("ref", ck_softmax_f32_ref)]
        if avx2 { k.append(("avx2", ck_softmax_f32_avx2)) }
        return k
    }

    /// Softmax in double of the float inputs, with the float error bound of each output: x - max
    /// rounds (u |x - max|, amplified by exp), exp itself (a few u), the sum of n terms
    /// (gamma_n) and the final scaling.
    private func softmaxDouble(_ x: [Float]) -> (want: [Double], tol: [Double]) {
        let xd = x.map(Double.init)
        let m = xd.max()!
        let e = xd.map { exp($0 - m) }
        let s = e.reduce(0, +)
        let want = e.map { $0 / s }
        let tol = zip(xd, want).map { xi, p in
            p * u * (Double(x.count) + 8 + abs(xi - m)) + Double(Float.leastNonzeroMagnitude)
        }
        return (want, tol)
    }

    func testSoftmaxAgainstDouble() {
        var rng = Rng(55)
        for (name, kernel) in softmaxKernels() {
            for n in [1, 2, 7, 8, 9, 31, 100, 1000, 2049] {
                for scale: Float in [1, 30, 1e4] {
                    var x = rng.floats(n, scale: scale)
                    let (want, tol) = softmaxDouble(x)
                    kernel(&x, n)
                    assertClose(x, want, tol: tol, "softmax \(name) n=\(n) scale=\(scale)")
                }
            }
        }
    }

    /// -inf entries (attention masks) give exactly 0; large shifts neither overflow nor NaN.
    func testSoftmaxMasksAndLargeMagnitudes() {
        for (name, kernel) in softmaxKernels() {
            var x: [Float] = [3e38, -3e38, -.infinity, 3e38 - 1e32, 0, -.infinity, 1e38, 7,
                              -.infinity]
            let finite = x.map { $0.isInfinite ? -Float.greatestFiniteMagnitude : $0 }
            let (want, tol) = softmaxDouble(finite)
            kernel(&x, x.count)
            XCTAssertEqual(x[2], 0, "softmax \(name): exp(-inf) must be exactly 0")
            XCTAssertEqual(x[5], 0)
            XCTAssertEqual(x[8], 0)
            assertClose(x, want, tol: tol, "softmax \(name) large magnitudes")
            // Large logits close together: the shift by the maximum keeps every term.
            var close: [Float] = [5e4, 5e4 - 1, 5e4 - 2.5, 5e4 - 7, 5e4 - 30, -5e4, 5e4 - 0.5, 5e4]
            let (wantClose, tolClose) = softmaxDouble(close)
            kernel(&close, close.count)
            assertClose(close, wantClose, tol: tolClose, "softmax \(name) large, close logits")
        }
    }

    /// Rows [0, t]: the max is 0, so t - max is exact and the second output is e^t / (1 + e^t);
    /// this isolates the accuracy of exp over all of [-110, 0], down through the subnormals.
    func testSoftmaxExpAccuracyOverTheWholeRange() {
        for (name, kernel) in softmaxKernels() {
            var worstUlps = 0.0
            var t = -110.0
            while t <= 0 {
                var x: [Float] = [0, Float(t)]
                let e = exp(Double(Float(t)))
                let want = [1 / (1 + e), e / (1 + e)]
                kernel(&x, 2)
                // exp, the sum and the scaling: 6 u relative, and the absolute spacing of
                // subnormals once e^t is below the normal range.
                let tol = want.map { 6 * u * $0 + Double(Float.leastNonzeroMagnitude) }
                assertClose(x, want, tol: tol, "softmax \(name) exp(\(Float(t)))")
                if want[1] > Double(Float.leastNormalMagnitude) {
                    worstUlps = max(worstUlps, abs(Double(x[1]) - want[1]) / (want[1] * 2 * u))
                }
                t += 0.0137
            }
            XCTAssertLessThan(worstUlps, 3, "softmax \(name): worst error of e^t/(1+e^t) in ulps")
        }
    }

    // MARK: Residual add

    func testAddIsExact() {
        typealias Add = (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) -> Void
        var kernels: [(String, Add)] = [("ref", ck_add_f32_ref)]
        if avx2 { kernels.append(("avx2", ck_add_f32_avx2)) }
        var rng = Rng(66)
        for n in [1, 7, 8, 9, 4097, 100_003] {
            let y0 = rng.floats(n), x = rng.floats(n)
            let want = zip(y0, x).map { $0 + $1 }
            for (name, kernel) in kernels {
                var y = y0
                kernel(&y, x, n)
                assertBitIdentical(y, want, "add \(name) n=\(n)")
            }
        }
    }
}
