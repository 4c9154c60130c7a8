// ConvertTests.swift — bf16 / f16 <-> f32 conversions, checked exhaustively or against an
// independent rounding rule.
import CKernels
import XCTest

final class ConvertTests: XCTestCase {
    private let allHalves: [UInt16] = (0...UInt16.max).map { $0 }

    func testBF16ToF32IsExactForEveryPattern() {
        var out = [Float](repeating: 0, count: allHalves.count)
        ck_convert_bf16_to_f32(allHalves, &out, allHalves.count)
        let bad = zip(allHalves, out).first { h, f in f.bitPattern != UInt32(h) << 16 }
        XCTAssertNil(bad, "bf16 0x\(String(bad?.0 ?? 0, radix: 16)) -> \(bad?.1 ?? 0)")
    }

    func testF16ToF32MatchesSwiftFloat16ForEveryPattern() {
        var out = [Float](repeating: 0, count: allHalves.count)
        ck_convert_f16_to_f32(allHalves, &out, allHalves.count)
        let bad = zip(allHalves, out).first { h, f in
            let want = Float(Float16(bitPattern: h))
            return want.isNaN ? !(f.isNaN && f.sign == want.sign) : f.bitPattern != want.bitPattern
        }
        XCTAssertNil(bad, "f16 0x\(String(bad?.0 ?? 0, radix: 16)) -> \(bad?.1 ?? 0)")
    }

    func testF16SpecialValues() {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x8000, -0.0), (0x0001, 0x1p-24), (0x03ff, 1023 * 0x1p-24),
            (0x0400, 0x1p-14), (0x3c00, 1), (0xc000, -2), (0x7bff, 65504),
            (0x7c00, .infinity), (0xfc00, -.infinity),
        ]
        var out = [Float](repeating: 0, count: cases.count)
        ck_convert_f16_to_f32(cases.map { $0.0 }, &out, cases.count)
        for (i, c) in cases.enumerated() {
            XCTAssertEqual(out[i].bitPattern, c.1.bitPattern, "f16 0x\(String(c.0, radix: 16))")
        }
        var nan: Float = 0
        ck_convert_f16_to_f32([0x7e00], &nan, 1)
        XCTAssertTrue(nan.isNaN)
    }

    /// Nearest bf16 by comparing distances in double, ties to the even pattern: independent of
    /// the kernel's integer trick.
    private func nearestBF16(_ f: Float) -> UInt16 {
        let lo = UInt16(truncatingIfNeeded: f.bitPattern >> 16)
        if f.isInfinite { return lo }
        let hi = lo &+ 1
        let dLo = abs(Double(Float(bitPattern: UInt32(lo) << 16)) - Double(f))
        // The pattern above the largest finite bf16 of a sign is inf; as a rounding target it
        // stands for 2^128, the next value the format would have.
        let hiValue = Float(bitPattern: UInt32(hi) << 16)
        let dHi = hiValue.isInfinite ? abs(0x1p128 * (f < 0 ? -1.0 : 1.0) - Double(f))
                                     : abs(Double(hiValue) - Double(f))
        if dLo < dHi { return lo }
        if dHi < dLo { return hi }
        return lo & 1 == 0 ? lo : hi
    }

    func testF32ToBF16RoundsToNearestEven() {
        var inputs: [Float] = [
            Float(bitPattern: 0x3f80_8000),  // exactly halfway, even below: stays 0x3f80
            Float(bitPattern: 0x3f81_8000),  // exactly halfway, odd below: up to 0x3f82
            Float(bitPattern: 0x3f80_8001), Float(bitPattern: 0x3f80_7fff),
            Float(bitPattern: 0xbf81_8000), Float(bitPattern: 0x7f7f_ffff),  // rounds to inf
            Float(bitPattern: 0x7f7f_7fff), Float(bitPattern: 0x0000_8000),  // subnormal tie
            Float(bitPattern: 0x0001_8000), 0, -0.0, .infinity, -.infinity,
            .greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude,
        ]
        var rng = Rng(7)
        for _ in 0..<100_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            if !f.isNaN { inputs.append(f) }
        }
        var out = [UInt16](repeating: 0, count: inputs.count)
        ck_convert_f32_to_bf16(inputs, &out, inputs.count)
        let bad = zip(inputs, out).first { f, h in h != nearestBF16(f) }
        XCTAssertNil(bad, "f32 0x\(String(bad?.0.bitPattern ?? 0, radix: 16)) -> \(bad?.1 ?? 0)")
        XCTAssertEqual(out[0], 0x3f80)
        XCTAssertEqual(out[1], 0x3f82)
        XCTAssertEqual(out[5], 0x7f80)
    }

    func testF32ToBF16KeepsNaN() {
        // Payloads only in the low half would truncate to an infinity pattern.
        let nans: [UInt32] = [0x7f80_0001, 0xff80_0001, 0x7fc0_0000, 0x7f80_ffff, 0xffff_ffff]
        var out = [UInt16](repeating: 0, count: nans.count)
        ck_convert_f32_to_bf16(nans.map { Float(bitPattern: $0) }, &out, nans.count)
        for (bits, h) in zip(nans, out) {
            let back = Float(bitPattern: UInt32(h) << 16)
            XCTAssertTrue(back.isNaN, "0x\(String(bits, radix: 16)) -> 0x\(String(h, radix: 16))")
            XCTAssertEqual(back.sign, Float(bitPattern: bits).sign)
        }
    }

    func testLargeConversionsRunInParallelAndMatch() {
        // Above the kernels' parallel threshold.
        let n = 200_003
        var rng = Rng(11)
        let src = rng.floats(n, scale: 1000)
        var bf = [UInt16](repeating: 0, count: n)
        var back = [Float](repeating: 0, count: n)
        withThreads(2) {
            ck_convert_f32_to_bf16(src, &bf, n)
            ck_convert_bf16_to_f32(bf, &back, n)
        }
        let bad = (0..<n).first { i in
            bf[i] != nearestBF16(src[i]) || back[i].bitPattern != UInt32(bf[i]) << 16
        }
        XCTAssertNil(bad, "element \(bad ?? 0)")
    }
}
