// AttentionTests.swift — standard and streaming causal GQA attention (reference, AVX2 and
// AVX-512) against a naive double-precision attention written here, across GQA ratios, head
// sizes, block sizes, decode steps, chunked prefill, thread counts and flash-decoding splits;
// and the partial softmax states over slices of the keys, merged, against the unsplit kernels.
import CKernels
import Foundation
import XCTest

final class AttentionTests: XCTestCase {
    /// One attention problem. The cache has room past pos0 + T, filled with NaN: a kernel that
    /// reads a key or value it must not see turns its output into NaN.
    struct Problem {
        let T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int, cap: Int
        let q: [Float], k: [Float], v: [Float]
        var scale: Float { 1 / Float(D).squareRoot() }

        init(T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int, seed: UInt64) {
            self.T = T
            self.pos0 = pos0
            self.Hq = Hq
            self.Hkv = Hkv
            self.D = D
            cap = pos0 + T + 3
            var rng = Rng(seed)
            // Queries scaled up so that some softmax rows are peaked and some flat.
            q = rng.floats(T * Hq * D, scale: 3)
            var k = [Float](repeating: .nan, count: Hkv * cap * D), v = k
            for h in 0..<Hkv {
                for j in 0..<(pos0 + T) {
                    for d in 0..<D {
                        k[(h * cap + j) * D + d] = rng.float()
                        v[(h * cap + j) * D + d] = rng.float()
                    }
                }
            }
            self.k = k
            self.v = v
        }

        /// The queries t0 ..< t0+count as their own problem over the same cache (a decode step
        /// or a prefill chunk).
        func slice(_ t0: Int, _ count: Int) -> Problem {
            Problem(T: count, pos0: pos0 + t0, Hq: Hq, Hkv: Hkv, D: D, cap: cap,
                    q: Array(q[t0 * Hq * D..<(t0 + count) * Hq * D]), k: k, v: v)
        }

        init(T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int, cap: Int, q: [Float],
                     k: [Float], v: [Float]) {
            (self.T, self.pos0, self.Hq, self.Hkv, self.D, self.cap) = (T, pos0, Hq, Hkv, D, cap)
            (self.q, self.k, self.v) = (q, k, v)
        }

        /// Naive attention in double, with a float error bound for each output derived from the
        /// inputs. A score s_j is a dot product of D terms then scaled: error within
        /// scale (D+1) u sum|q k_j|. Its weight exp(s_j - m) then carries a relative error of
        /// that, plus u |s_j - m| from the subtraction, a few u from exp, and for streaming a
        /// rescale by exp(m_old - m_new) per KV block (at most n blocks, total shift of m at most
        /// 2 max|s|). Relative errors eps in the weights move a convex combination of values by at
        /// most 2 eps max|v|; the weighted sum itself adds (n + 4) u sum p |v|.
        /// `rounding` > 0 adds the bf16 kernels' rounding points, each a relative error of at most
        /// `rounding`: q entering the scores (scale |q|·|k_j| more error in s_j) and each weight
        /// entering P·V (rounding sum p |v| more in the output; l sums the unrounded weights).
        /// `expError` > 0: the weights come from a cheaper exp of relative error expError at
        /// t = s log2(e) - m log2(e) (the AVX512_BF16 tile's), whose roundings (t's, m log2(e)'s
        /// and log2(e)'s) give u (2 |s - m| + |m|) where the f32 path's subtraction gave
        /// u |s - m|: at most 3 u max|s| more. l sums those same weights, so all of it joins eps.
        func naive(rounding: Double = 0, expError: Double = 0) -> (want: [Double], tol: [Double]) {
            var want = [Double](repeating: 0, count: T * Hq * D), tol = want
            let group = Hq / Hkv, sc = Double(scale)
            for t in 0..<T {
                let n = pos0 + t + 1
                for h in 0..<Hq {
                    let kvh = h / group, qo = (t * Hq + h) * D
                    var s = [Double](repeating: 0, count: n), a = s
                    for j in 0..<n {
                        let ko = (kvh * cap + j) * D
                        for d in 0..<D {
                            let p = Double(q[qo + d]) * Double(k[ko + d])
                            s[j] += p
                            a[j] += abs(p)
                        }
                        s[j] *= sc
                    }
                    let m = s.max()!, maxAbsS = s.map(abs).max()!
                    let w = s.map { exp($0 - m) }
                    let z = w.reduce(0, +)
                    var eps = 0.0
                    for j in 0..<n {
                        eps = max(eps, sc * (Double(D + 1) * u + rounding) * a[j] + u * abs(s[j] - m))
                    }
                    eps += u * (8 + 5 * Double(n) + 2 * maxAbsS)
                    if expError > 0 { eps += expError + 3 * u * maxAbsS }
                    for d in 0..<D {
                        var o = 0.0, absSum = 0.0, maxV = 0.0
                        for j in 0..<n {
                            let vj = Double(v[(kvh * cap + j) * D + d])
                            o += w[j] / z * vj
                            absSum += w[j] / z * abs(vj)
                            maxV = max(maxV, abs(vj))
                        }
                        want[qo + d] = o
                        tol[qo + d] = 2 * eps * maxV + (Double(n + 4) * u + rounding) * absSum
                    }
                }
            }
            return (want, tol)
        }
    }

