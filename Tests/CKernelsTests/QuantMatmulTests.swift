// QuantMatmulTests.swift — q8_0 / q4_0 weights: quantization against GGUF's rules, the reference
// matmul against an independent product with dequantized weights, and the AVX2 and AVX512_VNNI
// kernels against the reference: bit for bit where every value and sum is an integer, within a
// bound derived from the inputs otherwise; results independent of threads and of M.
import CKernels
import XCTest

final class QuantMatmulTests: XCTestCase {
    enum Format: CaseIterable {
        case q8_0, q4_0

        var blockBytes: Int { self == .q8_0 ? Int(CK_Q8_0_BLOCK_BYTES) : Int(CK_Q4_0_BLOCK_BYTES) }
        /// The unsigned offset the VNNI kernel removes through the packed x (see gemm_q8_avx512.c).
        var offset: Double { self == .q8_0 ? 128 : 8 }

        func quantize(_ w: [Float], _ n: Int, _ k: Int) -> [UInt8] {
            var blocks = [UInt8](repeating: 0, count: n * k / 32 * blockBytes)
            if self == .q8_0 { ck_quantize_q8_0(w, &blocks, n, k) } else { ck_quantize_q4_0(w, &blocks, n, k) }
            return blocks
        }

        func dequantize(_ blocks: [UInt8], _ n: Int, _ k: Int) -> [Float] {
            var w = [Float](repeating: .nan, count: n * k)
            if self == .q8_0 { ck_dequantize_q8_0(blocks, &w, n, k) } else { ck_dequantize_q4_0(blocks, &w, n, k) }
            return w
        }

        func pack(_ blocks: [UInt8], _ n: Int, _ k: Int) -> [UInt8] {
            let size = self == .q8_0 ? ck_pack_q8_0_size(n, k) : ck_pack_q4_0_size(n, k)
            var p = [UInt8](repeating: 0xee, count: size)
            if self == .q8_0 { ck_pack_q8_0(blocks, &p, n, k) } else { ck_pack_q4_0(blocks, &p, n, k) }
            return p
        }

        func ref(_ x: [Float], _ blocks: [UInt8], _ m: Int, _ n: Int, _ k: Int) -> [Float] {
            var y = [Float](repeating: .nan, count: m * n)
            if self == .q8_0 { ck_matmul_q8_0_ref(x, blocks, &y, m, n, k) } else { ck_matmul_q4_0_ref(x, blocks, &y, m, n, k) }
            return y
        }

        func avx2(_ x: [Float], _ packed: [UInt8], _ m: Int, _ n: Int, _ k: Int) -> [Float] {
            var y = [Float](repeating: .nan, count: m * n)
            if self == .q8_0 { ck_matmul_q8_0_avx2(x, packed, &y, m, n, k) } else { ck_matmul_q4_0_avx2(x, packed, &y, m, n, k) }
            return y
        }

        func vnni(_ x: [Float], _ packed: [UInt8], _ m: Int, _ n: Int, _ k: Int) -> [Float] {
            var y = [Float](repeating: .nan, count: m * n)
            if self == .q8_0 { ck_matmul_q8_0_avx512(x, packed, &y, m, n, k) } else { ck_matmul_q4_0_avx512(x, packed, &y, m, n, k) }
            return y
        }
    }

    var hasVNNI: Bool { ck_cpu_has_avx512_vnni() != 0 }

    /// x quantized as the kernels do (d = max|x| / 127, q = nearest(x * 127 / max|x|)), per block.
    static func quantizeX(_ x: [Float], _ m: Int, _ k: Int) -> (q: [Double], d: [Double]) {
        var q = [Double](repeating: 0, count: m * k), d = [Double](repeating: 0, count: m * k / 32)
        for b in 0..<(m * k / 32) {
            let block = x[(b * 32)..<(b * 32 + 32)]
            let amax = block.map { abs($0) }.max() ?? 0
            d[b] = Double(amax / 127)
            let id: Float = amax > 0 ? 127 / amax : 0
            for (j, v) in block.enumerated() { q[b * 32 + j] = Double((v * id).rounded(.toNearestOrEven)) }
        }
        return (q, d)
    }

