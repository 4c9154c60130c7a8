// SoakTests.swift — a long mixed MPI run must not grow in memory: leaks show up as resident growth.
import Foundation
import XCTest

final class SoakTests: ToolTestCase {
    /// 1008 timed iterations (3 methods x 2 attentions x 2 prompt lengths x 2 phases x 42) in one
    /// mpirun -np 2 job on a small synthetic model whose vocabulary (32000) makes any per-iteration
    /// leak of a logits-sized buffer cost 128 KB, so 1000 iterations of it would add 125 MB.
    func testThousandMixedIterationsUnderMPIDoNotGrowResidentMemory() throws {
        let dir = try temporary()
        let model = dir.appendingPathComponent("soak-model")
        let made = try run(["generate-synthetic", "--out", model.path, "--dtype", "f32", "--layers", "2", "--hidden", "256",
                            "--heads", "4", "--kv-heads", "2", "--head-dim", "64", "--intermediate", "512", "--vocab", "32000"])
        XCTAssertEqual(made.status, 0, made.stderr)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_btl"] = "self,vader"
        let iterations = 42
        let result = try runProgram("/usr/bin/mpirun",
                                    ["--oversubscribe", "--bind-to", "none", "-np", "2", executable.path,
                                     "--model", model.path, "--method", "mpi+avx2,mpi+avx512,mpi",
                                     "--attention", "standard,streaming", "--prompt-len", "16,48", "--phase", "prefill,decode",
                                     "--gen-len", "4", "--iters", String(iterations), "--warmup", "1", "--threads", "1",
                                     "-o", "jsonl", "--quiet"],
                                    environment: env, replaceEnvironment: true)
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = result.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        XCTAssertEqual(rows.count, 24, result.stdout)
        XCTAssertGreaterThanOrEqual(rows.compactMap { ($0["samples_ms"] as? [Double])?.count }.reduce(0, +), 1000)
        // Within each method (one loaded model), from its second test on (the first decode test
        // settles rank 0's allocator), no rank's resident memory grows by more than 2 MB: sessions
        // come and go, nothing accumulates. A leak of a logits row per iteration would add 5 MB a test.
        for method in ["mpi+avx2", "mpi+avx512", "mpi"] {
            let group = rows.filter { $0["method"] as? String == method }.compactMap { $0["ranks"] as? [[String: Any]] }
            XCTAssertEqual(group.count, 8, method)
            guard group.count == 8 else { continue }
            for rank in 0..<2 {
                let resident = group.map { $0[rank]["resident_bytes"] as? Int ?? 0 }
                XCTAssertGreaterThan(resident[1], 0)
                XCTAssertLessThanOrEqual(resident.dropFirst(2).max()! - resident[1], 2 << 20,
                                         "\(method) rank \(rank): resident bytes after each test \(resident)")
            }
        }
    }
}
