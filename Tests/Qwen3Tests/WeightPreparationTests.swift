// WeightPreparationTests.swift — weights prepared at load a chunk of rows at a time are the bytes the
// whole tensor's conversion, quantization and packing give, for every format, ISA and shard.
import CKernels
import Foundation
import XCTest
@testable import Qwen3

final class WeightPreparationTests: XCTestCase {
    static let precisions: [WeightPrecision] = [.f32, .bf16, .q8_0, .q4_0]

    /// Every (ISA, precision) pair this CPU runs.
    static var kernelSets: [Kernels] {
        [KernelISA.baseline, .avx2, .avx512].flatMap { isa in precisions.compactMap { try? Kernels(isa, precision: $0) } }
    }

    /// W[N, K] as the whole-tensor path laid it out: the tensor quantized or rounded at once, then
    /// packed at once (the bytes to match), straight from the C entry points.
    static func wholeTensor(_ w: [Float], n: Int, k: Int, _ kernels: Kernels, packed: Bool) -> [UInt8] {
        func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
        if kernels.precision.isQuantized, k % 32 == 0 {
            let q8 = kernels.precision == .q8_0
            var blocks = [UInt8](repeating: 0, count: n * k / 32 * (q8 ? 34 : 18))
            if q8 { ck_quantize_q8_0(w, &blocks, n, k) } else { ck_quantize_q4_0(w, &blocks, n, k) }
            if !packed { return blocks }
            var out = [UInt8](repeating: 0, count: q8 ? ck_pack_q8_0_size(n, k) : ck_pack_q4_0_size(n, k))
            if q8 { ck_pack_q8_0(blocks, &out, n, k) } else { ck_pack_q4_0(blocks, &out, n, k) }
            return out
        }
        if kernels.precision == .bf16 {
            var halves = [UInt16](repeating: 0, count: n * k)
            ck_convert_f32_to_bf16(w, &halves, n * k)
            if !packed { return bytes(halves) }
            var out = [UInt16](repeating: 0, count: ck_pack_bf16_size(n, k))
            ck_pack_bf16(halves, &out, n, k)
            return bytes(out)
        }
        if !packed { return bytes(w) }
        let avx512 = kernels.isa == .avx512
        var out = [Float](repeating: 0, count: avx512 ? ck_pack_f32_avx512_size(n, k) : ck_pack_f32_avx2_size(n, k))
        if avx512 { ck_pack_f32_avx512(w, &out, n, k) } else { ck_pack_f32_avx2(w, &out, n, k) }
        return bytes(out)
    }

