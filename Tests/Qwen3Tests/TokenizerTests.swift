// TokenizerTests.swift — the tokenizer against Hugging Face `tokenizers`: ids and text, both ways.
import Foundation
import XCTest
@testable import Qwen3

final class TokenizerTests: XCTestCase {
    struct Cases {
        let encode: [(text: String, ids: [Int32], decoded: String)]
        let decode: [(ids: [Int32], decoded: String)]
    }

    static func cases(_ url: URL) throws -> Cases {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let encode = (json["encode"] as! [[String: Any]]).map {
            ($0["text"] as! String, ($0["ids"] as! [Int]).map(Int32.init), $0["decoded"] as! String)
        }
        let decode = (json["decode"] as! [[String: Any]]).map { (($0["ids"] as! [Int]).map(Int32.init), $0["decoded"] as! String) }
        return Cases(encode: encode, decode: decode)
    }

    static var smallFolder: URL { Fixtures.root.appendingPathComponent("text-tiny-f32") }

    /// Every corpus text encodes to the library's ids and those ids decode to the library's text;
    /// seeded random ids (cutting characters apart) decode to the library's text, U+FFFD included.
    func check(tokenizer: Tokenizer, cases: Cases, label: String) {
        var matched = 0, total = 0
        for item in cases.encode {
            total += 2
            let ids = try? tokenizer.encode(item.text)
            if ids == item.ids { matched += 1 } else {
                XCTFail("\(label): encode \(item.text.debugDescription): \(ids ?? []) != \(item.ids)")
            }
            if tokenizer.decode(item.ids) == item.decoded { matched += 1 } else {
                XCTFail("\(label): decode \(item.ids): \(tokenizer.decode(item.ids).debugDescription) != \(item.decoded.debugDescription)")
            }
        }
        for item in cases.decode {
            total += 1
            if tokenizer.decode(item.ids) == item.decoded { matched += 1 } else {
                XCTFail("\(label): decode \(item.ids): \(tokenizer.decode(item.ids).debugDescription) != \(item.decoded.debugDescription)")
            }
            var stream = StreamingDecoder(tokenizer: tokenizer)
            let streamed = item.ids.map { stream.append($0) }.joined() + stream.finish()
            XCTAssertEqual(streamed, item.decoded, "\(label): streamed decode of \(item.ids)")
        }
        print("\(label): \(matched)/\(total) exact matches (\(cases.encode.count) texts encoded and decoded, \(cases.decode.count) random id lists decoded)")
    }

    func testMatchesTokenizersLibrary() throws {
        let tokenizer = try Tokenizer.load(modelPath: Self.smallFolder.path)
        check(tokenizer: tokenizer, cases: try Self.cases(Fixtures.root.appendingPathComponent("tokenizer-cases.json")),
              label: "trained vocabulary")
    }

    /// Qwen's full 151,643-rank vocabulary, made by make_tokenizer_fixtures.py --qwen-tiktoken (not committed).
    func testMatchesTokenizersLibraryOnQwenVocabulary() throws {
        let folder = Fixtures.root.appendingPathComponent("qwen-full-vocab")
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("tokenizer.json").path) else {
            throw XCTSkip("Tests/Fixtures/qwen-full-vocab is absent: make it with make_tokenizer_fixtures.py --qwen-tiktoken (see its docstring)")
        }
        let tokenizer = try Tokenizer.load(modelPath: folder.path)
        XCTAssertEqual(tokenizer.addedTokenId("<|im_start|>"), 151644)
        XCTAssertEqual(tokenizer.addedTokenId("</think>"), 151668)
        check(tokenizer: tokenizer, cases: try Self.cases(folder.appendingPathComponent("cases.json")), label: "Qwen vocabulary")
    }

    func testStreamingHoldsBackSplitCharacters() throws {
        let tokenizer = try Tokenizer.load(modelPath: Self.smallFolder.path)
        let text = "日本 😀👨‍👩‍👧 e\u{301}!"
        let ids = try tokenizer.encode(text)
        var stream = StreamingDecoder(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(stream.append(id)) }
        pieces.append(stream.finish())
        XCTAssertFalse(pieces.joined().contains("\u{FFFD}"))
        XCTAssertEqual(pieces.joined(), tokenizer.decode(ids))
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0x61, 0xF0, 0x9F]), 2)
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xE0, 0x80]), 0, "an overlong prefix is invalid, not pending")
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xE6, 0x97, 0xA5]), 0)
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xF5, 0x80]), 0, "0xF5 never starts a character")
    }

    func testRefusesWhatItCannotRun() throws {
        let valid = try String(contentsOf: Self.smallFolder.appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let broken: [(String, String)] = [
            ("{\"model\": ", "not a JSON object"),
            (valid.replacingOccurrences(of: "\"type\": \"NFC\"", with: "\"type\": \"Lowercase\""), "normalizer Lowercase is not supported"),
            (valid.replacingOccurrences(of: "\"behavior\": \"Isolated\"", with: "\"behavior\": \"Removed\""), "behavior Removed"),
            (valid.replacingOccurrences(of: "\"type\": \"BPE\"", with: "\"type\": \"WordPiece\""), "model type WordPiece"),
            (valid.replacingOccurrences(of: "\\\\p{N}|", with: "\\\\p{N}|(", options: [], range: nil), "does not compile"),
        ]
        for (text, expected) in broken {
            XCTAssertThrowsError(try Tokenizer.parse(Data(text.utf8), path: "tokenizer.json")) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should say \(expected)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
        }
        XCTAssertThrowsError(try Tokenizer.load(modelPath: Fixtures.root.appendingPathComponent("tied-f32").path)) { error in
            XCTAssertTrue("\(error)".contains("not found; text in and out needs"), "\(error)")
        }
    }

    func testEndOfSequenceIds() throws {
        let tokenizer = try Tokenizer.load(modelPath: Self.smallFolder.path)
        let expected = Set(["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer.addedTokenId($0) })
        XCTAssertEqual(expected.count, 2)
        // From generation_config.json's list, and from the tokenizer when the folder has none.
        XCTAssertEqual(try EndOfSequence.ids(modelFolder: Self.smallFolder, tokenizer: tokenizer), expected)
        XCTAssertEqual(try EndOfSequence.ids(modelFolder: URL(fileURLWithPath: "/nonexistent"), tokenizer: tokenizer), expected)
    }

    func testChatTemplate() throws {
        let tokenizer = try Tokenizer.load(modelPath: Self.smallFolder.path)
        let text = ChatTemplate.prompt([.init(role: "system", content: "S"), .init(role: "user", content: "Hi")], thinking: false)
        XCTAssertEqual(text, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
        let ids = try tokenizer.encode(text)
        XCTAssertEqual(ids.first, tokenizer.addedTokenId("<|im_start|>"))
        XCTAssertEqual(ids.filter { $0 == tokenizer.addedTokenId("<think>") }.count, 1)
    }

    /// Encoding speed on a large mixed text (debug builds are several times slower than release).
    func testEncodingSpeed() throws {
        let tokenizer = try Tokenizer.load(modelPath: Self.smallFolder.path)
        let cases = try Self.cases(Fixtures.root.appendingPathComponent("tokenizer-cases.json"))
        var text = cases.encode.map(\.text).joined(separator: " ")
        while text.utf8.count < 256 * 1024 { text += text }
        let start = Date()
        let ids = try tokenizer.encode(text)
        let seconds = Date().timeIntervalSince(start)
        print("encoded \(text.utf8.count) bytes into \(ids.count) tokens in \(String(format: "%.3f", seconds)) s")
        XCTAssertLessThan(seconds, 10)
    }
}
