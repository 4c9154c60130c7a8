// AttentionBF16Tests.swift — attention over a bfloat16 KV cache: the reference, the AVX2 kernels
// (cache widened to f32, f32 FMAs) and the AVX512_BF16 kernels (vdpbf16ps), all at the reference's
// rounding points, standard and streaming, against
// the naive attention of AttentionTests on the same bf16-valued keys and values, with the bound
// of the bf16 rounding points derived there; partial states and flash-decoding splits too.
import CKernels
import Foundation
import XCTest

final class AttentionBF16Tests: XCTestCase {
    typealias Problem = AttentionTests.Problem

    /// Relative error of round-to-nearest-even to bfloat16 (8 significant bits): 2^-8. The
    /// kernels round q (times scale) and the softmax weights entering P·V to it.
    let bf16Rounding = 0x1p-8

    /// p with its keys and values rounded to bf16 (the cache holds what the kernels read), and
    /// those as uint16_t; NaN past the filled positions stays NaN.
    func rounded(_ p: Problem) -> (Problem, k: [UInt16], v: [UInt16]) {
        var k = [UInt16](repeating: 0, count: p.k.count), v = k
        ck_convert_f32_to_bf16(p.k, &k, k.count)
        ck_convert_f32_to_bf16(p.v, &v, v.count)
        var kf = [Float](repeating: 0, count: k.count), vf = kf
        ck_convert_bf16_to_f32(k, &kf, k.count)
        ck_convert_bf16_to_f32(v, &vf, v.count)
        let r = Problem(T: p.T, pos0: p.pos0, Hq: p.Hq, Hkv: p.Hkv, D: p.D, cap: p.cap, q: p.q, k: kf, v: vf)
        return (r, k, v)
    }

    enum ISA: CaseIterable { case ref, avx2, avx512 }
    enum Algorithm { case standard, streaming(qBlock: Int, kvBlock: Int) }

    /// ISAs this CPU runs on a bf16 cache.
    var isas: [ISA] {
        ISA.allCases.filter { isa in
            switch isa {
            case .ref: return true
            case .avx2: return ck_cpu_has_avx2_fma() != 0
            case .avx512: return ck_cpu_has_avx512() != 0 && ck_cpu_has_avx512_bf16() != 0
            }
        }
    }

    /// Every bf16 kernel has the reference's rounding points (AVX2 keeps them with f32 FMAs).
    func rounding(_ isa: ISA) -> Double { bf16Rounding }

    /// Relative error of the AVX512_BF16 streaming tile's exp (exp2_weights_bf16 in
    /// attention_avx512.c: a degree-3 polynomial for 2^f, 7.48e-5 at most, rounded up), beyond
    /// the f32 exp's roundings; the other kernels use the f32 exp. An upper bound for every
    /// avx512 streaming run, whichever tile (key-major or decode) it takes.
    static let weightsExpError = 7.5e-5

    func expError(_ isa: ISA, _ algorithm: Algorithm) -> Double {
        if case .streaming = algorithm, isa == .avx512 { return Self.weightsExpError }
        return 0
    }

