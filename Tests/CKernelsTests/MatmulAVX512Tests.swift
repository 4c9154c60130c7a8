// MatmulAVX512Tests.swift — the AVX-512 GEMMs: float32 weights (ck_matmul_f32_avx512) and
// bfloat16 weights (ck_matmul_bf16_avx512, its reference ck_matmul_bf16_ref): packing layouts,
// results against an exact (double) product on shapes that are not multiples of the 14 x 32 tile
// or the K block, the rounding of x to bfloat16, and independence of the result from the thread
// count and from the other rows of the batch.
import CKernels
import XCTest

func skipUnlessAVX512() throws {
    if ck_cpu_has_avx512() == 0 { throw XCTSkip("CPU lacks AVX-512 F/BW/VL") }
}

/// x rounded to bfloat16 as vcvtne2ps2bf16 rounds it: NaN stays NaN, zeros and subnormals become
/// a zero of their sign (the instruction ignores MXCSR and takes denormals as zero), anything
/// else goes to the nearer bfloat16, ties to the even pattern, overflowing to infinity.
/// Decided by distances in double, independently of the kernels' integer trick.
func bf16Rounded(_ f: Float) -> Float {
    if f.isNaN || f.isInfinite { return f }
    if abs(f) < Float.leastNormalMagnitude { return f.sign == .minus ? -0.0 : 0 }
    let lo = f.bitPattern & 0xffff_0000
    let below = Float(bitPattern: lo)
    let above = Float(bitPattern: lo &+ 0x1_0000)
    // The pattern past the largest finite bfloat16 is inf; as a target it stands for 2^128.
    let aboveValue = above.isInfinite ? (f < 0 ? -0x1p128 : 0x1p128) : Double(above)
    let dBelow = abs(Double(f) - Double(below)), dAbove = abs(aboveValue - Double(f))
    if dBelow < dAbove { return below }
    if dAbove < dBelow { return above }
    return (lo >> 16) & 1 == 0 ? below : above
}

func bf16Bits(_ f: Float) -> UInt16 { UInt16(truncatingIfNeeded: f.bitPattern >> 16) }

final class MatmulAVX512Tests: XCTestCase {
    /// y = bf16(x) · W^T with W already bfloat16, against exact sums in double of the exact
    /// products of the rounded values.
    struct BF16Problem {
        let M: Int, N: Int, K: Int
        let x: [Float], w: [UInt16]
        /// Exact sums, and the error bound of each output. The product of two bfloat16 values is
        /// exact in float, so both the reference (a float sum in k order) and vdpbf16ps (a chain
        /// of FMAs, the odd k of a pair first, block sums added to C) are float sums of the same
        /// K exact terms in different orders: within gamma_K * sum|x w| of the exact value.
        /// vdpbf16ps also flushes a denormal input, accumulator or result to zero: each of its
        /// at most 2K roundings may lose up to 2^-126 more, and a product with a denormal weight
        /// is dropped whole (the test weights have none; the term keeps the bound honest).
        let exact: [Double], tol: [Double]

        init(M: Int, N: Int, K: Int, seed: UInt64) {
            self.M = M
            self.N = N
            self.K = K
            var rng = Rng(seed)
            let xs = rng.floats(M * K)
            let ws = rng.floats(N * K).map { bf16Bits(bf16Rounded($0)) }
            x = xs
            w = ws
            let xr = xs.map { Double(bf16Rounded($0)) }
            let wr = ws.map { Double(Float(bitPattern: UInt32($0) << 16)) }
            let denormal = { (v: Double) in v != 0 && abs(v) < Double(Float.leastNormalMagnitude) }
            (exact, tol) = exactProducts(x: xr, w: wr, M: M, N: N, K: K,
                                         slack: 2 * Double(K) * Double(Float.leastNormalMagnitude),
                                         dropped: wr.contains(where: denormal) ? denormal : nil)
        }

        func packed() -> [UInt16] {
            var p = [UInt16](repeating: 0xffff, count: ck_pack_bf16_size(N, K))
            ck_pack_bf16(w, &p, N, K)
            return p
        }

        func runRef() -> [Float] {
            var y = [Float](repeating: .nan, count: M * N)
            ck_matmul_bf16_ref(x, w, &y, M, N, K)
            return y
        }