    func testQuantizeFollowsGGUF() {
        var rng = Rng(3)
        let n = 5, k = 96
        let w = rng.floats(n * k, scale: 0.7)
        for format in Format.allCases {
            let back = format.dequantize(format.quantize(w, n, k), n, k)
            for b in 0..<(n * k / 32) {
                let block = Array(w[(b * 32)..<(b * 32 + 32)]), deq = Array(back[(b * 32)..<(b * 32 + 32)])
                let amax = block.map { abs($0) }.max()!
                // q8_0: step max|w| / 127 (float16-rounded, relative 2^-11); error half a step.
                // q4_0: step max|w| / 8; the largest-magnitude weight maps to q = 0 (-8 steps) and
                // the opposite side clamps at +7 steps, so the error is at most one step there.
                let step = Double(amax) / (format == .q8_0 ? 127 : 8) * (1 + 0x1p-10)
                let bound = format == .q8_0 ? step / 2 * 1.01 : step
                for j in 0..<32 {
                    XCTAssertLessThanOrEqual(abs(Double(block[j]) - Double(deq[j])), bound, "\(format) block \(b) element \(j)")
                }
                if format == .q4_0 {
                    let m = block.max { abs($0) < abs($1) }!
                    let j = block.firstIndex(of: m)!
                    XCTAssertEqual(Double(deq[j]), Double(m), accuracy: Double(amax) * 0x1p-10, "q4_0 extreme of block \(b)")
                }
            }
        }
    }

    /// Halfway cases round to even, as nearbyintf does: blocks whose scale comes out exactly 1
    /// (q8_0: max |w| = 127; q4_0: the extreme weight -8) holding every k + 0.5 in range.
    func testQuantizeRoundsHalfwayToEven() {
        for format in Format.allCases {
            let extreme: Float = format == .q8_0 ? 127 : -8
            let halves: [Float] = format == .q8_0 ? (-126..<126).map { Float($0) + 0.5 } : (-8..<7).map { Float($0) + 0.5 }
            var w: [Float] = []
            for start in stride(from: 0, to: halves.count, by: 31) {
                let part = halves[start..<min(start + 31, halves.count)]
                w += [extreme] + part + [Float](repeating: 0, count: 31 - part.count)
            }
            let back = format.dequantize(format.quantize(w, 1, w.count), 1, w.count)
            for (x, y) in zip(w, back) {
                XCTAssertEqual(y, x.rounded(.toNearestOrEven), "\(format): \(x)")
            }
        }
    }