    enum Kernel: CustomStringConvertible {
        case standardRef, standardAVX2, standardAVX512
        case streamingRef(qBlock: Int, kvBlock: Int), streamingAVX2(qBlock: Int, kvBlock: Int)
        case streamingAVX512(qBlock: Int, kvBlock: Int)

        var description: String {
            switch self {
            case .standardRef: return "standard ref"
            case .standardAVX2: return "standard avx2"
            case .standardAVX512: return "standard avx512"
            case let .streamingRef(qb, kvb): return "streaming ref q\(qb) kv\(kvb)"
            case let .streamingAVX2(qb, kvb): return "streaming avx2 q\(qb) kv\(kvb)"
            case let .streamingAVX512(qb, kvb): return "streaming avx512 q\(qb) kv\(kvb)"
            }
        }

        var isStandard: Bool {
            switch self {
            case .standardRef, .standardAVX2, .standardAVX512: return true
            default: return false
            }
        }
    }

    private let guardFloats = 64
    private let sentinel = Float(bitPattern: 0x7fc0_dead)

    /// Runs one kernel with exactly the scratch its size function asks for, followed by a guard
    /// band that must come back untouched; out starts as NaN, so every output must be written.
    func run(_ p: Problem, _ kernel: Kernel, slots: Int32 = 2,
             file: StaticString = #filePath, line: UInt = #line) -> [Float] {
        let needed: Int
        switch kernel {
        case .standardRef, .standardAVX2, .standardAVX512:
            needed = ck_attention_standard_scratch(p.T, p.pos0, slots)
        case let .streamingRef(qb, kvb), let .streamingAVX2(qb, kvb), let .streamingAVX512(qb, kvb):
            needed = ck_attention_streaming_scratch(qb, kvb, p.D, slots)
        }
        var scratch = [Float](repeating: .nan, count: needed + guardFloats)
        for i in needed..<scratch.count { scratch[i] = sentinel }
        var out = [Float](repeating: .nan, count: p.T * p.Hq * p.D)
        switch kernel {
        case .standardRef:
            ck_attention_standard_f32_ref(p.q, p.k, p.v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D,
                                          p.cap, p.scale, &scratch, slots)
        case .standardAVX2:
            ck_attention_standard_f32_avx2(p.q, p.k, p.v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D,
                                           p.cap, p.scale, &scratch, slots)
        case .standardAVX512:
            ck_attention_standard_f32_avx512(p.q, p.k, p.v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D,
                                             p.cap, p.scale, &scratch, slots)
        case let .streamingRef(qb, kvb):
            ck_attention_streaming_f32_ref(p.q, p.k, p.v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D,
                                           p.cap, p.scale, qb, kvb, &scratch, slots)
        case let .streamingAVX2(qb, kvb):
            ck_attention_streaming_f32_avx2(p.q, p.k, p.v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D,
                                            p.cap, p.scale, qb, kvb, &scratch, slots)
        case let .streamingAVX512(qb, kvb):
            ck_attention_streaming_f32_avx512(p.q, p.k, p.v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D,
                                              p.cap, p.scale, qb, kvb, &scratch, slots)
        }
        let touched = scratch[needed...].contains { $0.bitPattern != sentinel.bitPattern }
        XCTAssertFalse(touched, "\(kernel) wrote past its scratch", file: file, line: line)
        return out
    }

