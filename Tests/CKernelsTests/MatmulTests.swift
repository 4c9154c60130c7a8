// MatmulTests.swift — y = x · W^T: packing layout, the reference and the AVX2 kernel against an
// exact (double) product on shapes that are not multiples of the 6 x 16 tile or the K block,
// and independence of the result from the thread count.
import CKernels
import XCTest

final class MatmulTests: XCTestCase {
    struct Problem {
        let M: Int, N: Int, K: Int
        let x: [Float], w: [Float]
        /// Exact products in double, and the float error bound of each output: a float sum of
        /// K products in any order, with or without FMA, is within gamma_K * sum|x w| of the
        /// exact value, gamma_K = K u / (1 - K u).
        let exact: [Double], tol: [Double]

        init(M: Int, N: Int, K: Int, seed: UInt64) {
            self.M = M
            self.N = N
            self.K = K
            var rng = Rng(seed)
            let xs = rng.floats(M * K), ws = rng.floats(N * K)
            x = xs
            w = ws
            (exact, tol) = exactProducts(x: xs.map(Double.init), w: ws.map(Double.init), M: M, N: N, K: K)
        }

        func packed() -> [Float] {
            var p = [Float](repeating: .nan, count: ck_pack_f32_avx2_size(N, K))
            ck_pack_f32_avx2(w, &p, N, K)
            return p
        }

        func runRef() -> [Float] {
            var y = [Float](repeating: .nan, count: M * N)
            ck_matmul_f32_ref(x, w, &y, M, N, K)
            return y
        }

        func runAVX2(_ packed: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: M * N)
            ck_matmul_f32_avx2(x, packed, &y, M, N, K)
            return y
        }