    /// Integers with unit block scales: x blocks each hold ±127 (d_x = 1), q8_0 weight blocks ±127,
    /// q4_0 weight blocks -8 (d_w = 1). Every product, block sum and float sum is then an exact
    /// integer below 2^24, so the reference and both kernels must give the exact product.
    func integerProblem(_ format: Format, m: Int, n: Int, k: Int, seed: UInt64) -> (x: [Float], w: [Float], exact: [Float]) {
        var rng = Rng(seed)
        var x = (0..<(m * k)).map { _ in Float(rng.int(255) - 127) }
        var w = (0..<(n * k)).map { _ in Float(format == .q8_0 ? rng.int(255) - 127 : rng.int(16) - 8) }
        for b in 0..<(m * k / 32) { x[b * 32 + rng.int(32)] = rng.int(2) == 0 ? 127 : -127 }
        for b in 0..<(n * k / 32) { w[b * 32 + rng.int(32)] = format == .q8_0 ? 127 : -8 }
        var exact = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0
                for kk in 0..<k { s += Int(x[i * k + kk]) * Int(w[j * k + kk]) }
                exact[i * n + j] = Float(s)
            }
        }
        return (x, w, exact)
    }

    func testIntegerSumsAreExact() throws {
        try skipUnlessAVX2()
        for format in Format.allCases {
            for (m, n, k) in [(1, 1, 32), (1, 70, 64), (7, 33, 544), (13, 64, 96), (130, 40, 1024)] {
                let p = integerProblem(format, m: m, n: n, k: k, seed: UInt64(m * 1000 + n + k))
                let blocks = format.quantize(p.w, n, k), packed = format.pack(blocks, n, k)
                let what = "\(format) \(m)x\(n)x\(k)"
                assertBitIdentical(format.ref(p.x, blocks, m, n, k), p.exact, "reference \(what)")
                assertBitIdentical(format.avx2(p.x, packed, m, n, k), p.exact, "AVX2 \(what)")
                if hasVNNI { assertBitIdentical(format.vnni(p.x, packed, m, n, k), p.exact, "VNNI \(what)") }
            }
        }
    }

    /// Random floats. Against the reference: the kernels differ only in float rounding of the block
    /// terms: (d_x S' - e) d_w against d_x d_w S, with S' = S + offset sum(q_x) and e rounded once,
    /// then a float sum over K / 32 blocks. Each term is within 4u of its size, whose magnitude
    /// is at most d_x |d_w| (sum|q_x q_w| + offset sum|q_x|), and the sum adds K / 32 roundings
    /// of the running total. Against the dequantized product (in double): x's rounding to its
    /// block step, at most d_x / 2 per element, times |w|.
    func testRandomAgainstReferenceAndDequantized() throws {
        try skipUnlessAVX2()
        for format in Format.allCases {
            for (m, n, k) in [(1, 100, 1024), (14, 65, 544), (64, 96, 256)] {
                var rng = Rng(UInt64(m + n + k))
                let x = rng.floats(m * k, scale: 2), w = rng.floats(n * k, scale: 0.1)
                let blocks = format.quantize(w, n, k), packed = format.pack(blocks, n, k)
                let wq = format.dequantize(blocks, n, k).map(Double.init)
                let (qx, dx) = Self.quantizeX(x, m, k)
                var kernelTol = [Double](repeating: 0, count: m * n)
                var deq = [Double](repeating: 0, count: m * n), deqTol = [Double](repeating: 0, count: m * n)
                for i in 0..<m {
                    for j in 0..<n {
                        var size = 0.0, exact = 0.0, slack = 0.0
                        for b in 0..<(k / 32) {
                            var pq = 0.0, sq = 0.0, dw = 0.0
                            for t in 0..<32 {
                                let kk = b * 32 + t
                                exact += Double(x[i * k + kk]) * wq[j * k + kk]
                                slack += abs(wq[j * k + kk]) * dx[i * k / 32 + b] / 2
                                dw = max(dw, abs(wq[j * k + kk]))
                                sq += abs(qx[i * k + kk])
                                pq += abs(qx[i * k + kk] * wq[j * k + kk])
                            }
                            // d_w |S| <= sum|q_x w|; d_w offset sum|q_x| <= offset sum|q_x| max|w| (q >= 1 step)
                            size += dx[i * k / 32 + b] * (pq + format.offset * sq * dw)
                        }
                        kernelTol[i * n + j] = (4 + Double(k / 32)) * u * size * 2
                        deq[i * n + j] = exact
                        deqTol[i * n + j] = slack * 1.001 + Double(k) * u * size
                    }
                }
                let what = "\(format) \(m)x\(n)x\(k)"
                let ref = format.ref(x, blocks, m, n, k)
                assertClose(ref, deq, tol: deqTol, "reference against dequantized \(what)")
                assertClose(format.avx2(x, packed, m, n, k), ref.map(Double.init), tol: kernelTol, "AVX2 \(what)")
                if hasVNNI {
                    assertClose(format.vnni(x, packed, m, n, k), ref.map(Double.init), tol: kernelTol, "VNNI \(what)")
                }
            }
        }
    }

    typealias Kernel = ([Float], [UInt8], Int, Int, Int) -> [Float]

    /// For each format and each kernel this CPU runs (AVX2, and VNNI if present), on random x (m, k)
    /// and w (n, k): `check` gets a label, x, the packed weights, the kernel, and its results on
    /// one thread and on two.
    func onOneAndTwoThreads(m: Int, n: Int, k: Int, seed: UInt64, wScale: Float,
                            _ check: (String, [Float], [UInt8], Kernel, [Float], [Float]) -> Void) {
        var rng = Rng(seed)
        let x = rng.floats(m * k), w = rng.floats(n * k, scale: wScale)
        for format in Format.allCases {
            let packed = format.pack(format.quantize(w, n, k), n, k)
            let runs: [(String, Kernel)] = [("AVX2", format.avx2)] + (hasVNNI ? [("VNNI", format.vnni)] : [])
            for (name, run) in runs {
                let one = withThreads(1) { run(x, packed, m, n, k) }
                let two = withThreads(2) { run(x, packed, m, n, k) }
                check("\(format) \(name)", x, packed, run, one, two)
            }
        }
    }

    func testThreadsAndRowsDoNotChangeResults() throws {
        try skipUnlessAVX2()
        let (m, n, k) = (37, 200, 1024)
        onOneAndTwoThreads(m: m, n: n, k: k, seed: 11, wScale: 0.05) { what, x, packed, run, one, two in
            assertBitIdentical(one, two, "\(what) 1 vs 2 threads")
            let row = withThreads(2) { run(Array(x[(5 * k)..<(6 * k)]), packed, 1, n, k) }
            assertBitIdentical(row, Array(one[(5 * n)..<(6 * n)]), "\(what) decode row vs batch")
        }
    }

    /// Two threads split only the panels here, so they quantize x together into one buffer, in
    /// slabs of rows whose packed x fits 4 MiB (gemm.c, gemm_shared_x): at K = 8192 a row tile's
    /// packed x is 60 KiB, so 700 rows (117 tiles) are two slabs of 58 and 59 tiles. One thread
    /// packs x for itself, tile by tile; the results must be the same bits, and the first 100 rows
    /// must equal a batch of their own.
    func testSharedPackingOverSeveralSlabs() throws {
        try skipUnlessAVX2()
        let (m, n, k) = (700, 40, 8192)
        onOneAndTwoThreads(m: m, n: n, k: k, seed: 29, wScale: 0.02) { what, x, packed, run, one, two in
            XCTAssertFalse(one.contains { !$0.isFinite }, "\(what) output is finite")
            assertBitIdentical(one, two, "\(what) 1 vs 2 threads over two slabs")
            let head = withThreads(2) { run(Array(x[0..<(100 * k)]), packed, 100, n, k) }
            assertBitIdentical(head, Array(one[0..<(100 * n)]), "\(what) 100 rows vs 700")
        }
    }

    func testPackLayoutQ8() {
        let (n, k) = (33, 64)
        var rng = Rng(5)
        let w = rng.floats(n * k)
        let blocks = Format.q8_0.quantize(w, n, k), packed = Format.q8_0.pack(blocks, n, k)
        XCTAssertEqual(packed.count, 2 * 2 * 32 * 34)
        // Column 17 of panel 0, block 1, k = 4 * 3 + 2: group 3, vector 1, lane 1, byte 2.
        let q = Int8(bitPattern: blocks[(17 * 2 + 1) * 34 + 2 + 14])
        XCTAssertEqual(Int(packed[1 * 1088 + 3 * 128 + 64 + 4 + 2]), Int(q) + 128)
        // Its scale, and the zero scale of a padding column (panel 1 holds only column 32).
        XCTAssertEqual(packed[1 * 1088 + 1024 + 17 * 2], blocks[(17 * 2 + 1) * 34])
        XCTAssertEqual(packed[(2 + 1) * 1088 + 1024 + 31 * 2], 0)
    }

    /// A row read back out of the packed layout (a tied model's embedding lookup) is the row of
    /// dequantize(blocks), bit for bit, for every row of N around the panel and K of 1-3 blocks.
    func testPackedRowsEqualDequantizedRows() {
        for format in Format.allCases {
            for (n, k) in [(1, 32), (31, 64), (33, 96), (70, 32)] {
                var rng = Rng(UInt64(n * 100 + k))
                let blocks = format.quantize(rng.floats(n * k), n, k)
                let want = format.dequantize(blocks, n, k), packed = format.pack(blocks, n, k)
                for row in 0..<n {
                    var got = [Float](repeating: .nan, count: k)
                    if format == .q8_0 { ck_packed_row_q8_0(packed, row, k, &got) } else { ck_packed_row_q4_0(packed, row, k, &got) }
                    XCTAssertEqual(got, Array(want[(row * k)..<((row + 1) * k)]), "\(format) N=\(n) K=\(k) row \(row)")
                }
            }
        }
    }
}
