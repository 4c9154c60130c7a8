// AttentionToolTests.swift — benchmark_mpi_attention as users run it: rows and their keys, the
// speed-up, grids of list options, every output format, one-line errors, and MPI splits that match
// one process.
import Foundation
import XCTest

final class AttentionToolTests: ToolTestCase {
    /// The benchmark_mpi_attention built beside benchmark_qwen3.
    override var executable: URL {
        super.executable.deletingLastPathComponent().appendingPathComponent("benchmark_mpi_attention")
    }

    /// The issue's small sweep: 2 lengths x 2 kernels x 2 phases, GQA 4/2, head_dim 16.
    let sweep = ["--seq-len", "16,33", "--kernel", "standard,streaming", "--phase", "prefill,decode",
                 "--heads", "4", "--kv-heads", "2", "--head-dim", "16", "--iters", "2", "--threads", "1", "--quiet"]

    func records(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    func testJSONLinesRowsHaveTheKeysAndSensibleValues() throws {
        let dir = try temporary()
        let file = dir.appendingPathComponent("rows.jsonl")
        let result = try run(sweep + ["-o", "jsonl", "--json", file.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try records(result.stdout)
        XCTAssertEqual(rows.count, 8)
        XCTAssertEqual(try records(String(contentsOf: file, encoding: .utf8)).count, 8, "--json appends the same rows")
        for row in rows {
            for key in ["kernel", "phase", "seq_len", "threads", "procs", "median_ms", "gflops", "percent_of_peak",
                        "scratch_bytes", "speedup_vs_standard", "parallel", "comm_ms", "commit", "cpu", "timestamp"] {
                XCTAssertNotNil(row[key], "\(key) missing in \(row)")
            }
            let s = row["seq_len"] as! Int, prefill = row["phase"] as! String == "prefill"
            XCTAssertEqual(row["procs"] as? Int, 1)
            XCTAssertEqual(row["threads"] as? Int, 1)
            XCTAssertEqual(row["parallel"] as? String, "none")
            XCTAssertEqual((row["samples_ms"] as? [Double])?.count, 2)
            let median = row["median_ms"] as! Double
            XCTAssertGreaterThan(median, 0)
            // Only the causal half counts: 4 * D * Hq * S * (S + 1) / 2 for prefill, 4 * D * Hq * S for decode.
            let flops = prefill ? 4.0 * 16 * 4 * Double(s * (s + 1)) / 2 : 4.0 * 16 * 4 * Double(s)
            XCTAssertEqual(row["flops"] as! Double, flops)
            XCTAssertEqual(row["gflops"] as! Double, flops / (median * 1e6), accuracy: 1e-9 * flops)
            XCTAssertGreaterThan(row["percent_of_peak"] as! Double, 0)
            XCTAssertLessThan(row["percent_of_peak"] as! Double, 100)
            XCTAssertGreaterThan(row["scratch_bytes"] as! Int, 0)
        }
        // The speed-up is standard's median over each kernel's, per length and phase.
        for s in [16, 33] {
            for phase in ["prefill", "decode"] {
                let pair = rows.filter { $0["seq_len"] as? Int == s && $0["phase"] as? String == phase }
                let standard = try XCTUnwrap(pair.first { $0["kernel"] as? String == "standard" })
                let streaming = try XCTUnwrap(pair.first { $0["kernel"] as? String == "streaming" })
                XCTAssertEqual(standard["speedup_vs_standard"] as? Double, 1)
                XCTAssertEqual(streaming["speedup_vs_standard"] as! Double,
                               (standard["median_ms"] as! Double) / (streaming["median_ms"] as! Double), accuracy: 1e-9)
                XCTAssertEqual(streaming["q_block"] as? Int, 32)  // the default tile, 32 tokens x 512 keys
                XCTAssertEqual(streaming["kv_block"] as? Int, 512)
            }
        }
        // One kernel alone: nothing to compare with.
        let alone = try run(["--seq-len", "8", "--kernel", "streaming", "--phase", "prefill", "--iters", "1", "-o", "jsonl"])
        XCTAssertEqual(alone.status, 0, alone.stderr)
        XCTAssertNil(try records(alone.stdout)[0]["speedup_vs_standard"])
    }

    /// --seed picks the inputs: the same seed gives the same output, another seed another, and both
    /// kernels compute the same attention of them.
    func testSeedChangesTheInputs() throws {
        func sums(_ seed: String) throws -> [String: Double] {
            let result = try run(["--seq-len", "24", "--phase", "prefill", "--kernel", "standard,streaming", "--heads", "4",
                                  "--kv-heads", "2", "--head-dim", "16", "--iters", "1", "--warmup", "0", "--threads", "1",
                                  "--seed", seed, "-o", "jsonl"])
            XCTAssertEqual(result.status, 0, result.stderr)
            var out: [String: Double] = [:]
            for row in try records(result.stdout) { out[row["kernel"] as! String] = row["output_sum"] as? Double }
            return out
        }
        let one = try sums("1"), again = try sums("1"), two = try sums("2")
        let a = try XCTUnwrap(one["standard"]), b = try XCTUnwrap(two["standard"])
        XCTAssertEqual(again["standard"], a)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(try XCTUnwrap(one["streaming"]), a, accuracy: 1e-3)
    }

    /// The dimensions a row's speed-up is paired on: every option but the kernel and its tiles.
    let pairedKeys = ["seq_len", "phase", "threads", "heads", "kv_heads", "head_dim", "isa", "parallel"]

    /// Each streaming row's speed-up is the median of the one standard row agreeing on every other
    /// dimension over its own.
    func checkSpeedUps(_ rows: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
        func key(_ row: [String: Any]) -> String { pairedKeys.map { "\(row[$0] ?? "-")" }.joined(separator: " ") }
        for row in rows where row["kernel"] as? String == "streaming" {
            let standards = rows.filter { $0["kernel"] as? String == "standard" && key($0) == key(row) }
            XCTAssertEqual(standards.count, 1, key(row), file: file, line: line)
            let standard = try XCTUnwrap(standards.first, file: file, line: line)
            XCTAssertEqual(standard["speedup_vs_standard"] as? Double, 1, file: file, line: line)
            XCTAssertEqual(row["speedup_vs_standard"] as! Double,
                           (standard["median_ms"] as! Double) / (row["median_ms"] as! Double), accuracy: 1e-9,
                           key(row), file: file, line: line)
        }
    }

    func testEveryDimensionTakesAListAndRunsTheGrid() throws {
        let isas = hasAVX512 ? ["avx2", "avx512"] : ["avx2"]
        let grid = ["--seq-len", "16", "--phase", "prefill,decode", "--kernel", "standard,streaming",
                    "--q-block", "16,32", "--kv-block", "16", "--heads", "4,8", "--kv-heads", "2", "--head-dim", "16",
                    "--isa", isas.joined(separator: ","), "--iters", "1", "--warmup", "0", "--threads", "1", "--quiet"]
        let result = try run(grid + ["-o", "jsonl"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try records(result.stdout)
        // 2 shapes x 2 phases x ISAs x (standard + streaming at 2 q-blocks x 1 kv-block).
        XCTAssertEqual(rows.count, 2 * 2 * isas.count * 3)
        var seen: Set<String> = []
        for row in rows {
            for key in pairedKeys + ["kernel", "median_ms", "flops", "speedup_vs_standard"] {
                XCTAssertNotNil(row[key], "\(key) missing in \(row)")
            }
            let heads = row["heads"] as! Int, streaming = row["kernel"] as? String == "streaming"
            XCTAssertTrue([4, 8].contains(heads), "\(row)")
            XCTAssertEqual(row["kv_heads"] as? Int, 2)
            XCTAssertEqual(row["head_dim"] as? Int, 16)
            XCTAssertTrue(isas.contains(row["isa"] as! String), "\(row)")
            XCTAssertEqual(row["parallel"] as? String, "none")
            // The shape was the one run: flops follow the row's heads.
            let flops = row["phase"] as? String == "prefill" ? 4.0 * 16 * Double(heads) * 16 * 17 / 2 : 4.0 * 16 * Double(heads) * 16
            XCTAssertEqual(row["flops"] as? Double, flops, "\(row)")
            if streaming {
                XCTAssertTrue([16, 32].contains(row["q_block"] as! Int), "\(row)")
                XCTAssertEqual(row["kv_block"] as? Int, 16)
            } else {
                XCTAssertNil(row["q_block"], "block sizes expand only the streaming rows")
                XCTAssertNil(row["kv_block"])
            }
            let combination = "\(heads) \(row["isa"]!) \(row["phase"]!) \(row["kernel"]!) \(row["q_block"] ?? "-")"
            XCTAssertTrue(seen.insert(combination).inserted, "\(combination) twice")
        }
        try checkSpeedUps(rows)
        // The table gives each varying dimension a column; the header names every shape and ISA.
        let text = try run(grid)
        XCTAssertEqual(text.status, 0, text.stderr)
        for part in ["4 query heads, 2 KV heads, head_dim 16; 8 query heads", "Kernels: \(isas.joined(separator: ", ")) (--isa)",
                     "q block", "kv block", "heads"] + (isas.count > 1 ? ["isa"] : []) {
            XCTAssertTrue(text.stdout.contains(part), "missing \(part) in:\n\(text.stdout)")
        }
        if !hasAVX512 {
            let missing = try run(["--isa", "avx2,avx512", "--seq-len", "8", "--iters", "1"])
            XCTAssertEqual(missing.status, 1)
            XCTAssertEqual(missing.stderr, "benchmark_mpi_attention: error: --isa avx512: this CPU lacks its instructions\n")
        }
    }

    func testTextMarkdownAndCSVRender() throws {
        let csv = try run(sweep + ["-o", "csv"])
        XCTAssertEqual(csv.status, 0, csv.stderr)
        let lines = csv.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 9)
        XCTAssertTrue(lines[0].hasPrefix("test,kernel,phase,seq_len,"), String(lines[0]))
        XCTAssertTrue(lines[0].contains("median_ms") && lines[0].contains("speedup_vs_standard"))
        let md = try run(sweep + ["-o", "md"])
        XCTAssertEqual(md.status, 0, md.stderr)
        XCTAssertEqual(md.stdout.split(separator: "\n").count, 10)
        XCTAssertTrue(md.stdout.hasPrefix("| phase | S | kernel | threads | median ms |"), md.stdout)
        let text = try run(sweep)
        XCTAssertEqual(text.status, 0, text.stderr)
        for part in ["Shapes: 4 query heads, 2 KV heads, head_dim 16", "GFLOP/s", "vs standard", "Peak: "] {
            XCTAssertTrue(text.stdout.contains(part), "missing \(part) in:\n\(text.stdout)")
        }
        XCTAssertEqual(text.stdout.components(separatedBy: "streaming").count - 1, 4)
    }

    func testBadOptionsFailWithOneLine() throws {
        let cases: [([String], String)] = [
            (["--seq-len", "0"], "--seq-len must be between 1"),
            (["--seq-len", "16,,32"], "--seq-len: empty item"),
            (["--q-block", "0"], "--q-block must be between 1 and 65536, got 0"),
            (["--q-block", "16,0"], "--q-block must be between 1 and 65536, got 0"),
            (["--kv-block", "16,"], "--kv-block: empty item in \"16,\""),
            (["--kernel", "standard", "--q-block", "16,32"], "--q-block applies only to --kernel streaming"),
            (["--heads", "4,x"], "--heads must be an integer or a comma-separated list of integers, got x"),
            (["--heads", "4", "--kv-heads", "3"], "--heads (4) must be a multiple of --kv-heads (3)"),
            (["--heads", "8,6", "--kv-heads", "2,4"], "--heads (6) must be a multiple of --kv-heads (4)"),
            (["--head-dim", "16,0"], "--head-dim must be between 1 and 65536, got 0"),
            (["--isa", "avx2,foo"], "--isa must be one of baseline, avx2, avx512 (or a comma-separated list), got foo"),
            (["--parallel", "heads,diagonal"], "--parallel must be one of heads, sequence (or a comma-separated list), got diagonal"),
            (["--kernel", "standard", "--kv-block", "8"], "--kv-block applies only to --kernel streaming"),
            (["--kernel", "fast"], "--kernel must be one of standard, streaming"),
            (["--phase", "both"], "--phase must be one of prefill, decode"),
            (["--heads", "6", "--kv-heads", "4"], "--heads (6) must be a multiple of --kv-heads (4)"),
            (["--iters", "0"], "--iters must be at least 1"),
            (["--threads", "0"], "--threads must be between 1"),
            (["--parallel", "heads"], "--parallel applies only under mpirun"),
            (["--isa", "sse"], "--isa must be one of"),
            (["-o", "xml"], "-o must be one of"),
            (["--json", "/nonexistent-dir/x.jsonl"], "--json: cannot write in /nonexistent-dir"),
            (["--seq-len", "200000", "--kernel", "standard", "--phase", "prefill"], "bytes"),
        ]
        for (args, message) in cases {
            let result = try run(args)
            XCTAssertEqual(result.status, 1, "\(args): \(result.stdout)")
            XCTAssertTrue(result.stderr.hasPrefix("benchmark_mpi_attention: error: "), "\(args): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(args): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(args)")
        }
        let unknown = try run(["--bogus"])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertEqual(unknown.stderr.split(separator: "\n").count, 1, unknown.stderr)
    }

    func testSplitsByHeadsAndSequenceMatchOneProcess() throws {
        // 6 query heads over 3 KV heads: 2 and 3 processes split them unevenly or one each; S = 16 and 33
        // give empty and uneven zig-zag chunks.
        for processes in [2, 3] {
            for split in ["heads", "sequence"] {
                let result = try mpirun(processes, ["--seq-len", "5,33", "--phase", "prefill,decode", "--heads", "6",
                                                    "--kv-heads", "3", "--head-dim", "16", "--iters", "1", "--warmup", "0",
                                                    "--threads", "1", "--parallel", split, "-o", "jsonl", "--quiet"])
                XCTAssertEqual(result.status, 0, "\(processes) \(split): \(result.stderr)")
                let rows = try records(result.stdout)
                XCTAssertEqual(rows.count, 8, "only rank 0 prints")
                for row in rows {
                    let label = "\(processes) \(split) \(row["phase"]!) S=\(row["seq_len"]!) \(row["kernel"]!)"
                    XCTAssertEqual(row["procs"] as? Int, processes, label)
                    XCTAssertEqual(row["parallel"] as? String, split, label)
                    XCTAssertLessThanOrEqual(try XCTUnwrap(row["max_abs_diff"] as? Double, label), 1e-4, label)
                    XCTAssertGreaterThan(row["efficiency"] as? Double ?? 0, 0, label)
                    XCTAssertGreaterThan(row["comm_ms"] as? Double ?? 0, 0, label)
                    XCTAssertGreaterThan(row["single_ms"] as? Double ?? 0, 0, label)
                }
            }
        }
    }

    /// --kv-dtype f32,bf16: a kv_dtype per row, the bf16 rows' splits (K/V moved as bf16, decode
    /// states from the bf16 partial kernels) matching one process on the same bf16 cache, and bf16
    /// outputs close to, but not equal to, the f32 ones (inputs in [-1, 1): the rounding of K, V, q
    /// and the weights moves an output by well under 2^-8 x 4).
    func testBF16CacheRowsAndSplitsMatchOneProcess() throws {
        for split in ["heads", "sequence"] {
            let result = try mpirun(2, ["--seq-len", "9,40", "--phase", "prefill,decode", "--heads", "4", "--kv-heads", "2",
                                        "--head-dim", "32", "--kv-dtype", "f32,bf16", "--parallel", split, "--iters", "1",
                                        "--warmup", "0", "--threads", "1", "-o", "jsonl", "--quiet"])
            XCTAssertEqual(result.status, 0, "\(split): \(result.stderr)")
            let rows = try records(result.stdout)
            XCTAssertEqual(rows.count, 2 * 2 * 2 * 2, "lengths x phases x kv dtypes x kernels")
            for row in rows {
                // A split of the keys rounds each weight against its own part's running max before the
                // merge rescales it, so bf16 outputs differ by the rounding of the weights entering P·V:
                // at most 2^-8 of sum p|v| <= 1 (values in [-1, 1)) on each side. f32 differs by sum order.
                let bf16 = row["kv_dtype"] as? String == "bf16"
                let label = "\(split) \(row["kv_dtype"]!) \(row["phase"]!) S=\(row["seq_len"]!) \(row["kernel"]!)"
                XCTAssertLessThanOrEqual(try XCTUnwrap(row["max_abs_diff"] as? Double, label), bf16 ? 2 * 0x1p-8 : 1e-5, label)
            }
            for row in rows where row["kv_dtype"] as? String == "bf16" {
                let twin = try XCTUnwrap(rows.first {
                    $0["kv_dtype"] as? String == "f32" && $0["phase"] as? String == row["phase"] as? String
                        && $0["seq_len"] as? Int == row["seq_len"] as? Int && $0["kernel"] as? String == row["kernel"] as? String
                })
                let (a, b) = (try XCTUnwrap(row["output_sum"] as? Double), try XCTUnwrap(twin["output_sum"] as? Double))
                XCTAssertNotEqual(a, b, "\(split) \(row["phase"]!) S=\(row["seq_len"]!): bf16 rows must read the bf16 cache")
                let outputs = Double((row["tokens"] as? Int ?? 1) * 4 * 32)
                XCTAssertLessThanOrEqual(abs(a - b), outputs * 4 * 0x1p-8, "\(split) bf16 vs f32 output sum")
            }
        }
    }

    func testBothSplitsAndShapesInOneMPIRun() throws {
        let result = try mpirun(2, ["--seq-len", "9", "--phase", "prefill,decode", "--heads", "4", "--kv-heads", "2,4",
                                    "--head-dim", "16", "--parallel", "heads,sequence", "--iters", "1", "--warmup", "0",
                                    "--threads", "1", "-o", "jsonl", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try records(result.stdout)
        XCTAssertEqual(rows.count, 2 * 2 * 2 * 2, "shapes x phases x splits x kernels")
        for split in ["heads", "sequence"] {
            for kv in [2, 4] {
                let part = rows.filter { $0["parallel"] as? String == split && $0["kv_heads"] as? Int == kv }
                XCTAssertEqual(part.count, 4, "\(split) kv_heads \(kv)")
            }
        }
        for row in rows {
            XCTAssertLessThanOrEqual(try XCTUnwrap(row["max_abs_diff"] as? Double), 1e-4, "\(row)")
        }
        try checkSpeedUps(rows)
    }

    func testImpossibleSplitFailsOnceWithoutHanging() throws {
        let cases: [([String], String)] = [
            (["--parallel", "heads", "--heads", "2", "--kv-heads", "1"], "3 processes are more than that"),
            (["--parallel", "sequence", "--seq-len", "2,64"], "the 2 tokens of --seq-len 2"),
            (["--parallel", "sequence,heads", "--heads", "12,2", "--kv-heads", "2"], "--parallel heads splits the 2 query heads over the processes; 3 processes are more than that"),
        ]
        for (args, message) in cases {
            let result = try mpirun(3, args + ["--iters", "1"])
            XCTAssertNotEqual(result.status, 0, "\(args)")
            XCTAssertTrue(result.stderr.contains(message), "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.components(separatedBy: "benchmark_mpi_attention: error:").count - 1, 1, result.stderr)
            XCTAssertEqual(result.stdout, "", "\(args)")
        }
    }

    /// The model's head split: 3 processes over 6 query heads and 2 KV heads (the middle rank's heads
    /// straddle both KV heads) or 1 KV head (replicated on every rank), which the tool refused before
    /// (more processes than KV heads); and the model's sequence splits at 2 and 3 ranks, prefill and
    /// decode, the decode states from the C partial kernels. Each matches one process.
    func testModelSplitsWithMoreProcessesThanKVHeadsMatchOneProcess() throws {
        for (processes, split) in [(3, "heads"), (2, "sequence"), (3, "sequence")] {
            let result = try mpirun(processes, ["--seq-len", "7,40", "--phase", "prefill,decode", "--heads", "6",
                                                "--kv-heads", "2,1", "--head-dim", "24", "--iters", "1", "--warmup", "0",
                                                "--threads", "1", "--parallel", split, "-o", "jsonl", "--quiet"])
            XCTAssertEqual(result.status, 0, "\(processes) \(split): \(result.stderr)")
            let rows = try records(result.stdout)
            XCTAssertEqual(rows.count, 2 * 2 * 2 * 2, "lengths x phases x shapes x kernels")
            for row in rows {
                let label = "\(processes) \(split) kv \(row["kv_heads"]!) \(row["phase"]!) S=\(row["seq_len"]!) \(row["kernel"]!)"
                XCTAssertEqual(row["procs"] as? Int, processes, label)
                XCTAssertEqual(row["parallel"] as? String, split, label)
                XCTAssertLessThanOrEqual(try XCTUnwrap(row["max_abs_diff"] as? Double, label), 1e-5, label)
                XCTAssertNotNil(row["kernel_isa"], label)
                let decodeBySequence = split == "sequence" && row["phase"] as? String == "decode"
                XCTAssertEqual((row["local_kernel"] as? String)?.hasPrefix("streaming partial"), decodeBySequence ? true : nil, label)
            }
        }
    }

    /// kernel_isa names the instructions each kernel ran: under avx512 standard attention is
    /// AVX-512 too, and so are streaming tiles of 8 or more query rows; a decode step of a 2-head
    /// group (2 rows) runs the AVX-512 decode tile at head size 128 and the AVX2 tile at others.
    /// Under avx2 everything is AVX2.
    func testRowsNameTheInstructionSetEachKernelRan() throws {
        let isas = hasAVX512 ? "avx2,avx512" : "avx2"
        for headDim in [16, 128] {
            let result = try run(["--seq-len", "16", "--phase", "prefill,decode", "--heads", "4", "--kv-heads", "2",
                                  "--head-dim", "\(headDim)", "--isa", isas, "--iters", "1", "--warmup", "0",
                                  "--threads", "1", "-o", "jsonl"])
            XCTAssertEqual(result.status, 0, result.stderr)
            for row in try records(result.stdout) {
                let isa = row["isa"] as! String
                let smallTiles = row["kernel"] as? String == "streaming" && row["phase"] as? String == "decode"
                let avx2Tile = isa == "avx512" && smallTiles && headDim != 128
                XCTAssertEqual(row["kernel_isa"] as? String, avx2Tile ? "avx2" : isa, "\(row)")
            }
        }
    }
}