    /// Blocks that divide nothing, blocks larger than every sequence, single rows and keys, and
    /// tiles of 8 or more rows (the SIMD kernels compute those key-major, smaller ones row-major)
    /// with partial vectors of rows and partial micro-tiles of keys.
    static let blocks = [(8, 16), (5, 7), (64, 128), (1, 1), (3, 64), (24, 9), (17, 33)]

    /// Every kernel this CPU can run.
    private var kernels: [Kernel] {
        let blocks = Self.blocks
        var k: [Kernel] = [.standardRef] + blocks.map { .streamingRef(qBlock: $0.0, kvBlock: $0.1) }
        if ck_cpu_has_avx2_fma() != 0 {
            k += [.standardAVX2] + blocks.map { .streamingAVX2(qBlock: $0.0, kvBlock: $0.1) }
        }
        if ck_cpu_has_avx512() != 0 {
            k += [.standardAVX512] + blocks.map { .streamingAVX512(qBlock: $0.0, kvBlock: $0.1) }
        }
        return k
    }

    /// Every kernel against the naive attention, and standard against streaming directly:
    /// GQA ratios 1, 2, 4; head sizes down to 2 and not multiples of 8; prefill, decode
    /// (T = 1, pos0 > 0), a prefill chunk after cached tokens, and a one-token sequence.
    func testAllKernelsAgainstNaive() {
        var seed: UInt64 = 100
        for (Hq, Hkv) in [(2, 2), (4, 2), (8, 2)] {
            for D in [2, 16, 34, 128] {
                for (T, pos0) in [(37, 0), (1, 50), (13, 20), (1, 0)] {
                    seed += 1
                    let p = Problem(T: T, pos0: pos0, Hq: Hq, Hkv: Hkv, D: D, seed: seed)
                    let (want, tol) = p.naive()
                    let standard = run(p, .standardRef)
                    for kernel in kernels {
                        let what = "\(kernel) Hq=\(Hq) Hkv=\(Hkv) D=\(D) T=\(T) pos0=\(pos0)"
                        let out = run(p, kernel)
                        assertClose(out, want, tol: tol, what)
                        assertClose(out, standard.map(Double.init), tol: tol.map { 2 * $0 },
                                    "\(what) vs standard ref")
                    }
                }
            }
        }
    }

    /// The row-major decode tile (tiles of fewer than CK_ATTENTION_AVX512_MIN_ROWS rows, head
    /// size 128) at every group size it takes in a tile, 1 to 7 rows: decode and short chunks
    /// whose tiles hold rows of different positions, key counts that leave partial blocks and
    /// partial steps of keys, one KV block or many, 1 and 2 slots (2 splits decode keys).
    func testDecodeTileEveryGroupSize() {
        var seed: UInt64 = 500
        let streaming = kernels.filter { !$0.isStandard }
        withThreads(2) {
            for G in 1...7 {
                for (T, pos0) in [(1, 0), (1, 6), (1, 301), (2, 45), (3, 130)] {
                    seed += 1
                    let p = Problem(T: T, pos0: pos0, Hq: 2 * G, Hkv: 2, D: 128, seed: seed)
                    let (want, tol) = p.naive()
                    for kernel in streaming {
                        for slots in Int32(1)...2 {
                            let what = "\(kernel) G=\(G) T=\(T) pos0=\(pos0) \(slots) slots"
                            assertClose(run(p, kernel, slots: slots), want, tol: tol, what)
                        }
                    }
                }
            }
        }
    }

    /// Attention of token t computed within a prefill equals a decode step at pos0 = t, and a
    /// prefill split into two chunks equals the whole prefill.
    func testPrefillThenDecodeConsistency() {
        let p = Problem(T: 20, pos0: 0, Hq: 4, Hkv: 2, D: 24, seed: 7)
        let (_, tol) = p.naive()
        let rowFloats = p.Hq * p.D
        for kernel in kernels {
            let prefill = run(p, kernel)
            for t in 0..<p.T {
                let step = run(p.slice(t, 1), kernel)
                let rows = t * rowFloats..<(t + 1) * rowFloats
                assertClose(step, prefill[rows].map(Double.init), tol: tol[rows].map { 2 * $0 },
                            "\(kernel) decode of token \(t)")
            }
            let chunked = run(p.slice(0, 12), kernel) + run(p.slice(12, 8), kernel)
            assertClose(chunked, prefill.map(Double.init), tol: tol.map { 2 * $0 },
                        "\(kernel) prefill in two chunks")
        }
    }