        /// Packs w: (N, K) and runs the AVX2 kernel on x: (M, K).
        static func run(_ x: [Float], _ w: [Float], _ M: Int, _ N: Int, _ K: Int) -> [Float] {
            var p = [Float](repeating: .nan, count: ck_pack_f32_avx2_size(N, K))
            ck_pack_f32_avx2(w, &p, N, K)
            var y = [Float](repeating: .nan, count: M * N)
            ck_matmul_f32_avx2(x, p, &y, M, N, K)
            return y
        }
    }

    func testPackLayout() {
        let N = 37, K = 5
        let w = (0..<N * K).map { Float($0 + 1) }
        XCTAssertEqual(ck_pack_f32_avx2_size(N, K), 3 * K * 16)
        var p = [Float](repeating: .nan, count: ck_pack_f32_avx2_size(N, K))
        ck_pack_f32_avx2(w, &p, N, K)
        for panel in 0..<3 {
            for k in 0..<K {
                for j in 0..<16 {
                    let n = panel * 16 + j
                    XCTAssertEqual(p[(panel * K + k) * 16 + j], n < N ? w[n * K + k] : 0)
                }
            }
        }
    }

    /// Odd shapes: M around the 6-row tile, N around the 16-column panel, K around the vector
    /// width and the 256 K block.
    func testOddShapesAgainstExactProduct() {
        let avx2 = ck_cpu_has_avx2_fma() != 0
        var seed: UInt64 = 1
        for M in [1, 2, 5, 7, 13, 130] {
            for N in [1, 15, 17, 33, 100] {
                for K in [1, 3, 8, 9, 257, 1031] {
                    seed += 1
                    let p = Problem(M: M, N: N, K: K, seed: seed)
                    assertClose(p.runRef(), p.exact, tol: p.tol, "ref M=\(M) N=\(N) K=\(K)")
                    if avx2 {
                        assertClose(p.runAVX2(p.packed()), p.exact, tol: p.tol,
                                    "avx2 M=\(M) N=\(N) K=\(K)")
                    }
                }
            }
        }
    }

    /// More rows than one 168-row block and a K that leaves a partial 256 block.
    func testSeveralRowAndKBlocks() throws {
        try skipUnlessAVX2()
        let p = Problem(M: 347, N: 40, K: 600, seed: 99)
        assertClose(p.runAVX2(p.packed()), p.exact, tol: p.tol, "avx2 M=347 N=40 K=600")
    }

    func testZeroK() throws {
        try skipUnlessAVX2()
        var y = [Float](repeating: .nan, count: 6)
        ck_matmul_f32_avx2([], [], &y, 2, 3, 0)
        XCTAssertEqual(y, [Float](repeating: 0, count: 6))
    }

    /// The sum behind each output runs in the same order however the work is split, so one and
    /// two threads give bit-identical results, whether the split is by panels (decode) or by rows
    /// (M = 12 over one panel: two 6-row shares read x in place, one 12-row share packs it).
    func testThreadCountDoesNotChangeResults() throws {
        try skipUnlessAVX2()
        let shapes = [(1, 300, 700), (12, 16, 600), (130, 100, 1031), (64, 33, 300), (347, 40, 600)]
        for (M, N, K) in shapes {
            var rng = Rng(UInt64(M * N + K))
            let x = rng.floats(M * K), w = rng.floats(N * K)
            var packed = [Float](repeating: 0, count: ck_pack_f32_avx2_size(N, K))
            ck_pack_f32_avx2(w, &packed, N, K)
            var y1 = [Float](repeating: .nan, count: M * N), y2 = y1, r1 = y1, r2 = y1
            withThreads(1) {
                ck_matmul_f32_avx2(x, packed, &y1, M, N, K)
                ck_matmul_f32_ref(x, w, &r1, M, N, K)
            }
            withThreads(2) {
                XCTAssertEqual(ck_parallel_region_threads(), 2)
                ck_matmul_f32_avx2(x, packed, &y2, M, N, K)
                ck_matmul_f32_ref(x, w, &r2, M, N, K)
            }
            assertBitIdentical(y1, y2, "avx2 M=\(M) N=\(N) K=\(K)")
            assertBitIdentical(r1, r2, "ref M=\(M) N=\(N) K=\(K)")
        }
    }

    /// Each output is the same sequence of FMAs whatever tile it falls in, so a row computed
    /// alone (decode) is bit-identical to the same row inside a prefill batch.
    func testRowResultDoesNotDependOnM() throws {
        try skipUnlessAVX2()
        let M = 75, N = 40, K = 600
        var rng = Rng(17)
        let x = rng.floats(M * K), w = rng.floats(N * K)
        var packed = [Float](repeating: 0, count: ck_pack_f32_avx2_size(N, K))
        ck_pack_f32_avx2(w, &packed, N, K)
        var batch = [Float](repeating: .nan, count: M * N)
        ck_matmul_f32_avx2(x, packed, &batch, M, N, K)
        for m in [0, 1, 6, 37, 72, 74] {
            var row = [Float](repeating: .nan, count: N)
            ck_matmul_f32_avx2(Array(x[m * K..<(m + 1) * K]), packed, &row, 1, N, K)
            assertBitIdentical(row, Array(batch[m * N..<(m + 1) * N]), "row \(m) of M=\(M)")
        }
    }

    /// The model's fused GEMMs (q/k/v: N = 2048 + 1024 + 1024, gate/up: N = 3072 + 3072, at
    /// K = 1024) equal the separate ones side by side, bit for bit: the splits are whole panels,
    /// and each output is the same sequence of operations whichever panel it falls in.
    func testFusedProjectionsEqualSeparateOnes() throws {
        try skipUnlessAVX2()
        let K = 1024
        for parts in [[2048, 1024, 1024], [3072, 3072]] {
            let N = parts.reduce(0, +)
            var rng = Rng(UInt64(N) + 1)
            let w = rng.floats(N * K)
            for M in [1, 13, 100] {
                let x = rng.floats(M * K)
                let fused = withThreads(2) { Problem.run(x, w, M, N, K) }
                var n0 = 0
                for n in parts {
                    let separate = Problem.run(x, Array(w[n0 * K..<(n0 + n) * K]), M, n, K)
                    let columns = (0..<M).flatMap { m in fused[(m * N + n0)..<(m * N + n0 + n)] }
                    assertBitIdentical(columns, separate,
                                       "avx2 M=\(M) columns \(n0)..<\(n0 + n) of N=\(N)")
                    n0 += n
                }
            }
        }
    }

    func testAddBias() {
        let M = 5, N = 37
        var rng = Rng(3)
        let y0 = rng.floats(M * N), bias = rng.floats(N)
        var y = y0
        ck_add_bias_f32(&y, bias, M, N)
        for m in 0..<M {
            for n in 0..<N { XCTAssertEqual(y[m * N + n], y0[m * N + n] + bias[n]) }
        }
    }
}
