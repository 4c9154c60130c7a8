// SweepTests.swift — benchmark_qwen3 sweeps: one row per combination in every output format,
// lists checked before anything runs, progress hygiene, per-rank MPI profiles, and bench/plot.
import Foundation
import XCTest

final class SweepTests: ToolTestCase {
    static let requiredKeys = ["test", "method", "attention", "prompt_len", "threads", "procs", "tokens_per_s", "samples_ms",
                               "mean_ms", "median_ms", "stddev_ms", "min_ms", "max_ms", "commit", "build", "cpu", "isa",
                               "kernels", "binding", "weights", "kv_dtype", "model_name", "config_hash", "synthetic", "timestamp",
                               "parallel", "gflop_per_token", "ttft_ms"]

    /// Two kernel methods this CPU runs.
    var twoMethods: String {
        let avx512 = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" avx512f") ?? false
        return avx512 ? "avx2,avx512" : "baseline,avx2"
    }

    func rows(_ jsonl: String) throws -> [[String: Any]] {
        try jsonl.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// RFC 4180 fields of one CSV line (quoted fields may hold commas and doubled quotes).
    func csvFields(_ line: Substring) -> [String] {
        var fields: [String] = [], field = "", quoted = false
        var chars = line.makeIterator()
        while let c = chars.next() {
            if quoted {
                if c == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; if next == "," { fields.append(field); field = "" } else { field.append(next) } }
                    } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" { quoted = true }
            else if c == "," { fields.append(field); field = "" }
            else { field.append(c) }
        }
        fields.append(field)
        return fields
    }

    func testSweepGivesOneRowPerCombinationInEveryFormat() throws {
        let model = try makeTinyModel()
        let sweep = ["--model", model.path, "--method", twoMethods, "--attention", "standard,streaming",
                     "--prompt-len", "4,8", "--threads", "1,2", "--iters", "2", "--warmup", "0"]
        let jsonl = try run(sweep + ["-o", "jsonl"])
        XCTAssertEqual(jsonl.status, 0, jsonl.stderr)
        let records = try rows(jsonl.stdout)
        XCTAssertEqual(records.count, 16)
        for record in records {
            for key in Self.requiredKeys { XCTAssertNotNil(record[key], "missing \(key)") }
            XCTAssertEqual((record["samples_ms"] as? [Double])?.count, 2)
            XCTAssertEqual(record["procs"] as? Int, 1)
            XCTAssertEqual(record["test"] as? String, "pp\(record["prompt_len"] as! Int)")
        }
        let combinations = Set(records.map { r in
            "\(r["method"]!) \(r["attention"]!) \(r["prompt_len"]!) \(r["threads"]!)"
        })
        XCTAssertEqual(combinations.count, 16, "every combination once")

        let csv = try run(sweep + ["-o", "csv"])
        XCTAssertEqual(csv.status, 0, csv.stderr)
        let lines = csv.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 17)
        let header = csvFields(lines[0])
        for key in ["test", "method", "attention", "prompt_len", "threads", "procs", "tokens_per_s", "samples_ms"] {
            XCTAssertTrue(header.contains(key), "csv header lacks \(key): \(header)")
        }
        for line in lines.dropFirst() { XCTAssertEqual(csvFields(line).count, header.count, String(line)) }

        let md = try run(sweep + ["-o", "md"])
        XCTAssertEqual(md.status, 0, md.stderr)
        let table = md.stdout.split(separator: "\n")
        XCTAssertEqual(table.count, 18)
        XCTAssertTrue(table.allSatisfy { $0.hasPrefix("| ") || $0.hasPrefix("|---") })

        let json = try run(sweep + ["-o", "json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let array = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(array.count, 16)

        // The text report keeps the original layout per test and ends with a summary; --json PATH
        // appends the same rows as -o jsonl.
        let path = model.appendingPathComponent("rows.jsonl")
        let text = try run(sweep + ["--json", path.path])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertEqual(text.stdout.components(separatedBy: "  Benchmark Results").count - 1, 16)
        XCTAssertTrue(text.stdout.contains("Summary of 16 tests"), text.stdout)
        XCTAssertTrue(text.stdout.contains("Per iteration: median "), "run_mpi_benchmark.sh reads this line")
        let appended = try rows(String(contentsOf: path, encoding: .utf8))
        XCTAssertEqual(appended.count, 16)
        for (a, b) in zip(appended, records) { XCTAssertEqual(Set(a.keys), Set(b.keys)) }
    }

    /// --kv-dtype is a list like the others: decode rows of each cache type, named in kv_dtype, the
    /// bf16 cache's session half the f32 one's cache bytes; a bad item fails up front.
    func testKVDtypeListRunsBothCaches() throws {
        let model = try makeTinyModel()
        let result = try run(["--model", model.path, "--method", "avx2", "--kv-dtype", "f32,bf16", "--phase", "decode",
                              "--prompt-len", "8", "--gen-len", "4", "--attention", "standard,streaming", "--iters", "1",
                              "--warmup", "0", "-o", "jsonl"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let records = try rows(result.stdout)
        XCTAssertEqual(records.count, 4)
        XCTAssertEqual(Set(records.map { "\($0["kv_dtype"]!) \($0["attention"]!)" }).count, 4)
        let sessions = Dictionary(grouping: records) { $0["kv_dtype"] as! String }.mapValues { $0[0]["session_bytes"] as! Int }
        XCTAssertLessThan(try XCTUnwrap(sessions["bf16"]), try XCTUnwrap(sessions["f32"]))
        let bad = try run(["--model", model.path, "--kv-dtype", "f32,f16"])
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--kv-dtype"), bad.stderr)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1, bad.stderr)
    }

    func testListsExpandOnlyWhereTheyApply() throws {
        let model = try makeTinyModel()
        // Block sizes cross streaming only; --gen-len crosses decode only.
        let result = try run(["--model", model.path, "--attention", "standard,streaming", "--q-block", "4,8",
                              "--phase", "prefill,decode", "--gen-len", "2,3", "--prompt-len", "6", "--iters", "1",
                              "--threads", "1", "-o", "jsonl"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let records = try rows(result.stdout)
        // (standard + 2 streaming) x (prefill + 2 decode lengths)
        XCTAssertEqual(records.count, 9)
        XCTAssertEqual(Set(records.compactMap { $0["test"] as? String }), ["pp6", "tg2", "tg3"])
        for r in records where r["phase"] as? String == "decode" {
            XCTAssertGreaterThan(r["ttft_ms"] as? Double ?? 0, 0)
            XCTAssertNotNil(r["decode_tokens_per_s"])
        }
    }

    func testBadListItemsFailUpFrontWithOneLine() throws {
        let model = try makeTinyModel()
        let cases: [([String], String)] = [
            (["--prompt-len", "8,0"], "--prompt-len must be at least 1, got 0"),
            (["--prompt-len", "8,,16"], "--prompt-len: empty item"),
            (["--prompt-len", "8,100000"], "max_position_embeddings"),
            (["--method", "avx2,fast"], "--method must be one of"),
            (["--threads", "1,x"], "--threads must be"),
            (["--attention", "standard,fast"], "--attention must be standard or streaming, got fast"),
            (["--phase", "prefill,decod"], "--phase must be prefill or decode"),
            (["--method", "baseline,avx2", "--weights", "f32,bf16"], "--weights bf16 has no AVX2 kernel"),
            (["--method", "avx2", "--parallel", "heads"], "--parallel applies only to the MPI methods"),
            (["--method", "mpi", "--parallel", "heads,rows"], "--parallel must be heads or sequence, got rows"),
            (["--attention", "standard", "--q-block", "8,16"], "--q-block applies only to --attention streaming"),
            (["--attention", "streaming", "--kv-block", "8,0"], "--kv-block must be between 1 and 65536"),
            (["--gen-len", "4,8"], "--gen-len applies only to --phase decode"),
            (["-o", "xml"], "-o must be one of text, md, csv, json, jsonl"),
            (["--tokens", "1,2", "--dump-logits", "/tmp/x.npy", "--method", "avx2,baseline"], "--dump-logits runs the model once"),
        ]
        for (args, message) in cases {
            let benchmark = args.contains("--dump-logits") ? [] : ["--iters", "1"]
            let result = try run(["--model", model.path] + benchmark + args)
            XCTAssertEqual(result.status, 1, "\(args): \(result.stdout)")
            XCTAssertTrue(result.stderr.contains(message), "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(args): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(args): nothing may run before the whole grid is checked")
        }
    }

    func testProgressOnlyOnATerminalAndNeverWithQuiet() throws {
        let model = try makeTinyModel()
        let sweep = ["--model", model.path, "--prompt-len", "4,8", "--iters", "2", "--threads", "1", "-o", "jsonl"]
        for extra in [[], ["--quiet"]] {
            let result = try run(sweep + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stderr, "", "stderr is not a terminal here: no progress \(extra)")
        }
        // On a terminal (script(1) gives the tool a pseudo-terminal) progress shows, unless --quiet.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("needs script(1)") }
        func onTerminal(_ args: [String]) throws -> Output {
            let command = ([executable.path] + args).map { "'\($0)'" }.joined(separator: " ")
            return try runProgram("/usr/bin/script", ["-qec", command, "/dev/null"])
        }
        let shown = try onTerminal(sweep)
        XCTAssertEqual(shown.status, 0, shown.stdout)
        XCTAssertTrue(shown.stdout.contains("test 2 of 2 (pp8"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("iteration 3/3"), shown.stdout)
        let quiet = try onTerminal(sweep + ["--quiet"])
        XCTAssertEqual(quiet.status, 0, quiet.stdout)
        XCTAssertFalse(quiet.stdout.contains("test 1 of 2"), quiet.stdout)
    }

    // MARK: MPI

    func testMPISweepProfilesEveryRank() throws {
        let model = try makeTinyModel()
        let path = model.appendingPathComponent("mpi.jsonl")
        let result = try mpirun(2, ["--model", model.path, "--method", "mpi+avx2", "--parallel", "heads,sequence",
                                    "--prompt-len", "4,8", "--phase", "decode", "--gen-len", "2", "--iters", "2",
                                    "--threads", "1", "--profile", "--json", path.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        XCTAssertEqual(result.stdout.components(separatedBy: "  Benchmark Results").count - 1, 4, "only rank 0 prints")
        for line in ["Profile, prefill, per rank", "Profile, decode, per rank", "waiting at barriers", "rank 1",
                     "sequence parallel: prompt tokens split zig-zag"] {
            XCTAssertTrue(result.stdout.contains(line), "missing \"\(line)\" in:\n\(result.stdout)")
        }
        let records = try rows(String(contentsOf: path, encoding: .utf8))
        XCTAssertEqual(records.count, 4)
        XCTAssertEqual(records.map { $0["parallel"] as? String }, ["heads", "heads", "sequence", "sequence"])
        for record in records {
            XCTAssertEqual(record["procs"] as? Int, 2)
            let perRank = try XCTUnwrap(record["profile_ranks"] as? [[String: [String: [String: Double]]]])
            XCTAssertEqual(perRank.count, 2)
            for rank in perRank {
                for phase in ["prefill", "decode"] {
                    XCTAssertGreaterThan(rank[phase]?["gemm q/k/v"]?["ms_per_iter"] ?? 0, 0, "\(phase)")
                }
            }
            let ranks = try XCTUnwrap(record["ranks"] as? [[String: Any]])
            XCTAssertEqual(ranks.count, 2)
            for rank in ranks { XCTAssertNotNil(rank["barrier_wait_ms_per_iter"]) }
        }
        // Heads split the weights; sequence replicates them on every rank.
        let heads = records[0]["ranks"] as! [[String: Any]], sequence = records[2]["ranks"] as! [[String: Any]]
        XCTAssertLessThan(heads[0]["weight_bytes"] as! Int, sequence[0]["weight_bytes"] as! Int)
    }

    func testMixingMPIAndSingleProcessMethodsUnderMpirunIsAnError() throws {
        let model = try makeTinyModel()
        let result = try mpirun(2, ["--model", model.path, "--method", "mpi+avx2,avx2", "--prompt-len", "4", "--iters", "1"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("--method mixes MPI (mpi+avx2) and single-process (avx2) methods"), result.stderr)
        XCTAssertEqual(result.stderr.components(separatedBy: "benchmark_qwen3: error:").count - 1, 1, result.stderr)
        XCTAssertEqual(result.stdout, "")
    }

    // MARK: bench/plot

    func testPlotScriptDrawsFigures() throws {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { path in
            FileManager.default.isExecutableFile(atPath: path)
                && (try? runProgram(path, ["-c", "import matplotlib"]).status) == 0
        }
        guard python != nil else { throw XCTSkip("matplotlib is not installed") }
        let model = try makeTinyModel()
        let path = model.appendingPathComponent("rows.jsonl")
        for phase in [["--phase", "prefill"], ["--phase", "decode", "--gen-len", "2"]] {
            let result = try run(["--model", model.path, "--attention", "standard,streaming", "--prompt-len", "4,8",
                                  "--threads", "1", "--iters", "2", "--json", path.path, "-o", "jsonl"] + phase)
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let out = model.appendingPathComponent("figures")
        let script = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bench/plot")
        let plot = try runProgram(script.path, [path.path, "--out", out.path, "--peak-gflops", "50", "--bandwidth-gbs", "20"])
        XCTAssertEqual(plot.status, 0, plot.stderr)
        for name in ["tokens_vs_prompt_prefill", "tokens_vs_prompt_decode", "roofline"] {
            let data = try Data(contentsOf: out.appendingPathComponent("\(name).png"))
            XCTAssertGreaterThan(data.count, 10_000, name)
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "\(name) is a PNG")
        }
    }
}
