// TextTests.swift — generate, tokenize and text prompts: greedy ids equal Hugging Face's, at 1-3 ranks.
import Foundation
import XCTest

final class TextTests: ToolTestCase {
    var model: URL { Self.fixtures.appendingPathComponent("text-tiny-f32") }

    struct GreedyRun { let name: String; let prompt: String; let promptIds: [Int]; let generated: [Int] }

    func greedyRuns() throws -> [GreedyRun] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: model.appendingPathComponent("greedy.json"))) as! [String: Any]
        return (json["runs"] as! [[String: Any]]).map {
            GreedyRun(name: $0["name"] as! String, prompt: $0["prompt"] as! String,
                      promptIds: $0["prompt_ids"] as! [Int], generated: $0["generated_ids"] as! [Int])
        }
    }

    func object(_ output: Output) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as! [String: Any]
    }

    /// The arguments that rebuild each committed prompt: plain text, and the same chat prompt the
    /// fixture script wrote out by hand, through --chat --system --no-think.
    func arguments(_ run: GreedyRun) -> [String] {
        if run.name == "plain" { return ["--prompt", run.prompt] }
        return ["--chat", "--system", "Be brief.", "--no-think", "--prompt", "自然语言处理 😀"]
    }

    func testGreedyGenerationEqualsHuggingFace() throws {
        for run in try greedyRuns() {
            let args = ["generate", "--model", model.path, "--max-new-tokens", String(run.generated.count), "--json",
                        "--threads", "1"] + arguments(run)
            var launches: [(String, () throws -> Output)] = [("1 process", { try self.run(args) })]
            for (np, method, parallel) in [(2, "mpi+avx2", "heads"), (3, "mpi", "heads"), (3, "mpi+avx2", "sequence"),
                                           (2, hasAVX512 ? "mpi+avx512" : "mpi", "sequence")] {
                launches.append(("-np \(np) \(method) \(parallel)", {
                    try self.mpirun(np, args + ["--method", method, "--parallel", parallel])
                }))
            }
            for (label, launch) in launches {
                let output = try launch()
                XCTAssertEqual(output.status, 0, "\(run.name) \(label): \(output.stderr)")
                let result = try object(output)
                XCTAssertEqual(result["prompt_ids"] as? [Int], run.promptIds, "\(run.name) \(label)")
                XCTAssertEqual(result["generated_ids"] as? [Int], run.generated, "\(run.name) \(label)")
                XCTAssertEqual(output.stdout.split(separator: "\n").count, 1, "only rank 0 prints: \(label)")
            }
        }
    }

    func testStreamedTextIsTheDecodedIds() throws {
        let run = try greedyRuns()[0]
        let args = ["generate", "--model", model.path, "--prompt", run.prompt, "--max-new-tokens", "40"]
        let streamed = try self.run(args)
        XCTAssertEqual(streamed.status, 0, streamed.stderr)
        let json = try object(try self.run(args + ["--json"]))
        XCTAssertEqual(streamed.stdout, (json["text"] as! String) + "\n")
        for key in ["prompt 4 tokens", "time to first token", "prefill", "decode", "stop: length"] {
            XCTAssertTrue(streamed.stderr.contains(key), streamed.stderr)
        }
        let ids = (json["generated_ids"] as! [Int]).map(String.init).joined(separator: ",")
        let decoded = try self.run(["tokenize", "--model", model.path, "--decode", ids])
        XCTAssertEqual(decoded.stdout, streamed.stdout)
    }

    /// With generation_config.json's eos_token_id set to the first greedy token, generation stops there.
    func testStopsAtEndOfSequence() throws {
        let run = try greedyRuns()[0]
        let dir = try temporary()
        for name in ["config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.copyItem(at: model.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        try Data("{\"eos_token_id\": \(run.generated[2])}".utf8).write(to: dir.appendingPathComponent("generation_config.json"))
        let output = try self.run(["generate", "--model", dir.path, "--prompt", run.prompt, "--json"])
        XCTAssertEqual(output.status, 0, output.stderr)
        let result = try object(output)
        XCTAssertEqual(result["generated_ids"] as? [Int], Array(run.generated.prefix(3)))
        XCTAssertEqual(result["stop"] as? String, "eos")
        XCTAssertEqual(result["decode_steps"] as? Int, 2)
    }

    func testSeededSamplingIsReproducible() throws {
        func sample(_ seed: Int, threads: Int = 1) throws -> [Int] {
            let output = try run(["generate", "--model", model.path, "--prompt", "Hello", "--max-new-tokens", "24", "--json",
                                  "--temperature", "0.8", "--top-k", "40", "--top-p", "0.9", "--seed", String(seed),
                                  "--threads", String(threads)])
            XCTAssertEqual(output.status, 0, output.stderr)
            return try object(output)["generated_ids"] as! [Int]
        }
        let first = try sample(7)
        XCTAssertEqual(first, try sample(7))
        XCTAssertEqual(first, try sample(7, threads: 2))
        XCTAssertNotEqual(first, try sample(8))
        let mpi = try mpirun(2, ["generate", "--model", model.path, "--prompt", "Hello", "--max-new-tokens", "24", "--json",
                                 "--temperature", "0.8", "--top-k", "40", "--top-p", "0.9", "--seed", "7", "--threads", "1",
                                 "--method", "mpi+avx2"])
        XCTAssertEqual(try object(mpi)["generated_ids"] as? [Int], first, mpi.stderr)
    }

    func testTokenizeMatchesTheLibrary() throws {
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("tokenizer-cases.json"))) as! [String: Any]
        let item = (cases["encode"] as! [[String: Any]]).first { ($0["text"] as! String).contains("<|im_start|>user") }!
        let dir = try temporary()
        let file = dir.appendingPathComponent("prompt.txt")
        try Data((item["text"] as! String).utf8).write(to: file)
        let output = try run(["tokenize", "--model", model.path, "--file", file.path])
        XCTAssertEqual(output.status, 0, output.stderr)
        XCTAssertEqual(output.stdout, (item["ids"] as! [Int]).map(String.init).joined(separator: ",") + "\n")
        let json = try object(try run(["tokenize", "--model", model.path, "--text", "Hi there", "--json"]))
        XCTAssertEqual((json["pieces"] as! [String]).joined(), "Hi there")
    }

    func testBenchmarkTakesATextPrompt() throws {
        let dir = try temporary()
        let file = dir.appendingPathComponent("prompt.txt")
        try Data("Text prompts for the benchmark: 自然语言处理.".utf8).write(to: file)
        let ids = try run(["tokenize", "--model", model.path, "--file", file.path]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var rows: [[String: Any]] = []
        for source in [["--prompt-file", file.path], ["--tokens", ids]] {
            let output = try run(["--model", model.path, "--iters", "1", "--warmup", "0", "--phase", "decode", "--gen-len", "2",
                                  "-o", "jsonl", "--quiet"] + source)
            XCTAssertEqual(output.status, 0, output.stderr)
            rows.append(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as! [String: Any])
        }
        XCTAssertEqual(rows[0]["prompt_len"] as? Int, ids.split(separator: ",").count)
        XCTAssertEqual(rows[0]["prompt_hash"] as? String, rows[1]["prompt_hash"] as? String)
        XCTAssertEqual(rows[0]["prompt_source"] as? String, "--prompt-file \(file.path)")
    }

    func testBadTextInputFailsWithOneLine() throws {
        let dir = try temporary()
        let notUTF8 = dir.appendingPathComponent("latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: notUTF8)
        let long = dir.appendingPathComponent("long.txt")
        try Data(String(repeating: "1", count: 300).utf8).write(to: long)
        let broken = dir.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: model.appendingPathComponent(name), to: broken.appendingPathComponent(name))
        }
        try Data("{\"model\": {\"type\": \"BPE\", ".utf8).write(to: broken.appendingPathComponent("tokenizer.json"))
        let noTokenizer = Self.fixtures.appendingPathComponent("tied-f32").path
        let out = dir.appendingPathComponent("rows.jsonl")
        let cases: [([String], String)] = [
            (["generate", "--model", noTokenizer, "--prompt", "hi"], "tokenizer.json: not found"),
            (["generate", "--model", broken.path, "--prompt", "hi"], "malformed tokenizer.json"),
            (["generate", "--model", model.path, "--prompt-file", notUTF8.path], "not valid UTF-8 (first invalid byte at offset 3)"),
            (["generate", "--model", model.path, "--prompt-file", long.path], "more than the model's context of 256"),
            (["generate", "--model", model.path, "--prompt", "hi", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
            (["generate", "--model", model.path, "--prompt", "hi", "--prompt-file", long.path], "not both"),
            (["generate", "--model", model.path], "needs --prompt or --prompt-file"),
            (["generate", "--model", model.path, "--prompt", "hi", "--system", "S"], "--system applies only with --chat"),
            (["generate", "--model", model.path, "--prompt", "hi", "--no-think"], "--no-think applies only with --chat"),
            (["generate", "--model", model.path, "--prompt", "hi", "--top-k", "5"], "--top-k applies only to sampling"),
            (["generate", "--model", model.path, "--prompt", "hi", "--temperature", "1", "--top-p", "0"], "--top-p must be in (0, 1]"),
            (["tokenize", "--model", model.path, "--decode", "1,x"], "\"x\" is not a token id"),
            (["tokenize", "--model", model.path], "needs --text, --file or --decode"),
            (["--model", model.path, "--prompt", "hi", "--prompt-len", "8", "--json", out.path], "--prompt-len applies only to synthetic prompts"),
            (["--model", noTokenizer, "--prompt", "hi", "--json", out.path], "tokenizer.json: not found"),
            (["--model", model.path, "--prompt-file", long.path, "--json", out.path], "exceed the model's max_position_embeddings"),
        ]
        for (args, message) in cases {
            let result = try run(args)
            XCTAssertEqual(result.status, 1, "\(args): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(args)")
            XCTAssertTrue(result.stderr.contains(message), "\(args): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(args): \(result.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written on failure")
    }
}