    static func bytes(of storage: WeightStorage) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: storage.raw, count: storage.byteCount))
    }

    /// Rows not a multiple of 32 or of the chunk, one row, several chunks of 32 and 64 rows; K a
    /// multiple of 32 (quantized), not one (q8_0 / q4_0 keep float32) and odd (bf16 pads a pair).
    /// The rows are read in order, each chunk starting on a multiple of 32, and `prepare` and `rows`
    /// give the whole tensor's packed and unpacked bytes.
    func testChunksGiveTheWholeTensorsBytes() throws {
        let shapes = [(1, 64), (31, 32), (33, 96), (100, 64), (161, 128), (70, 40), (45, 7), (64, 32)]
        for kernels in Self.kernelSets {
            for (n, k) in shapes {
                var state: UInt64 = 0x9e37_79b9_7f4a_7c15 &* UInt64(n * 1000 + k)
                let w = (0..<n * k).map { _ -> Float in
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1e6 * 0.3
                }
                for chunkRows in [32, 64] {
                    let scratch = WeightScratch(chunkFloats: chunkRows * k)
                    XCTAssertEqual(scratch.chunkRows(inFeatures: k), chunkRows)
                    var reads: [Range<Int>] = []
                    let read: Kernels.WeightRows = { rows, dst in
                        reads.append(rows)
                        w.withUnsafeBufferPointer { dst.update(from: $0.baseAddress! + rows.lowerBound * k, count: rows.count * k) }
                    }
                    let label = "\(kernels.isa.rawValue) \(kernels.precision.rawValue) \(n)x\(k) chunks of \(chunkRows)"
                    let packed = try kernels.prepare(outFeatures: n, inFeatures: k, scratch: scratch, rows: read)
                    XCTAssertEqual(Self.bytes(of: packed), Self.wholeTensor(w, n: n, k: k, kernels, packed: kernels.isa != .baseline), label)
                    // Unpacked float32 rows are the weight itself, read into it at once.
                    let float32 = kernels.precision == .f32 || kernels.precision.isQuantized && k % 32 != 0
                    let chunks = kernels.isa == .baseline && float32 ? [0 ..< n]
                        : stride(from: 0, to: n, by: chunkRows).map { $0 ..< min(n, $0 + chunkRows) }
                    XCTAssertEqual(reads, chunks, label)
                    let rows = try kernels.rows(outFeatures: n, inFeatures: k, scratch: scratch, rows: read)
                    XCTAssertEqual(Self.bytes(of: rows), Self.wholeTensor(w, n: n, k: k, kernels, packed: false), label + " unpacked")
                }
            }
        }
    }

    /// A loader reading 32 rows at a time holds the same bytes as one reading each tensor in one
    /// chunk, in every layer, bias and embedding table: column-parallel rows that straddle q, k and
    /// v (and gate and up) within a chunk, row-parallel column slices, vocabulary shards of a tied
    /// lm_head and of an untied one, on 1-3 ranks, from float32, bfloat16 and float16 checkpoints.
    /// Hidden 96, intermediate 200 and vocabulary 333 make layers of several chunks with a short
    /// last one; head_dim 16 makes o_proj slices that are not whole blocks on 3 ranks.
    func testLoaderChunksGiveTheSameWeightsOnEveryShard() throws {
        let out = try temporaryFolder(self)
        for (tied, dtype) in [(true, TensorDType.bf16), (false, .f16), (true, .f32)] {
            let config = Qwen3Config(vocabSize: 333, hiddenSize: 96, intermediateSize: 200, numLayers: 1, numHeads: 6,
                                     numKVHeads: 2, headDim: 16, maxPositionEmbeddings: 64, rmsNormEps: 1e-6,
                                     ropeTheta: 10_000, tieWordEmbeddings: tied, attentionBias: true)
            let folder = out.appendingPathComponent("\(tied ? "tied" : "untied")-\(dtype.rawValue)")
            try SyntheticCheckpoint.write(config: config, dtype: dtype, seed: 3, to: folder.path)
            let checkpoint = try SafetensorsCheckpoint(path: folder.path)
            for kernels in Self.kernelSets {
                for size in 1...3 {
                    for rank in 0..<size {
                        let plan = try ShardPlan(config: config, rank: rank, size: size, precision: kernels.precision)
                        let load = { (chunkFloats: Int) in
                            try WeightLoader(checkpoint: checkpoint, config: config, plan: plan, kernels: kernels,
                                             path: folder.path, scratch: WeightScratch(chunkFloats: chunkFloats)).load()
                        }
                        let (chunked, whole) = (try load(0), try load(1 << 40))
                        let label = "\(folder.lastPathComponent) \(kernels.isa.rawValue) \(kernels.precision.rawValue) rank \(rank) of \(size)"
                        XCTAssertEqual(chunked.linears.count, whole.linears.count, label)
                        for (i, (a, b)) in zip(chunked.linears, whole.linears).enumerated() {
                            XCTAssertEqual(Self.bytes(of: a.weight), Self.bytes(of: b.weight), "\(label) linear \(i)")
                            XCTAssertEqual(a.bias.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) },
                                           b.bias.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) },
                                           "\(label) bias \(i)")
                        }
                        switch (chunked.embedding, whole.embedding) {
                        case (.own(let a, _), .own(let b, _)):
                            XCTAssertEqual(Self.bytes(of: a), Self.bytes(of: b), "\(label) embedding")
                        case (.shared, .shared): break
                        default: XCTFail("\(label): embedding \(chunked.embedding.summary) against \(whole.embedding.summary)")
                        }
                    }
                }
            }
        }
    }
}