        func runAVX512(_ packed: [UInt16]) -> [Float] {
            var y = [Float](repeating: .nan, count: M * N)
            ck_matmul_bf16_avx512(x, packed, &y, M, N, K)
            return y
        }
    }

    static let oddM = [1, 2, 5, 7, 13, 15, 130]
    static let oddN = [1, 15, 17, 31, 33, 100]
    static let oddK = [1, 2, 3, 8, 9, 31, 257, 1031]

    func packF32(_ w: [Float], _ N: Int, _ K: Int) -> [Float] {
        var p = [Float](repeating: .nan, count: ck_pack_f32_avx512_size(N, K))
        ck_pack_f32_avx512(w, &p, N, K)
        return p
    }

    func runF32(_ x: [Float], _ packed: [Float], _ M: Int, _ N: Int, _ K: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: M * N)
        ck_matmul_f32_avx512(x, packed, &y, M, N, K)
        return y
    }

    // MARK: packing

    func testPackLayoutF32() {
        let N = 37, K = 5
        let w = (0..<N * K).map { Float($0 + 1) }
        XCTAssertEqual(ck_pack_f32_avx512_size(N, K), 2 * K * 32)
        let p = packF32(w, N, K)
        for panel in 0..<2 {
            for k in 0..<K {
                for j in 0..<32 {
                    let n = panel * 32 + j
                    XCTAssertEqual(p[(panel * K + k) * 32 + j], n < N ? w[n * K + k] : 0)
                }
            }
        }
    }

    /// packed[p][k/2][j][k%2] = W[p*32 + j][k], zero in the padding; reading the layout back
    /// gives W bit for bit, for N and K around the panel and the pair.
    func testPackBF16RoundTrip() {
        for N in [1, 31, 32, 33, 100] {
            for K in [1, 2, 3, 8, 257] {
                var rng = Rng(UInt64(N * 1000 + K))
                let w = (0..<N * K).map { _ in UInt16(truncatingIfNeeded: rng.next()) }
                let panels = (N + 31) / 32, pairs = (K + 1) / 2
                XCTAssertEqual(ck_pack_bf16_size(N, K), panels * pairs * 64)
                var p = [UInt16](repeating: 0xffff, count: ck_pack_bf16_size(N, K))
                ck_pack_bf16(w, &p, N, K)
                var back = [UInt16](repeating: 0, count: N * K)
                var padding = true
                for panel in 0..<panels {
                    for kk in 0..<pairs {
                        for j in 0..<32 {
                            for h in 0..<2 {
                                let v = p[((panel * pairs + kk) * 32 + j) * 2 + h]
                                let n = panel * 32 + j, k = 2 * kk + h
                                if n < N && k < K {
                                    back[n * K + k] = v
                                } else if v != 0 {
                                    padding = false
                                }
                            }
                        }
                    }
                }
                XCTAssertEqual(back, w, "N=\(N) K=\(K)")
                XCTAssertTrue(padding, "N=\(N) K=\(K): nonzero padding")
            }
        }
    }

    /// ck_packed_row_bf16 reads row n of the packed matrix back as floats: W's bits widened.
    func testPackedRowBF16() {
        for (N, K) in [(1, 1), (33, 3), (70, 257)] {
            var rng = Rng(UInt64(N * 7 + K))
            let w = (0..<N * K).map { _ in UInt16(truncatingIfNeeded: rng.next()) }
            var p = [UInt16](repeating: 0xffff, count: ck_pack_bf16_size(N, K))
            ck_pack_bf16(w, &p, N, K)
            for n in 0..<N {
                var row = [Float](repeating: 0, count: K)
                ck_packed_row_bf16(p, n, K, &row)
                XCTAssertEqual(row.map { UInt16($0.bitPattern >> 16) }, Array(w[(n * K)..<((n + 1) * K)]), "N=\(N) K=\(K) row \(n)")
            }
        }
    }

    // MARK: results against the exact product

    /// Odd shapes: M around the 14-row tile, N around the 32-column panel, K around the pair,
    /// the vector width and the K blocks (128 floats, 256 bf16 = 128 pairs).
    func testF32OddShapesAgainstExactProduct() throws {
        try skipUnlessAVX512()
        var seed: UInt64 = 1000
        for M in Self.oddM {
            for N in Self.oddN {
                for K in Self.oddK {
                    seed += 1
                    let p = MatmulTests.Problem(M: M, N: N, K: K, seed: seed)
                    assertClose(runF32(p.x, packF32(p.w, N, K), M, N, K), p.exact, tol: p.tol,
                                "avx512 M=\(M) N=\(N) K=\(K)")
                }
            }
        }
    }

    func testBF16OddShapesAgainstExactProduct() throws {
        let bf16 = ck_cpu_has_avx512_bf16() != 0
        var seed: UInt64 = 2000
        for M in Self.oddM {
            for N in Self.oddN {
                for K in Self.oddK {
                    seed += 1
                    let p = BF16Problem(M: M, N: N, K: K, seed: seed)
                    assertClose(p.runRef(), p.exact, tol: p.tol, "bf16 ref M=\(M) N=\(N) K=\(K)")
                    if bf16 {
                        assertClose(p.runAVX512(p.packed()), p.exact, tol: p.tol,
                                    "bf16 avx512 M=\(M) N=\(N) K=\(K)")
                    }
                }
            }
        }
    }

    /// Several row blocks of 12 tiles and several K blocks, with partial last ones.
    func testSeveralRowAndKBlocks() throws {
        try skipUnlessAVX512()
        let p = MatmulTests.Problem(M: 347, N: 40, K: 600, seed: 99)
        assertClose(runF32(p.x, packF32(p.w, 40, 600), 347, 40, 600), p.exact, tol: p.tol,
                    "avx512 M=347 N=40 K=600")
        if ck_cpu_has_avx512_bf16() != 0 {
            let q = BF16Problem(M: 347, N: 40, K: 601, seed: 98)
            assertClose(q.runAVX512(q.packed()), q.exact, tol: q.tol, "bf16 M=347 N=40 K=601")
        }
    }

    func testZeroK() throws {
        try skipUnlessAVX512()
        var y = [Float](repeating: .nan, count: 6)
        ck_matmul_f32_avx512([], [], &y, 2, 3, 0)
        XCTAssertEqual(y, [Float](repeating: 0, count: 6))
        y = [Float](repeating: .nan, count: 6)
        ck_matmul_bf16_ref([], [], &y, 2, 3, 0)
        XCTAssertEqual(y, [Float](repeating: 0, count: 6))
        if ck_cpu_has_avx512_bf16() != 0 {
            y = [Float](repeating: .nan, count: 6)
            ck_matmul_bf16_avx512([], [], &y, 2, 3, 0)
            XCTAssertEqual(y, [Float](repeating: 0, count: 6))
        }
    }

    // MARK: the rounding of x

    /// With K = 1 and W = 1 each output is 0 + bf16(x) * 1, exact: the kernel's rounding of x
    /// (vcvtne2ps2bf16 while packing) and the reference's are seen directly. Ties both ways,
    /// just off a tie, overflow to inf, subnormals (to zero), inf and NaN, on every row of a
    /// packed block and of a decode tile. With K = 2 and W = (0, 1) the odd k of each pair is
    /// seen alone, so the pairing of x with W is checked as well.
    func testBF16RoundingOfX() throws {
        var values: [Float] = [
            Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000),
            Float(bitPattern: 0x3f80_8001), Float(bitPattern: 0x3f80_7fff),
            Float(bitPattern: 0xbf81_8000), Float(bitPattern: 0x7f7f_ffff),
            Float(bitPattern: 0x7f7f_7fff), Float(bitPattern: 0x0000_8000),
            Float(bitPattern: 0x8040_0000), Float(bitPattern: 0x0080_ffff),
            .leastNormalMagnitude, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
            0, -0.0, 1, -3.140625, .infinity, -.infinity, .nan,
        ]
        var rng = Rng(5)
        for _ in 0..<40 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        let one: UInt16 = 0x3f80
        for K in [1, 2] {
            let M = values.count, N = 3
            let x: [Float] = K == 1 ? values : values.flatMap { [Float(1.5), $0] }
            let w: [UInt16] = K == 1 ? [one, one, one] : [0, one, 0, one, 0, one]
            // bf16(x) * 1 added to +0: a -0 product gives +0, NaN stays NaN.
            let want = values.map { bf16Rounded($0) + 0 }
            var ref = [Float](repeating: 0, count: M * N)
            ck_matmul_bf16_ref(x, w, &ref, M, N, K)
            var results = [("ref", ref)]
            if ck_cpu_has_avx512_bf16() != 0 {
                var packed = [UInt16](repeating: 0, count: ck_pack_bf16_size(N, K))
                ck_pack_bf16(w, &packed, N, K)
                var batch = [Float](repeating: 0, count: M * N)
                ck_matmul_bf16_avx512(x, packed, &batch, M, N, K)
                results.append(("avx512 batch", batch))
                var rows = [Float](repeating: 0, count: M * N)
                for m in 0..<M {
                    var row = [Float](repeating: 0, count: N)
                    ck_matmul_bf16_avx512(Array(x[m * K..<(m + 1) * K]), packed, &row, 1, N, K)
                    rows.replaceSubrange(m * N..<(m + 1) * N, with: row)
                }
                results.append(("avx512 decode", rows))
            }
            for (name, y) in results {
                for m in 0..<M {
                    for n in 0..<N {
                        let got = y[m * N + n], expect = want[m]
                        let ok = expect.isNaN ? got.isNaN : got.bitPattern == expect.bitPattern
                        let bits = String(values[m].bitPattern, radix: 16)
                        XCTAssertTrue(ok, "\(name) K=\(K) x=0x\(bits): \(got), want \(expect)")
                    }
                }
            }
        }
    }

    // MARK: invariance

    /// The sum behind each output runs in the same order however the work is split, so one and
    /// two threads give bit-identical results: split by panels (decode, and M = 130), or by
    /// rows (M = 28 over one panel: two single tiles, one packed two-tile block).
    func testThreadCountDoesNotChangeResults() throws {
        try skipUnlessAVX512()
        let bf16 = ck_cpu_has_avx512_bf16() != 0
        let shapes = [(1, 300, 700), (28, 32, 600), (130, 100, 1031), (64, 33, 300), (347, 40, 600)]
        for (M, N, K) in shapes {
            var rng = Rng(UInt64(M * N + K))
            let x = rng.floats(M * K), w = rng.floats(N * K)
            let wb = w.map { bf16Bits(bf16Rounded($0)) }
            let packed = packF32(w, N, K)
            var packedBF16 = [UInt16](repeating: 0, count: ck_pack_bf16_size(N, K))
            ck_pack_bf16(wb, &packedBF16, N, K)
            let empty = [Float](repeating: .nan, count: M * N)
            var y1 = empty, y2 = empty, b1 = empty, b2 = empty, r1 = empty, r2 = empty
            withThreads(1) {
                ck_matmul_f32_avx512(x, packed, &y1, M, N, K)
                ck_matmul_bf16_ref(x, wb, &r1, M, N, K)
                if bf16 { ck_matmul_bf16_avx512(x, packedBF16, &b1, M, N, K) }
            }
            withThreads(2) {
                XCTAssertEqual(ck_parallel_region_threads(), 2)
                ck_matmul_f32_avx512(x, packed, &y2, M, N, K)
                ck_matmul_bf16_ref(x, wb, &r2, M, N, K)
                if bf16 { ck_matmul_bf16_avx512(x, packedBF16, &b2, M, N, K) }
            }
            assertBitIdentical(y1, y2, "avx512 M=\(M) N=\(N) K=\(K)")
            assertBitIdentical(r1, r2, "bf16 ref M=\(M) N=\(N) K=\(K)")
            if bf16 { assertBitIdentical(b1, b2, "bf16 avx512 M=\(M) N=\(N) K=\(K)") }
        }
    }

    /// Each output is the same sequence of operations whatever tile it falls in, so a row
    /// computed alone (decode) is bit-identical to the same row inside a prefill batch. K = 7001
    /// also makes the single-tile bf16 path pack x in several chunks (3072 k per chunk at 14
    /// rows), whose boundaries must be K-block boundaries.
    func testRowResultDoesNotDependOnM() throws {
        try skipUnlessAVX512()
        let bf16 = ck_cpu_has_avx512_bf16() != 0
        for (M, N, K) in [(75, 40, 600), (30, 40, 7001)] {
            var rng = Rng(UInt64(17 + K))
            let x = rng.floats(M * K), w = rng.floats(N * K)
            let wb = w.map { bf16Bits(bf16Rounded($0)) }
            let packed = packF32(w, N, K)
            var packedBF16 = [UInt16](repeating: 0, count: ck_pack_bf16_size(N, K))
            ck_pack_bf16(wb, &packedBF16, N, K)
            let batch = runF32(x, packed, M, N, K)
            var batchBF16 = [Float](repeating: .nan, count: M * N)
            if bf16 { ck_matmul_bf16_avx512(x, packedBF16, &batchBF16, M, N, K) }
            // Single rows, and the first 14 rows as one decode-style tile.
            for (m0, rows) in [(0, 1), (1, 1), (13, 1), (14, 1), (M - 1, 1), (0, 14)] {
                let xs = Array(x[m0 * K..<(m0 + rows) * K]), range = m0 * N..<(m0 + rows) * N
                assertBitIdentical(runF32(xs, packed, rows, N, K), Array(batch[range]),
                                   "avx512 rows \(m0)..<\(m0 + rows) of M=\(M) K=\(K)")
                if bf16 {
                    var y = [Float](repeating: .nan, count: rows * N)
                    ck_matmul_bf16_avx512(xs, packedBF16, &y, rows, N, K)
                    assertBitIdentical(y, Array(batchBF16[range]),
                                       "bf16 rows \(m0)..<\(m0 + rows) of M=\(M) K=\(K)")
                }
            }
        }
    }

    /// The model's fused GEMMs: q/k/v as one N = 2048 + 1024 + 1024 and gate/up as one
    /// N = 3072 + 3072, at K = 1024. Each output column is the same sequence of operations
    /// whichever panel it falls in (the splits are whole panels), so the fused result is the
    /// separate results side by side, bit for bit: at decode, for a few row tiles, and for
    /// several row tiles split between two threads.
    func testFusedProjectionsEqualSeparateOnes() throws {
        try skipUnlessAVX512()
        let bf16 = ck_cpu_has_avx512_bf16() != 0
        let K = 1024
        for parts in [[2048, 1024, 1024], [3072, 3072]] {
            let N = parts.reduce(0, +)
            var rng = Rng(UInt64(N))
            let w = rng.floats(N * K), wb = w.map { bf16Bits(bf16Rounded($0)) }
            let packed = packF32(w, N, K)
            var packedBF16 = [UInt16](repeating: 0, count: ck_pack_bf16_size(N, K))
            ck_pack_bf16(wb, &packedBF16, N, K)
            for M in [1, 29, 130] {
                let x = rng.floats(M * K)
                let fused = withThreads(2) { runF32(x, packed, M, N, K) }
                var fusedBF16 = [Float](repeating: .nan, count: M * N)
                if bf16 {
                    withThreads(2) { ck_matmul_bf16_avx512(x, packedBF16, &fusedBF16, M, N, K) }
                }
                var n0 = 0
                for n in parts {
                    let rows = n0 * K..<(n0 + n) * K
                    let ws = Array(w[rows]), wbs = Array(wb[rows])
                    let columns = { (y: [Float]) in
                        (0..<M).flatMap { m in y[(m * N + n0)..<(m * N + n0 + n)] }
                    }
                    assertBitIdentical(columns(fused), runF32(x, packF32(ws, n, K), M, n, K),
                                       "avx512 M=\(M) columns \(n0)..<\(n0 + n) of N=\(N)")
                    if bf16 {
                        var p = [UInt16](repeating: 0, count: ck_pack_bf16_size(n, K))
                        ck_pack_bf16(wbs, &p, n, K)
                        var y = [Float](repeating: .nan, count: M * n)
                        ck_matmul_bf16_avx512(x, p, &y, M, n, K)
                        assertBitIdentical(columns(fusedBF16), y,
                                           "bf16 M=\(M) columns \(n0)..<\(n0 + n) of N=\(N)")
                    }
                    n0 += n
                }
            }
        }
    }
}