    /// One slot forces one thread (a thread's slot is its thread number), and the split of
    /// heads or (KV head, row block) tiles between 1 to 4 threads does not change any result:
    /// every kernel has at least 4 tiles here, so none splits keys for flash decoding.
    func testSlotCountDoesNotChangeResults() {
        let p = Problem(T: 33, pos0: 9, Hq: 8, Hkv: 4, D: 40, seed: 9)
        withThreads(4) {
            for kernel in kernels {
                let one = run(p, kernel, slots: 1)
                for slots in Int32(2)...4 {
                    let other = run(p, kernel, slots: slots)
                    assertBitIdentical(one, other, "\(kernel) \(slots) slots")
                }
            }
        }
    }

    /// Flash decoding: with fewer tiles than threads, streaming attention splits each tile's
    /// keys over the threads and merges the partial results. Split (2 to 4 slots) against
    /// unsplit (1 slot) and the naive attention: a decode step over a long cache, GQA 1 and 4, a
    /// short decode chunk, and a prefill so short that a split holds keys some rows cannot see.
    func testFlashDecodingSplitsAgreeWithUnsplit() {
        var seed: UInt64 = 300
        let cases: [(T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int)] = [
            (1, 300, 1, 1, 128), (1, 200, 4, 1, 34), (1, 97, 4, 2, 16), (3, 150, 2, 1, 24),
            (3, 0, 2, 1, 8), (1, 260, 3, 1, 128), (2, 170, 5, 1, 128),
        ]
        let streaming = kernels.filter { !$0.isStandard }
        withThreads(4) {
            for c in cases {
                seed += 1
                let p = Problem(T: c.T, pos0: c.pos0, Hq: c.Hq, Hkv: c.Hkv, D: c.D, seed: seed)
                let (want, tol) = p.naive()
                for kernel in streaming {
                    let unsplit = run(p, kernel, slots: 1)
                    assertClose(unsplit, want, tol: tol, "\(kernel) unsplit \(c)")
                    for slots in Int32(2)...4 {
                        let what = "\(kernel) \(slots) slots \(c)"
                        let split = run(p, kernel, slots: slots)
                        assertClose(split, want, tol: tol, what)
                        assertClose(split, unsplit.map(Double.init), tol: tol.map { 2 * $0 },
                                    "\(what) vs unsplit")
                    }
                }
            }
        }
    }

    /// The SIMD tiles on a prompt long enough for many KV blocks per tile and several tiles per
    /// KV head, at the benchmark's default blocks and at blocks that leave partial vectors of
    /// rows and partial micro-tiles of keys, over 1 and 2 threads.
    func testSIMDTilesOnALongPrompt() throws {
        try skipUnlessAVX2()
        let p = Problem(T: 301, pos0: 20, Hq: 4, Hkv: 2, D: 128, seed: 13)
        let (want, tol) = p.naive()
        let blocks = [(128, 128), (64, 64), (40, 96)]
        var tiles: [Kernel] = blocks.map { .streamingAVX2(qBlock: $0.0, kvBlock: $0.1) }
        if ck_cpu_has_avx512() != 0 {
            tiles += blocks.map { .streamingAVX512(qBlock: $0.0, kvBlock: $0.1) }
        }
        withThreads(2) {
            for kernel in tiles {
                for slots in Int32(1)...2 {
                    let out = run(p, kernel, slots: slots)
                    assertClose(out, want, tol: tol, "\(kernel) \(slots) slots")
                }
            }
        }
    }

    /// The AVX-512 tiles against the AVX2 ones on the same problem: two different instruction
    /// sets, summation orders and exp implementations, within twice the bound of each.
    func testAVX512AgreesWithAVX2() throws {
        if ck_cpu_has_avx512() == 0 { throw XCTSkip("CPU lacks AVX-512 (F, BW, VL)") }
        let p = Problem(T: 77, pos0: 5, Hq: 8, Hkv: 2, D: 64, seed: 14)
        let (_, tol) = p.naive()
        for (qb, kvb) in [(128, 128), (16, 8), (9, 13)] {
            let a = run(p, .streamingAVX2(qBlock: qb, kvBlock: kvb))
            let b = run(p, .streamingAVX512(qBlock: qb, kvBlock: kvb))
            assertClose(b, a.map(Double.init), tol: tol.map { 2 * $0 }, "q\(qb) kv\(kvb)")
        }
    }

