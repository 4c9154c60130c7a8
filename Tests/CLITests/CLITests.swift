// CLITests.swift — benchmark_qwen3 as users run it: reports, JSON, logits dumps and clear errors.
import Foundation
import XCTest

/// Runs benchmark_qwen3 (and mpirun) as child processes; the helpers of the CLI and MPI tests.
class ToolTestCase: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// The benchmark_qwen3 built beside this test bundle.
    var executable: URL {
        var dir = Bundle(for: ToolTestCase.self).bundleURL
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("benchmark_qwen3").path), dir.path != "/" {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("benchmark_qwen3")
    }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        try runProgram(executable.path, arguments, environment: environment)
    }

    func runProgram(_ program: String, _ arguments: [String], environment: [String: String] = [:],
                    replaceEnvironment: Bool = false) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        var env = replaceEnvironment ? [:] : ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        // stderr goes to a file, so a child that fills it cannot block while we drain stdout.
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("qwen3-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let out = Pipe(), err = try FileHandle(forWritingTo: errURL)
        defer { try? err.close() }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = try Data(contentsOf: errURL)
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Environment for a child mpirun: this process's own MPI variables (if the tests themselves run
    /// under a launcher) would make the child join the wrong job.
    func mpiEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        // Shared memory between ranks on one machine; no network interfaces are probed.
        env["OMPI_MCA_btl"] = "self,vader"
        return env
    }

    func mpirun(_ processes: Int, _ arguments: [String]) throws -> Output {
        try runProgram("/usr/bin/mpirun",
                       ["--oversubscribe", "--bind-to", "none", "-np", String(processes), executable.path] + arguments,
                       environment: mpiEnvironment(), replaceEnvironment: true)
    }

    /// Whether this CPU has AVX-512 (the tool's avx512 kernels need it).
    var hasAVX512: Bool {
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx512f") ?? false
    }

    /// Whether this CPU has AVX512_VNNI (the avx512 kernels of q8_0 and q4_0 need it).
    var hasVNNI: Bool {
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx512_vnni") ?? false
    }

    func temporary() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qwen3-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A 2-layer synthetic model small enough that a 16-test sweep takes well under a second.
    func makeTinyModel() throws -> URL {
        let dir = try temporary()
        let result = try run(["generate-synthetic", "--out", dir.path, "--layers", "2", "--hidden", "64", "--heads", "4",
                              "--kv-heads", "2", "--head-dim", "16", "--intermediate", "96", "--vocab", "500"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return dir
    }

    func readNPY(_ url: URL) throws -> (shape: [Int], values: [Float]) {
        let data = try Data(contentsOf: url)
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': ("))
        XCTAssertEqual((10 + headerLength) % 64, 0)
        let dims = header.split(separator: "(")[1].split(separator: ")")[0]
        let shape = dims.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let values = data[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (shape, values)
    }
}

final class CLITests: ToolTestCase {
    func testDumpLogitsMatchesHuggingFace() throws {
        let dir = try temporary()
        for name in ["untied-sharded-f32", "tied-bf16"] {
            let fixture = Self.fixtures.appendingPathComponent(name)
            let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("reference.json"))) as! [String: Any]
            let tokens = (reference["tokens"] as! [Int]).map(String.init).joined(separator: ",")
            let expected = try readNPY(fixture.appendingPathComponent("logits.npy"))
            for extra in [["--method", "baseline"], ["--method", "avx2", "--attention", "streaming", "--decode-from", "5"]] {
                let out = dir.appendingPathComponent("\(name).npy")
                let result = try run(["--model", fixture.path, "--tokens", tokens, "--dump-logits", out.path] + extra)
                XCTAssertEqual(result.status, 0, result.stderr)
                let got = try readNPY(out)
                XCTAssertEqual(got.shape, expected.shape)
                let diff = zip(got.values, expected.values).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
                XCTAssertLessThanOrEqual(diff, 1e-3, "\(name) \(extra)")
            }
        }
    }

    func testBenchmarkReportAndJSON() throws {
        let model = try makeTinyModel()
        let json = model.appendingPathComponent("runs.jsonl")
        for phase in ["prefill", "decode"] {
            var args = ["--model", model.path, "--method", "avx2", "--attention", "streaming", "--prompt-len", "12",
                        "--iters", "3", "--threads", "1", "--phase", phase, "--json", json.path]
            if phase == "decode" { args += ["--gen-len", "4"] }
            let result = try run(args)
            XCTAssertEqual(result.status, 0, result.stderr)
            for line in ["  Qwen3 Benchmark", "  Benchmark Results", "Method: avx2", "Attention: streaming",
                         "Phase: \(phase)", "Threads per process: 1 (--threads)", "Iterations: 3",
                         phase == "decode" ? "Tokens processed: 12 (4 * 3)" : "Tokens processed: 36 (12 * 3)",
                         "Throughput: ", "Time per token: "] {
                XCTAssertTrue(result.stdout.contains(line), "missing \"\(line)\" in:\n\(result.stdout)")
            }
        }
        let lines = try String(contentsOf: json, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        XCTAssertEqual(first["test"] as? String, "pp12")
        XCTAssertEqual((first["samples_ms"] as? [Double])?.count, 3)
        XCTAssertEqual(first["threads"] as? Int, 1)
        XCTAssertEqual(first["q_block"] as? Int, 32)  // the default tile, 32 tokens x 512 keys
        XCTAssertEqual(first["kv_block"] as? Int, 512)
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        XCTAssertEqual(second["test"] as? String, "tg4")
        XCTAssertGreaterThan(second["tokens_per_s"] as? Double ?? 0, 0)
    }

    func testSeedWarmupAndBlockSizesChangeWhatRuns() throws {
        let model = try makeTinyModel()
        let json = model.appendingPathComponent("runs.jsonl")
        let runs: [[String]] = [
            ["--seed", "1", "--warmup", "2", "--q-block", "8", "--kv-block", "8"],
            ["--seed", "2", "--warmup", "0", "--q-block", "64", "--kv-block", "256"],
            ["--seed", "1", "--warmup", "1", "--phase", "decode", "--gen-len", "4"],
        ]
        for extra in runs {
            let result = try run(["--model", model.path, "--prompt-len", "12", "--iters", "3", "--attention", "streaming",
                                  "--json", json.path] + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let records = try String(contentsOf: json, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        // The seed picks the prompt.
        XCTAssertEqual(records[0]["prompt_hash"] as? String, records[2]["prompt_hash"] as? String)
        XCTAssertNotEqual(records[0]["prompt_hash"] as? String, records[1]["prompt_hash"] as? String)
        // Warm-up iterations run: (warm-up + timed) x (one prefill + decode steps).
        XCTAssertEqual(records[0]["forward_calls"] as? Int, 5)
        XCTAssertEqual(records[1]["forward_calls"] as? Int, 3)
        XCTAssertEqual(records[2]["forward_calls"] as? Int, 4 * 5)
        // The block sizes size the streaming kernel's scratch.
        XCTAssertEqual(records[0]["q_block"] as? Int, 8)
        XCTAssertLessThan(records[0]["session_bytes"] as! Int, records[1]["session_bytes"] as! Int)
    }

    func testProfileReportsEveryOperationClass() throws {
        let model = try makeTinyModel()
        let json = model.appendingPathComponent("profile.jsonl")
        let result = try run(["--model", model.path, "--prompt-len", "8", "--iters", "2", "--phase", "decode",
                              "--gen-len", "3", "--profile", "--json", json.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        for phase in ["prefill", "decode"] {
            XCTAssertTrue(result.stdout.contains("Profile, \(phase): "), result.stdout)
        }
        for op in ["gemm q/k/v", "attention", "rmsnorm", "gemm lm_head", "residual add"] {
            XCTAssertEqual(result.stdout.components(separatedBy: "  " + op).count - 1, 2, "\(op) once per phase")
        }
        // The GEMMs and norms carry GB/s in the text (the last column, under its heading) and as `gbps` in the JSON.
        let measured = ["gemm q/k/v", "gemm o_proj", "gemm gate/up", "gemm down", "gemm lm_head", "rmsnorm (input, q/k, final)"]
        let lines = result.stdout.split(separator: "\n")
        let headings = lines.filter { $0.hasSuffix("GFLOP/s      GB/s") }
        XCTAssertEqual(headings.count, 2, result.stdout)
        for line in lines where measured.contains(where: { line.hasPrefix("  " + $0) }) {
            let gbps = Double(line.suffix(10).trimmingCharacters(in: .whitespaces)) ?? 0
            XCTAssertEqual(line.count, headings.first?.count, "GB/s under its heading: \(line)")
            XCTAssertTrue(gbps > 0 && gbps.isFinite, "no GB/s in \(line)")
        }
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [String: Any]
        let profile = record["profile"] as! [String: [String: [String: Double]]]
        let decode = profile["decode"]!
        let shares = decode.values.compactMap { $0["share"] }
        XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertGreaterThan(decode["gemm gate/up"]?["gflops"] ?? 0, 0)
        for (phase, ops) in profile {
            for op in measured {
                let gbps = ops[op]?["gbps"] ?? 0
                XCTAssertTrue(gbps > 0 && gbps.isFinite, "\(phase) \(op): gbps \(gbps)")
            }
        }
        let plain = try run(["--model", model.path, "--prompt-len", "8", "--iters", "1"])
        XCTAssertFalse(plain.stdout.contains("Profile,"), "no profile unless asked")
    }

    func testFuzzCorpusReplaysWithoutCrashing() throws {
        // Every committed fuzz input (seeds and any crash kept as a regression) through the parsers.
        let replayer = executable.deletingLastPathComponent().appendingPathComponent("fuzz_loader")
        let corpus = Self.fixtures.deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")
        let result = try runProgram(replayer.path, [corpus.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let count = try FileManager.default.contentsOfDirectory(atPath: corpus.path).count
        XCTAssertGreaterThan(count, 5)
        XCTAssertTrue(result.stdout.contains("replayed \(count) inputs"), result.stdout)
    }

    func testThreadsComeFromEnvironmentWhenNotGiven() throws {
        let model = try makeTinyModel()
        let result = try run(["--model", model.path, "--prompt-len", "4", "--iters", "1"], environment: ["OMP_NUM_THREADS": "1"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Threads per process: 1 (OMP_NUM_THREADS)"), result.stdout)
    }

    /// A subcommand's --seed is its own: the root's option of the same name used to claim it.
    func testSubcommandSeedIsNotClaimedByTheRoot() throws {
        let dir = try temporary()
        var files: [Data] = []
        for seed in ["3", "5"] {
            let out = dir.appendingPathComponent(seed)
            let result = try run(["generate-synthetic", "--out", out.path, "--seed", seed, "--layers", "1", "--hidden", "16",
                                  "--heads", "2", "--kv-heads", "1", "--head-dim", "8", "--intermediate", "8", "--vocab", "10"])
            XCTAssertEqual(result.status, 0, result.stderr)
            files.append(try Data(contentsOf: out.appendingPathComponent("model.safetensors")))
        }
        XCTAssertNotEqual(files[0], files[1])
    }

    func testBadOptionsFailWithOneLine() throws {
        let model = try makeTinyModel()
        let cases: [([String], String)] = [
            (["--attention", "standard", "--q-block", "8"], "--q-block applies only to --attention streaming"),
            (["--method", "fast"], "--method must be one of"),
            (["--iters", "0"], "--iters must be at least 1"),
            (["--threads", "0"], "--threads must be at least 1"),
            (["--prompt-len", "0"], "--prompt-len must be at least 1"),
            (["--prompt-len", "100000"], "max_position_embeddings"),
            (["--phase", "prefill", "--gen-len", "4"], "--gen-len applies only to --phase decode"),
            (["--attention", "fast"], "--attention must be standard or streaming"),
            (["--tokens", "1,2,500", "--dump-logits", "/tmp/x.npy"], "outside the vocabulary"),
            (["--tokens", "1,2", "--dump-logits", "/nonexistent-dir/x.npy"], "--dump-logits: cannot write in /nonexistent-dir"),
            (["--iters", "1", "--json", "/nonexistent-dir/x.jsonl"], "--json: cannot write in /nonexistent-dir"),
            (["--tokens", "1,2", "--dump-logits", "/tmp/x.npy", "--decode-from", "3"], "--decode-from must be between 1"),
            (["--mode", "omp", "--method", "mpi+avx2"], "--mode omp conflicts"),
            (["--method", "avx2", "--weights", "bf16"], "--weights bf16 has no AVX2 kernel"),
            (["--weights", "f16"], "--weights must be f32, bf16, q8_0 or q4_0"),
            (["--weights", "q8_0", "--tokens", "1,2", "--dump-logits", "/tmp/x.npy", "--accuracy"], "--accuracy applies only to benchmarks"),
        ]
        for (args, message) in cases {
            let result = try run(["--model", model.path] + args)
            XCTAssertEqual(result.status, 1, "\(args): \(result.stdout)")
            XCTAssertTrue(result.stderr.contains(message), "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(args): \(result.stderr)")
        }
        // Command lines ArgumentParser rejects: one line too, with the usage exit code.
        for (args, message) in [(["--bogus"], "Unknown option '--bogus'"), (["--iters", "abc"], "'abc' is invalid for '--iters"),
                                (["generate-synthetic"], "Missing expected argument '--out")] {
            let result = try run(args)
            XCTAssertEqual(result.status, 64, "\(args)")
            XCTAssertTrue(result.stderr.contains(message), "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(args): \(result.stderr)")
        }
        let missing = try run(["--model", "/nonexistent/model.safetensors", "--iters", "1"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/config.json"), missing.stderr)
    }
}
