// TestSupport.swift — fixture discovery, .npy reading and temporary folders shared by the tests.
import Foundation
import XCTest
@testable import Qwen3

enum Fixtures {
    /// Tests/Fixtures, found from this file's path (the folder is not a SwiftPM resource).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static let names = ["tied-f32", "untied-sharded-f32", "tied-bf16", "tied-with-lmhead-f32", "gqa8-untied-f32"]

    struct Reference {
        let folder: URL
        let tokens: [Int32]
        let logits: [Float]
        let vocab: Int
    }

    static func load(_ name: String) throws -> Reference {
        let folder = root.appendingPathComponent(name)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("reference.json"))) as! [String: Any]
        let tokens = (json["tokens"] as! [Int]).map(Int32.init)
        let (shape, values) = try NPY.read(folder.appendingPathComponent("logits.npy").path)
        XCTAssertEqual(shape.first, tokens.count)
        return Reference(folder: folder, tokens: tokens, logits: values, vocab: shape[1])
    }
}

enum NPY {
    /// Reads a float32 little-endian C-order .npy file (format 1.0).
    static func read(_ path: String) throws -> ([Int], [Float]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count > 10, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
            throw RequestError("\(path) is not a .npy file")
        }
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False"),
              let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw RequestError("\(path): unsupported .npy header \(header)")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let body = data[(10 + headerLength)...]
        let values = body.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        guard values.count == shape.reduce(1, *) else { throw RequestError("\(path): size does not match shape") }
        return (shape, values)
    }
}

/// A fresh temporary folder, removed when the test ends.
func temporaryFolder(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("qwen3-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Largest |a - b| over two equal-length arrays.
func maxAbsDiff(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Runs prefill over tokens[0..<k] then decode steps for the rest, the cache in `kv`; returns logits (tokens, vocab).
func runLogits(model: Qwen3Model, tokens: [Int32], attention: AttentionKind, decodeFrom k: Int,
               kv: KVPrecision = .f32) throws -> [Float] {
    let session = try InferenceSession(model: model, attention: attention, capacity: tokens.count,
                                       maxTokens: k, allLogits: true, kvPrecision: kv)
    var out = Array(try session.forward(Array(tokens[0..<k]), allLogits: true))
    for t in k..<tokens.count {
        out += try session.forward([tokens[t]])
    }
    return out
}