    /// The standard attention's decode step over a long cache at 1 to 4 threads agrees with the
    /// naive attention: with 2 heads, 3 and 4 threads split each head's keys and then its
    /// columns of V between them (the AVX2 and AVX-512 versions).
    func testStandardDecodeAtEveryThreadCount() {
        let p = Problem(T: 1, pos0: 500, Hq: 2, Hkv: 1, D: 64, seed: 11)
        let (want, tol) = p.naive()
        let standard = kernels.filter { $0.isStandard }
        withThreads(4) {
            for kernel in standard {
                for slots in Int32(1)...4 {
                    let out = run(p, kernel, slots: slots)
                    assertClose(out, want, tol: tol, "\(kernel) \(slots) slots")
                }
            }
        }
    }

    /// The AVX-512 standard attention against the reference on shapes that leave partial
    /// vectors everywhere: ragged prompts, head sizes not a multiple of 16, GQA 1, 2 and 4, decode
    /// steps after a cache (long enough at 3 and 4 slots for the split of keys and columns), and
    /// 1 to 4 slots. Both are within the naive bound, so they differ by at most twice it.
    func testStandardAVX512AgainstReferenceOnOddShapes() throws {
        if ck_cpu_has_avx512() == 0 { throw XCTSkip("CPU lacks AVX-512 (F, BW, VL)") }
        var seed: UInt64 = 500
        let cases: [(T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int)] = [
            (19, 0, 2, 2, 5), (23, 4, 4, 2, 17), (9, 0, 8, 2, 33), (1, 70, 4, 1, 130), (1, 260, 2, 1, 47),
            (2, 11, 2, 1, 128), (1, 0, 4, 4, 16),
        ]
        withThreads(4) {
            for c in cases {
                seed += 1
                let p = Problem(T: c.T, pos0: c.pos0, Hq: c.Hq, Hkv: c.Hkv, D: c.D, seed: seed)
                let (want, tol) = p.naive()
                for slots in Int32(1)...4 {
                    let what = "\(c) \(slots) slots"
                    let reference = run(p, .standardRef, slots: slots)
                    let simd = run(p, .standardAVX512, slots: slots)
                    assertClose(simd, want, tol: tol, what)
                    assertClose(simd, reference.map(Double.init), tol: tol.map { 2 * $0 }, "\(what) vs ref")
                }
            }
        }
    }

    enum ISA: CaseIterable { case ref, avx2, avx512 }

    /// ISAs this CPU runs.
    private var isas: [ISA] {
        ISA.allCases.filter { isa in
            switch isa {
            case .ref: return true
            case .avx2: return ck_cpu_has_avx2_fma() != 0
            case .avx512: return ck_cpu_has_avx512() != 0
            }
        }
    }

    /// The partial states of p over the key ranges `slices`, each from its own call with the
    /// scratch its size function asks for, merged into the output.
    func partialThenMerge(_ p: Problem, _ isa: ISA, slices: [Range<Int>], qBlock: Int, kvBlock: Int,
                          slots: Int32) -> [Float] {
        let rows = p.T * p.Hq, stateFloats = ck_attention_state_floats(rows, p.D)
        XCTAssertEqual(stateFloats, rows * (p.D + 2))
        var states = [Float](repeating: .nan, count: slices.count * stateFloats)
        var scratch = [Float](repeating: .nan, count: ck_attention_streaming_scratch(qBlock, kvBlock, p.D, slots))
        for (i, keys) in slices.enumerated() {
            states.withUnsafeMutableBufferPointer { all in
                let state = all.baseAddress! + i * stateFloats
                let partial = switch isa {
                case .ref: ck_attention_partial_f32_ref
                case .avx2: ck_attention_partial_f32_avx2
                case .avx512: ck_attention_partial_f32_avx512
                }
                partial(p.q, p.k, p.v, state, p.T, p.pos0, p.Hq, p.Hkv, p.D, p.cap, p.scale, keys.lowerBound,
                        keys.upperBound, qBlock, kvBlock, &scratch, slots)
            }
        }
        var out = [Float](repeating: .nan, count: rows * p.D)
        ck_attention_merge_f32(states, slices.count, rows, p.D, &out)
        return out
    }

