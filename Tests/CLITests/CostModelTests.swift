// CostModelTests.swift — the cluster cost model's two tools: bench_comm runs under mpirun and fits a
// finite, positive latency and bandwidth; bench/scaling_model's arithmetic on a tiny handmade rows
// file gives the numbers worked out by hand below.
import Foundation
import XCTest

final class CostModelTests: ToolTestCase {
    static let bench = fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bench")

    func jsonLines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func testBenchCommFitsFiniteLatencyAndBandwidth() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/mpicc") else { throw XCTSkip("needs mpicc (libopenmpi-dev)") }
        let dir = try temporary()
        let binary = dir.appendingPathComponent("bench_comm")
        let build = try runProgram("/usr/bin/mpicc", ["-O2", Self.bench.appendingPathComponent("bench_comm.c").path, "-o", binary.path, "-lm"],
                                   environment: mpiEnvironment(), replaceEnvironment: true)
        XCTAssertEqual(build.status, 0, build.stderr)
        let result = try runProgram("/usr/bin/mpirun",
                                    ["--oversubscribe", "--bind-to", "none", "-np", "2", binary.path, "--max-bytes", "256K",
                                     "--iters", "5", "--warmup", "1", "--budget-ms", "20", "-o", "jsonl"],
                                    environment: mpiEnvironment(), replaceEnvironment: true)
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = jsonLines(result.stdout)
        let fits = rows.filter { $0["kind"] as? String == "fit" }
        XCTAssertEqual(Set(fits.compactMap { $0["collective"] as? String }), ["pingpong", "allreduce", "allgather", "bcast"])
        for fit in fits {
            let alpha = fit["alpha_us"] as! Double, beta = fit["beta_ns_per_byte"] as! Double, gbps = fit["gbps"] as! Double
            XCTAssertTrue(alpha.isFinite && beta.isFinite && gbps.isFinite, "\(fit)")
            XCTAssertGreaterThan(beta, 0, "\(fit)")
            XCTAssertGreaterThan(gbps, 0, "\(fit)")
            XCTAssertEqual(fit["procs"] as? Int, 2)
        }
        // 4 B to 256 KiB in x4 steps: 9 sizes per collective, each with a positive median and best <= median.
        let samples = rows.filter { $0["kind"] as? String == "sample" }
        XCTAssertEqual(samples.count, 36)
        for s in samples {
            let median = s["median_us"] as! Double, best = s["best_us"] as! Double
            XCTAssertGreaterThan(median, 0)
            XCTAssertLessThanOrEqual(best, median)
        }
    }

    /// A model of 2 layers, hidden 64, 4 query heads and 2 KV heads of 16, intermediate 128, vocab 256,
    /// f32 weights. Prefill rates (8 tokens): every GEMM 10 GFLOP/s, attention 5 GFLOP/s, every other op
    /// 10 GB/s; decode rates: GEMMs and attention 20 GB/s. Medians equal the profiled sums, so nothing
    /// is "unprofiled". Every decode op takes `decodeOpMs` per iteration of 4 tokens: its cheapest call
    /// (the norms, 3 x 2 layers + 1 calls per token) sets the call floor, decodeOpMs / 28; the default
    /// keeps it at 3.6 ns, below every op of the tests that do not test it.
    func handmadeRows(decodeOpMs: Double = 0.0001) -> String {
        let config = #""config":{"layers":2,"hidden":64,"heads":4,"kv_heads":2,"head_dim":16,"intermediate":128,"vocab":256}"#
        let gemms = ["gemm q/k/v", "gemm o_proj", "gemm gate/up", "gemm down", "gemm lm_head"]
        let others = ["embedding", "rmsnorm (input, q/k, final)", "rope", "kv cache store", "silu * up", "residual add"]
        func profile(ms: Double, gemm: String, attention: String) -> String {
            (gemms.map { "\"\($0)\":{\"ms_per_iter\":\(ms),\(gemm)}" } + ["\"attention\":{\"ms_per_iter\":\(ms),\(attention)}"]
                + others.map { "\"\($0)\":{\"ms_per_iter\":\(ms),\"gbps\":10}" }).joined(separator: ",")
        }
        let prefill = profile(ms: 0.1, gemm: "\"gflops\":10,\"gbps\":1", attention: "\"gflops\":5,\"gbps\":1")
        let decode = profile(ms: decodeOpMs, gemm: "\"gflops\":1,\"gbps\":20", attention: "\"gflops\":1,\"gbps\":20")
        return """
        {"test":"pp8","phase":"prefill","procs":1,"threads":1,"prompt_len":8,"weights":"f32","median_ms":1.2,\(config),"profile":{"prefill":{\(prefill)}}}
        {"test":"tg4","phase":"decode","procs":1,"threads":1,"prompt_len":8,"gen_len":4,"weights":"f32","median_ms":\(12 * decodeOpMs),\(config),"profile":{"decode":{\(decode)}}}

        """
    }

    func scalingModel(_ arguments: [String]) throws -> [String: Any] {
        let result = try runProgram("/usr/bin/env", ["python3", Self.bench.appendingPathComponent("scaling_model").path] + arguments + ["-o", "json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(jsonLines(result.stdout).first)
    }

    func testScalingModelArithmeticMatchesHandComputation() throws {
        let dir = try temporary()
        let rows = dir.appendingPathComponent("rows.jsonl")
        try handmadeRows().write(to: rows, atomically: true, encoding: .utf8)
        let link = ["--link-gbps", "8", "--latency-us", "10"]  // beta = 1 ns per byte, alpha = 10 us

        // Heads, 2 ranks, prefill of 8 tokens. Rank 0: query heads 0-1, KV head 0, 64 intermediate
        // columns, 128 vocabulary columns.
        let heads = try scalingModel(["--rows", rows.path, "--procs", "2", "--threads", "1", "--parallel", "heads",
                                      "--phase", "prefill", "--prompt-len", "8"] + link)
        let ops = heads["ops_ms"] as! [String: Double]
        // q/k/v: 2 x 8 x 64 x (2 + 2) * 16 flops x 2 layers = 131072 flops at 10 GFLOP/s = 13107.2 ns
        // (its 40960 bytes at 20 GB/s, 2048 ns, are below).
        XCTAssertEqual(ops["gemm q/k/v"]!, 0.0131072, accuracy: 1e-9)
        // Attention: 36 causal pairs x 4 x 2 heads x 16 x 2 layers = 9216 flops at 5 GFLOP/s = 1843.2 ns.
        XCTAssertEqual(ops["attention"]!, 0.0018432, accuracy: 1e-9)
        // All-reduce of 8 x 64 floats = 2048 B: recursive doubling, 10 us + 2.048 us, 4 per step;
        // logits all-gather of 256 floats = 1024 B: 10 us + 512 ns.
        let comm = heads["comm_ms_by_collective"] as! [String: Double]
        XCTAssertEqual(comm["allreduce 2048 B x 4"]!, 0.048192, accuracy: 1e-9)
        XCTAssertEqual(comm["allgather 1024 B x 1"]!, 0.010512, accuracy: 1e-9)
        let predicted = heads["predicted_ms"] as! Double
        XCTAssertEqual(predicted, ops.values.reduce(0, +) + comm.values.reduce(0, +), accuracy: 1e-9)
        XCTAssertEqual(heads["tokens_per_s"] as! Double, 8 / predicted * 1000, accuracy: 1e-6)
        XCTAssertEqual(ops["unprofiled"]!, 0, accuracy: 1e-12)

        // Sequence, 2 ranks, decode after 8 tokens: every rank runs the step whole, no communication.
        // q/k/v at one token: 64 x 128 x 4 weight bytes + 4 x (64 + 128) = 33536 B x 2 layers at 20 GB/s
        // = 3353.6 ns, above its 32768 flops at 10 GFLOP/s (3276.8 ns).
        let decode = try scalingModel(["--rows", rows.path, "--procs", "2", "--threads", "1", "--parallel", "sequence",
                                       "--phase", "decode", "--prompt-len", "8"] + link)
        XCTAssertEqual((decode["ops_ms"] as! [String: Double])["gemm q/k/v"]!, 0.0033536, accuracy: 1e-9)
        XCTAssertEqual(decode["comm_ms"] as! Double, 0)

        // Sequence prefill: one all-gather per layer of 2 x 2 KV heads x 16 x 8 tokens floats = 2048 B,
        // 10 us + 1.024 us each.
        let sequence = try scalingModel(["--rows", rows.path, "--procs", "2", "--threads", "1", "--parallel", "sequence",
                                         "--phase", "prefill", "--prompt-len", "8"] + link)
        XCTAssertEqual((sequence["comm_ms_by_collective"] as! [String: Double])["allgather 2048 B x 2"]!, 0.022048, accuracy: 1e-9)
    }

    /// The node rule, from the same 1-thread rows: gain(n) = (min(n, 1) + E max(0, n - 1)) / 1 for the
    /// n threads an op can use (a GEMM: at most its 6 x 16 tiles, the f32 AVX2 row of gemm.c), memory-bound
    /// rates also capped at --node-gbs / 20 GB/s (the rows' fastest decode GEMM); and the call floor.
    func testScalingModelNodeRuleMatchesHandComputation() throws {
        let dir = try temporary()
        let rows = dir.appendingPathComponent("rows.jsonl")
        try handmadeRows().write(to: rows, atomically: true, encoding: .utf8)
        let link = ["--link-gbps", "8", "--latency-us", "10"]
        func ops(_ arguments: [String]) throws -> [String: Double] {
            try scalingModel(["--rows", rows.path, "--procs", "2"] + arguments + link)["ops_ms"] as! [String: Double]
        }

        // 4 threads at E = 0.5: gain 1 + 0.5 x 3 = 2.5. Heads prefill of 8 tokens, q/k/v of rank 0:
        // 8 x 64 columns is 2 x 4 tiles, so all 4 threads work; 131072 flops at 25 GFLOP/s = 5242.88 ns.
        let prefill = try ops(["--threads", "4", "--compute-efficiency", "0.5", "--parallel", "heads", "--phase", "prefill",
                               "--prompt-len", "8"])
        XCTAssertEqual(prefill["gemm q/k/v"]!, 0.00524288, accuracy: 1e-9)

        // The same node with 30 GB/s: memory-bound rates capped at 30 / 20 = 1.5 (below the gain 2.5).
        // Decode, whole step: q/k/v's 2 x 33536 B at 30 GB/s = 2235.733 ns, above its 32768 flops at
        // 25 GFLOP/s (1310.72 ns).
        let capped = try ops(["--threads", "4", "--compute-efficiency", "0.5", "--node-gbs", "30", "--parallel", "sequence",
                              "--phase", "decode", "--prompt-len", "8"])
        XCTAssertEqual(capped["gemm q/k/v"]!, 0.0022357333, accuracy: 1e-9)

        // 16 threads, E = 1, no cap: q/k/v at one token has 128 columns = 8 tiles, so 8 threads work:
        // 67072 B at 160 GB/s = 419.2 ns. gate/up (256 columns, 16 tiles) uses all 16: 133632 B at
        // 320 GB/s = 417.6 ns; rope (not a GEMM) too: 1792 B at 160 GB/s = 11.2 ns.
        let wide = try ops(["--threads", "16", "--parallel", "sequence", "--phase", "decode", "--prompt-len", "8"])
        XCTAssertEqual(wide["gemm q/k/v"]!, 0.0004192, accuracy: 1e-10)
        XCTAssertEqual(wide["gemm gate/up"]!, 0.0004176, accuracy: 1e-10)
        XCTAssertEqual(wide["rope"]!, 0.0000112, accuracy: 1e-10)

        // The call floor: with every decode op at 0.1 ms per iteration, the cheapest call is a norm's,
        // 0.1 ms / (4 tokens x 7 calls) = 3571.4 ns, and no op class takes less than its calls times
        // that: rope (2 calls per step) 7142.9 ns instead of 11.2 ns, q/k/v (2) 7142.9 ns instead of
        // 419.2 ns, lm_head (1) 3571.4 ns.
        try handmadeRows(decodeOpMs: 0.1).write(to: rows, atomically: true, encoding: .utf8)
        let floored = try scalingModel(["--rows", rows.path, "--procs", "2", "--threads", "16", "--parallel", "sequence",
                                        "--phase", "decode", "--prompt-len", "8"] + link)
        XCTAssertEqual(floored["call_floor_us"] as! Double, 3.5714286, accuracy: 1e-6)
        let flooredOps = floored["ops_ms"] as! [String: Double]
        XCTAssertEqual(flooredOps["rope"]!, 0.0071428571, accuracy: 1e-9)
        XCTAssertEqual(flooredOps["gemm q/k/v"]!, 0.0071428571, accuracy: 1e-9)
        XCTAssertEqual(flooredOps["gemm lm_head"]!, 0.0035714286, accuracy: 1e-9)
    }
}