    /// The tile's weights against exp in double over the range its arguments take: s - m from 0
    /// down past the smallest subnormal (weights there are 0 or within a subnormal step), -inf
    /// (a masked key) exactly +0, and running maxima from large negative to large positive,
    /// within the bound derived next to the function: relative 7.5e-5 + u (2 |s - m| + |m| + 1),
    /// plus 2^-150 where the result is subnormal.
    func testTileWeightsAgainstExp() throws {
        guard isas.contains(.avx512) else { throw XCTSkip("no AVX512_BF16") }
        var gaps = (0...20000).map { -Float($0) * 0.0061 }  // 0 .. -122, every phase of 2^f
        gaps += (0...600).map { -100 - Float($0) * 0.1 }  // the subnormal results and past them
        gaps += [-Float.ulpOfOne, -1e-7, -0.5, -1.0, -Float(1).nextDown, -1e4, -1e30]
        for m: Float in [0, 1.75, -3, 17.2, -40.5, 88, 300, -1000] {
            var s = gaps.map { m + $0 } + [-.infinity]
            s.append(m)
            var w = [Float](repeating: .nan, count: s.count)
            ck_attention_weights_bf16_avx512(s, s.count, m, &w)
            XCTAssertEqual(w[s.count - 2].bitPattern, Float(0).bitPattern, "-inf at m=\(m)")
            for i in 0..<(s.count - 2) where s[i] != -.infinity {
                let x = Double(s[i]) - Double(m), e = exp(x)
                let bound = (Self.weightsExpError + u * (2 * abs(x) + abs(Double(m)) + 1)) * e + 0x1p-150
                XCTAssertLessThanOrEqual(abs(Double(w[i]) - e), bound, "s=\(s[i]) m=\(m)")
            }
            XCTAssertEqual(Double(w[s.count - 1]), 1, accuracy: Self.weightsExpError + u * (abs(Double(m)) + 1))
        }
    }

    private let guardFloats = 64
    private let sentinel = Float(bitPattern: 0x7fc0_dead)

    /// One kernel with exactly the scratch its size function asks for and a guard band after it.
    func run(_ p: Problem, k: [UInt16], v: [UInt16], _ isa: ISA, _ algorithm: Algorithm, slots: Int32 = 2,
             file: StaticString = #filePath, line: UInt = #line) -> [Float] {
        let needed = switch algorithm {
        case .standard: ck_attention_standard_scratch(p.T, p.pos0, slots)
        case let .streaming(qb, kvb): ck_attention_streaming_scratch(qb, kvb, p.D, slots)
        }
        var scratch = [Float](repeating: .nan, count: needed + guardFloats)
        for i in needed..<scratch.count { scratch[i] = sentinel }
        var out = [Float](repeating: .nan, count: p.T * p.Hq * p.D)
        switch algorithm {
        case .standard:
            let f = switch isa {
            case .ref: ck_attention_standard_bf16_ref
            case .avx2: ck_attention_standard_bf16_avx2
            case .avx512: ck_attention_standard_bf16_avx512
            }
            f(p.q, k, v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D, p.cap, p.scale, &scratch, slots)
        case let .streaming(qb, kvb):
            let f = switch isa {
            case .ref: ck_attention_streaming_bf16_ref
            case .avx2: ck_attention_streaming_bf16_avx2
            case .avx512: ck_attention_streaming_bf16_avx512
            }
            f(p.q, k, v, &out, p.T, p.pos0, p.Hq, p.Hkv, p.D, p.cap, p.scale, qb, kvb, &scratch, slots)
        }
        let touched = scratch[needed...].contains { $0.bitPattern != sentinel.bitPattern }
        XCTAssertFalse(touched, "\(isa) \(algorithm) wrote past its scratch", file: file, line: line)
        return out
    }

    static let blocks = [(8, 16), (5, 7), (64, 128), (1, 1), (24, 9), (17, 33), (32, 3)]

    /// Every bf16 kernel against the naive attention of its rounded cache, within the f32 bound
    /// plus its rounding points; the SIMD ones also against the bf16 reference (both within the
    /// bound, so within twice it of each other): GQA 1, 2, 4, head sizes odd, small and 128,
    /// prefill, decode, a chunk after a cache, tiles of 8 or more rows (the vdpbf16ps tile) and
    /// fewer, odd numbers of keys in a block (a key pair's partner is padding).
    func testEveryKernelAgainstNaive() {
        var seed: UInt64 = 900
        for (Hq, Hkv) in [(2, 2), (4, 2), (8, 2)] {
            for D in [2, 17, 34, 128] {
                for (T, pos0) in [(37, 0), (1, 50), (13, 20), (1, 0)] {
                    seed += 1
                    let (p, k, v) = rounded(Problem(T: T, pos0: pos0, Hq: Hq, Hkv: Hkv, D: D, seed: seed))
                    let reference = run(p, k: k, v: v, .ref, .standard)
                    for isa in isas {
                        let exact = p.naive(rounding: rounding(isa))
                        let cheapExp = isa == .avx512 ? p.naive(rounding: rounding(isa), expError: Self.weightsExpError) : exact
                        let algorithms = [Algorithm.standard] + Self.blocks.map { .streaming(qBlock: $0.0, kvBlock: $0.1) }
                        for algorithm in algorithms {
                            let (want, tol) = expError(isa, algorithm) > 0 ? cheapExp : exact
                            let what = "\(isa) \(algorithm) Hq=\(Hq) Hkv=\(Hkv) D=\(D) T=\(T) pos0=\(pos0)"
                            let out = run(p, k: k, v: v, isa, algorithm)
                            assertClose(out, want, tol: tol, what)
                            assertClose(out, reference.map(Double.init), tol: tol.map { 2 * $0 }, "\(what) vs ref")
                        }
                    }
                }
            }
        }
    }