    /// Cuts 0 ..< n into `parts` ranges at the given fractions, some of them empty.
    static func slices(_ n: Int, _ cuts: [Int]) -> [Range<Int>] {
        let bounds = [0] + cuts.map { min($0, n) } + [n]
        return (0..<(bounds.count - 1)).map { bounds[$0]..<bounds[$0 + 1] }
    }

    /// Partial states over 1 to 4 slices of the keys, merged, equal the unsplit streaming kernel
    /// of the same ISA and the naive attention: slices that are empty, slices past every row's
    /// causal end (a prefill's first rows see none of a late slice), slices not on block bounds,
    /// decode and prefill, GQA 1, 2 and 4, over 1 and 3 slots (3 splits decode keys over threads
    /// inside a slice too).
    func testPartialStatesMergedEqualTheUnsplitKernel() {
        var seed: UInt64 = 700
        let cases: [(T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int)] = [
            (1, 90, 2, 1, 34), (1, 150, 4, 1, 16), (17, 0, 4, 2, 24), (6, 40, 2, 2, 128),
            (1, 150, 3, 1, 128), (2, 61, 4, 1, 128),
        ]
        withThreads(3) {
            for c in cases {
                seed += 1
                let p = Problem(T: c.T, pos0: c.pos0, Hq: c.Hq, Hkv: c.Hkv, D: c.D, seed: seed)
                let n = p.pos0 + p.T
                let (want, tol) = p.naive()
                let cutsets: [[Int]] = [[], [n / 2], [0, n / 3], [5, 5, n - 3], [n / 4, n / 2, 3 * n / 4], [n, n]]
                for isa in isas {
                    for (qb, kvb) in [(8, 16), (3, 7)] {
                        let unsplit: [Float]
                        switch isa {
                        case .ref: unsplit = run(p, .streamingRef(qBlock: qb, kvBlock: kvb))
                        case .avx2: unsplit = run(p, .streamingAVX2(qBlock: qb, kvBlock: kvb))
                        case .avx512: unsplit = run(p, .streamingAVX512(qBlock: qb, kvBlock: kvb))
                        }
                        for cuts in cutsets {
                            for slots in [Int32(1), 3] {
                                let what = "\(isa) \(c) q\(qb) kv\(kvb) cuts \(cuts) \(slots) slots"
                                let merged = partialThenMerge(p, isa, slices: Self.slices(n, cuts), qBlock: qb,
                                                              kvBlock: kvb, slots: slots)
                                assertClose(merged, want, tol: tol, what)
                                assertClose(merged, unsplit.map(Double.init), tol: tol.map { 2 * $0 }, "\(what) vs unsplit")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A state over an empty range, or over keys a row cannot see, is empty (acc 0, m -inf, l 0),
    /// and merging only empty states gives 0.
    func testEmptyStatesWeighNothing() {
        let p = Problem(T: 3, pos0: 0, Hq: 2, Hkv: 1, D: 5, seed: 800)
        let rows = p.T * p.Hq, width = p.D + 2
        for isa in isas {
            var scratch = [Float](repeating: .nan, count: ck_attention_streaming_scratch(4, 4, p.D, 1))
            var state = [Float](repeating: .nan, count: ck_attention_state_floats(rows, p.D))
            let partial = switch isa {
            case .ref: ck_attention_partial_f32_ref
            case .avx2: ck_attention_partial_f32_avx2
            case .avx512: ck_attention_partial_f32_avx512
            }
            // Keys 2 ..< 3: only token 2 (rows 4 and 5) sees key 2.
            partial(p.q, p.k, p.v, &state, p.T, p.pos0, p.Hq, p.Hkv, p.D, p.cap, p.scale, 2, 3, 4, 4, &scratch, 1)
            for r in 0..<rows {
                let row = Array(state[r * width..<(r + 1) * width])
                if r < 4 {
                    XCTAssertEqual(row, [Float](repeating: 0, count: p.D) + [-.infinity, 0], "\(isa) row \(r)")
                } else {
                    XCTAssertEqual(row[p.D + 1], 1, "\(isa) row \(r): one key, its own max, weighs 1")
                }
            }
            var out = [Float](repeating: .nan, count: rows * p.D)
            ck_attention_merge_f32(state, 1, 2, p.D, &out)
            XCTAssertEqual(Array(out[0..<(2 * p.D)]), [Float](repeating: 0, count: 2 * p.D), "\(isa)")
        }
    }
}