    /// The row-major decode tile on a bf16 cache (tiles of fewer than
    /// CK_ATTENTION_AVX512_MIN_ROWS rows, head size 128) at every group size it takes in a tile,
    /// 1 to 7 rows, against the naive attention at the bf16 rounding points and the bf16
    /// reference: decode and short chunks, partial blocks and steps of keys, 1 and 2 slots.
    func testDecodeTileEveryGroupSize() {
        var seed: UInt64 = 980
        withThreads(2) {
            for G in 1...7 {
                for (T, pos0) in [(1, 0), (1, 6), (1, 301), (2, 45), (3, 130)] {
                    seed += 1
                    let (p, k, v) = rounded(Problem(T: T, pos0: pos0, Hq: 2 * G, Hkv: 2, D: 128, seed: seed))
                    let reference = run(p, k: k, v: v, .ref, .streaming(qBlock: 8, kvBlock: 16))
                    for isa in isas {
                        let (want, tol) = p.naive(rounding: rounding(isa), expError: expError(isa, .streaming(qBlock: 8, kvBlock: 16)))
                        for (qb, kvb) in Self.blocks {
                            for slots in Int32(1)...2 {
                                let algorithm = Algorithm.streaming(qBlock: qb, kvBlock: kvb)
                                let what = "\(isa) \(algorithm) G=\(G) T=\(T) pos0=\(pos0) \(slots) slots"
                                let out = run(p, k: k, v: v, isa, algorithm, slots: slots)
                                assertClose(out, want, tol: tol, what)
                                assertClose(out, reference.map(Double.init), tol: tol.map { 2 * $0 }, "\(what) vs ref")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A long prompt at the benchmark's blocks (many KV blocks per tile, several tiles per KV
    /// head) and decode steps over a long cache split over 1 to 4 threads (flash decoding, and
    /// standard attention's split of keys and columns).
    func testLongPromptAndSplitDecode() {
        let (p, k, v) = rounded(Problem(T: 301, pos0: 20, Hq: 4, Hkv: 2, D: 128, seed: 950))
        let (d, dk, dv) = rounded(Problem(T: 1, pos0: 700, Hq: 2, Hkv: 1, D: 128, seed: 951))
        withThreads(4) {
            for isa in isas {
                for algorithm in [Algorithm.standard, .streaming(qBlock: 64, kvBlock: 128), .streaming(qBlock: 40, kvBlock: 96)] {
                    let (want, tol) = p.naive(rounding: rounding(isa), expError: expError(isa, algorithm))
                    let (dwant, dtol) = d.naive(rounding: rounding(isa), expError: expError(isa, algorithm))
                    for slots in Int32(1)...4 {
                        let what = "\(isa) \(algorithm) \(slots) slots"
                        assertClose(run(p, k: k, v: v, isa, algorithm, slots: slots), want, tol: tol, what)
                        assertClose(run(d, k: dk, v: dv, isa, algorithm, slots: slots), dwant, tol: dtol, "decode \(what)")
                    }
                }
            }
        }
    }

    /// Lazy rescaling in the AVX512_BF16 streaming tile: past its first KV block, a block off the
    /// diagonal takes its weights against the rows' running maxima, and runs again the usual way
    /// if a row's maximum over it rises more than 8 in log2 units (5.5 nats) above them. Scores
    /// that climb with the key (q's first element 3, k's a ramp) make the blocks' maxima rise by
    /// about 0.5 ramp per key: 8.5 per 16-key block at a ramp of 1 (every block falls back), 2.5
    /// at 0.3 (kept, with weights up to e^5.5, until the stale maxima fall behind) and none at 0
    /// (every block kept). Against the naive attention, whole and as partial states merged (whose
    /// maxima the tile returns in natural units), blocks of 16 and 24 keys and 20 (not a multiple
    /// of the 8-key micro-tile: never lazy).
    func testLazyRescaling() throws {
        guard isas.contains(.avx512) else { throw XCTSkip("no AVX512_BF16") }
        withThreads(2) {
            for ramp: Float in [1, 0.3, 0] {
                let base = Problem(T: 160, pos0: 40, Hq: 4, Hkv: 2, D: 32, seed: 990)
                var q = base.q, k = base.k
                for t in 0..<base.T * base.Hq { q[t * base.D] = 3 }
                for h in 0..<base.Hkv {
                    for j in 0..<(base.pos0 + base.T) { k[(h * base.cap + j) * base.D] = ramp * Float(j) }
                }
                let (p, kb, vb) = rounded(Problem(T: base.T, pos0: base.pos0, Hq: base.Hq, Hkv: base.Hkv, D: base.D,
                                                  cap: base.cap, q: q, k: k, v: base.v))
                let n = p.pos0 + p.T, rows = p.T * p.Hq, stateFloats = ck_attention_state_floats(rows, p.D)
                for kvb in [16, 24, 20] {
                    let algorithm = Algorithm.streaming(qBlock: 16, kvBlock: kvb)
                    let (want, tol) = p.naive(rounding: rounding(.avx512), expError: expError(.avx512, algorithm))
                    let what = "ramp \(ramp) \(algorithm)"
                    assertClose(run(p, k: kb, v: vb, .avx512, algorithm), want, tol: tol, what)
                    var states = [Float](repeating: .nan, count: 2 * stateFloats)
                    var scratch = [Float](repeating: .nan, count: ck_attention_streaming_scratch(16, kvb, p.D, 2))
                    for (i, (lo, hi)) in [(0, 72), (72, n)].enumerated() {
                        states.withUnsafeMutableBufferPointer { all in
                            ck_attention_partial_bf16_avx512(p.q, kb, vb, all.baseAddress! + i * stateFloats, p.T, p.pos0,
                                                             p.Hq, p.Hkv, p.D, p.cap, p.scale, lo, hi, 16, kvb, &scratch, 2)
                        }
                    }
                    var out = [Float](repeating: .nan, count: rows * p.D)
                    ck_attention_merge_f32(states, 2, rows, p.D, &out)
                    assertClose(out, want, tol: tol, "\(what) partial states cut at key 72")
                }
            }
        }
    }

    /// Enough row blocks per KV head (PAIR_V_MIN_BLOCKS, 128, in attention.c) that the AVX512_BF16
    /// streaming schedule pairs each head's V once for all its tiles: 640 tokens of a 2-query-head
    /// group in blocks of 8 rows are 160 per head, over 651 keys (an odd last key, whose pair's
    /// partner is padding). Against the naive attention, with kv blocks of 16 (paired once per
    /// head) and 15 (odd, so each tile pairs its own blocks), and as partial states cut at an
    /// even key (both halves paired per head) and at an odd one (the second half pairs per tile).
    func testValuesPairedOncePerHead() throws {
        guard isas.contains(.avx512) else { throw XCTSkip("no AVX512_BF16") }
        let (p, k, v) = rounded(Problem(T: 640, pos0: 11, Hq: 4, Hkv: 2, D: 16, seed: 960))
        let n = p.pos0 + p.T, rows = p.T * p.Hq
        withThreads(2) {
            for kvb in [16, 15] {
                let algorithm = Algorithm.streaming(qBlock: 8, kvBlock: kvb)
                let (want, tol) = p.naive(rounding: rounding(.avx512), expError: expError(.avx512, algorithm))
                assertClose(run(p, k: k, v: v, .avx512, algorithm, slots: 2), want, tol: tol, "\(algorithm)")
                let stateFloats = ck_attention_state_floats(rows, p.D)
                for cut in [324, 325] {
                    var states = [Float](repeating: .nan, count: 2 * stateFloats)
                    var scratch = [Float](repeating: .nan, count: ck_attention_streaming_scratch(8, kvb, p.D, 2))
                    for (i, (lo, hi)) in [(0, cut), (cut, n)].enumerated() {
                        states.withUnsafeMutableBufferPointer { all in
                            ck_attention_partial_bf16_avx512(p.q, k, v, all.baseAddress! + i * stateFloats, p.T, p.pos0, p.Hq,
                                                             p.Hkv, p.D, p.cap, p.scale, lo, hi, 8, kvb, &scratch, 2)
                        }
                    }
                    var out = [Float](repeating: .nan, count: rows * p.D)
                    ck_attention_merge_f32(states, 2, rows, p.D, &out)
                    assertClose(out, want, tol: tol, "\(algorithm) partial states cut at key \(cut)")
                }
            }
        }
    }

    /// Partial states over slices of the keys (empty ones, ones past a row's causal end, ones off
    /// block bounds), merged by ck_attention_merge_f32, against the naive attention.
    func testPartialStatesMerged() {
        var seed: UInt64 = 970
        let cases: [(T: Int, pos0: Int, Hq: Int, Hkv: Int, D: Int)] = [
            (1, 150, 4, 1, 16), (17, 0, 8, 2, 24), (6, 40, 4, 2, 128), (20, 3, 16, 2, 64),
            (1, 150, 3, 1, 128), (2, 61, 4, 1, 128),
        ]
        withThreads(3) {
            for c in cases {
                seed += 1
                let (p, k, v) = rounded(Problem(T: c.T, pos0: c.pos0, Hq: c.Hq, Hkv: c.Hkv, D: c.D, seed: seed))
                let n = p.pos0 + p.T, rows = p.T * p.Hq, stateFloats = ck_attention_state_floats(rows, p.D)
                for isa in isas {
                    let (want, tol) = p.naive(rounding: rounding(isa), expError: expError(isa, .streaming(qBlock: 16, kvBlock: 16)))
                    let partial = switch isa {
                    case .ref: ck_attention_partial_bf16_ref
                    case .avx2: ck_attention_partial_bf16_avx2
                    case .avx512: ck_attention_partial_bf16_avx512
                    }
                    for cuts in [[n / 2], [0, n / 3], [5, 5, n - 3], [n, n]] {
                        for slots in [Int32(1), 3] {
                            let bounds = [0] + cuts.map { min($0, n) } + [n]
                            var states = [Float](repeating: .nan, count: (bounds.count - 1) * stateFloats)
                            var scratch = [Float](repeating: .nan, count: ck_attention_streaming_scratch(16, 16, p.D, slots))
                            for i in 0..<(bounds.count - 1) {
                                states.withUnsafeMutableBufferPointer { all in
                                    partial(p.q, k, v, all.baseAddress! + i * stateFloats, p.T, p.pos0, p.Hq, p.Hkv, p.D,
                                            p.cap, p.scale, bounds[i], bounds[i + 1], 16, 16, &scratch, slots)
                                }
                            }
                            var out = [Float](repeating: .nan, count: rows * p.D)
                            ck_attention_merge_f32(states, bounds.count - 1, rows, p.D, &out)
                            assertClose(out, want, tol: tol, "\(isa) \(c) cuts \(cuts) \(slots) slots")
                        }
                    }
                }
            }
        }
    }
}
