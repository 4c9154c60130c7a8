// LoaderErrorTests.swift — every broken checkpoint or config fails at load with one clear error.
import Foundation
import XCTest
@testable import Qwen3

final class LoaderErrorTests: XCTestCase {
    let tiny = Qwen3Config(vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4,
                           numKVHeads: 2, headDim: 8, maxPositionEmbeddings: 64, rmsNormEps: 1e-6,
                           ropeTheta: 10_000, tieWordEmbeddings: true)

    /// A valid tiny synthetic checkpoint to break in one way per test.
    func makeModel() throws -> URL {
        let folder = try temporaryFolder(self)
        try SyntheticCheckpoint.write(config: tiny, dtype: .f32, to: folder.path)
        return folder
    }

    func assertLoadFails(_ path: String, containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Qwen3Model(path: path, isa: .baseline), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(text), "error \"\(message)\" lacks \"\(text)\"", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "error spans lines: \(message)", file: file, line: line)
        }
    }

    func rewriteConfig(_ folder: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent("config.json")
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    /// Rewrites model.safetensors with `header` (JSON text) and `data` bytes.
    func writeSafetensors(_ folder: URL, header: String, data: Data = Data(), length: UInt64? = nil) throws {
        var bytes = Data()
        var n = (length ?? UInt64(header.utf8.count)).littleEndian
        bytes.append(Data(bytes: &n, count: 8))
        bytes.append(Data(header.utf8))
        bytes.append(data)
        try bytes.write(to: folder.appendingPathComponent("model.safetensors"))
    }

    func testValidSyntheticCheckpointLoads() throws {
        let model = try Qwen3Model(path: try makeModel().path, isa: .baseline)
        XCTAssertEqual(model.config, tiny)
    }

    func testMissingPathAndFolderWithoutWeights() throws {
        assertLoadFails("/nonexistent/model.safetensors", containing: "config.json")
        let folder = try makeModel()
        try FileManager.default.removeItem(at: folder.appendingPathComponent("model.safetensors"))
        assertLoadFails(folder.path, containing: "neither model.safetensors nor model.safetensors.index.json")
        let empty = try temporaryFolder(self)
        assertLoadFails(empty.path, containing: "config.json")
    }

    func testCorruptSafetensorsFiles() throws {
        let folder = try makeModel()
        let file = folder.appendingPathComponent("model.safetensors").path
        try Data().write(to: URL(fileURLWithPath: file))
        assertLoadFails(file, containing: "not a safetensors file")
        try writeSafetensors(folder, header: "{}", length: 1 << 40)
        assertLoadFails(file, containing: "header length")
        try writeSafetensors(folder, header: "{not json")
        assertLoadFails(file, containing: "not a UTF-8 JSON object")
        try writeSafetensors(folder, header: #"{"a": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}"#, data: Data([0]))
        assertLoadFails(file, containing: "dtype I8")
        try writeSafetensors(folder, header: #"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, data: Data(count: 8))
        assertLoadFails(file, containing: "outside the data")
        try writeSafetensors(folder, header: #"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}"#, data: Data(count: 16))
        assertLoadFails(file, containing: "does not match")
        try writeSafetensors(folder, header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, data: Data(count: 12))
        assertLoadFails(file, containing: "overlap")
    }

    func testDuplicateNamesAndNonFiniteWeightsAreRefused() throws {
        let folder = try makeModel()
        let file = folder.appendingPathComponent("model.safetensors").path
        try writeSafetensors(folder, header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: Data(count: 8))
        assertLoadFails(file, containing: "tensor a appears twice in the header")

        var specs = SyntheticCheckpoint.tensors(config: tiny, dtype: .f32, seed: 0)
        let index = specs.firstIndex { $0.name == "model.layers.1.mlp.down_proj.weight" }!
        let original = specs[index]
        specs[index] = TensorSpec(name: original.name, dtype: .bf16, shape: original.shape) { offset, values in
            original.fill(offset, values)
            if offset == 0 { values[3] = .nan; values[5] = .infinity }
        }
        try SafetensorsWriter.write(specs, to: file)
        assertLoadFails(file, containing: "tensor model.layers.1.mlp.down_proj.weight holds NaN or infinite values (2 among elements 0..<")
    }

    func testModelLargerThanMemoryIsRefusedBeforeLoading() throws {
        let folder = try makeModel()
        try rewriteConfig(folder) { $0["intermediate_size"] = 1 << 40 }
        assertLoadFails(folder.path, containing: "more than this machine's")
    }

    func testMissingUnexpectedAndMisshapedTensors() throws {
        let folder = try makeModel()
        var specs = SyntheticCheckpoint.tensors(config: tiny, dtype: .f32, seed: 0)
        let path = folder.appendingPathComponent("model.safetensors").path

        let withoutNorm = specs.filter { $0.name != "model.layers.1.self_attn.k_norm.weight" }
        try SafetensorsWriter.write(withoutNorm, to: path)
        assertLoadFails(path, containing: "missing tensor model.layers.1.self_attn.k_norm.weight")

        let extra = TensorSpec(name: "model.layers.2.mlp.up_proj.weight", dtype: .f32, shape: [2]) { _, v in v.update(repeating: 0) }
        try SafetensorsWriter.write(specs + [extra], to: path)
        assertLoadFails(path, containing: "unexpected tensor model.layers.2.mlp.up_proj.weight")

        let index = specs.firstIndex { $0.name == "model.layers.0.self_attn.q_proj.weight" }!
        specs[index] = TensorSpec(name: specs[index].name, dtype: .f32, shape: [31, 16]) { _, v in v.update(repeating: 0) }
        try SafetensorsWriter.write(specs, to: path)
        assertLoadFails(path, containing: "shape [31, 16], config.json implies [32, 16]")
    }

    func testShardIndexNamingAMissingShard() throws {
        let folder = try makeModel()
        try FileManager.default.removeItem(at: folder.appendingPathComponent("model.safetensors"))
        let index = #"{"metadata": {}, "weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: folder.appendingPathComponent("model.safetensors.index.json"))
        assertLoadFails(folder.path, containing: "model-00002-of-00002.safetensors: shard named by")
    }

    func testBadConfigs() throws {
        let folder = try makeModel()
        try rewriteConfig(folder) { $0["architectures"] = ["LlamaForCausalLM"] }
        assertLoadFails(folder.path, containing: "architecture LlamaForCausalLM is not supported")
        try rewriteConfig(folder) { $0["architectures"] = ["Qwen3ForCausalLM"]; $0.removeValue(forKey: "hidden_size") }
        assertLoadFails(folder.path, containing: "lacks the required key \"hidden_size\"")
        try rewriteConfig(folder) { $0["hidden_size"] = "sixteen" }
        assertLoadFails(folder.path, containing: "\"hidden_size\" should be")
        try rewriteConfig(folder) { $0["hidden_size"] = 16; $0["num_key_value_heads"] = 3 }
        assertLoadFails(folder.path, containing: "not a multiple of num_key_value_heads")
        try rewriteConfig(folder) { $0["num_key_value_heads"] = 2; $0["num_hidden_layers"] = 0 }
        assertLoadFails(folder.path, containing: "num_hidden_layers must be positive")
        try rewriteConfig(folder) { $0["num_hidden_layers"] = 2; $0["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0] }
        assertLoadFails(folder.path, containing: "rope scaling \"yarn\" is not supported")
        try Data("{".utf8).write(to: folder.appendingPathComponent("config.json"))
        assertLoadFails(folder.path, containing: "not valid JSON")
    }

    func testTransformers5ConfigStyle() throws {
        let config = try Qwen3Config.load(from: Fixtures.root.appendingPathComponent("tied-f32/config.json"))
        XCTAssertEqual(config.ropeTheta, 1_000_000)
        XCTAssertEqual(config.headDim, 32)
        XCTAssertEqual(config.numKVHeads, 2)
        XCTAssertTrue(config.tieWordEmbeddings)
        let legacy = #"{"architectures": ["Qwen3ForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_theta": 5000, "rope_scaling": null}"#
        let parsed = try Qwen3Config.decode(Data(legacy.utf8), path: "legacy")
        XCTAssertEqual(parsed.ropeTheta, 5000)
        XCTAssertEqual(parsed.headDim, 4)
        XCTAssertEqual(parsed.numKVHeads, 2)
        XCTAssertFalse(parsed.tieWordEmbeddings)
    }

    func testRequestsBeyondTheModelAreRefused() throws {
        let model = try Qwen3Model(path: try makeModel().path, isa: .baseline)
        XCTAssertThrowsError(try InferenceSession(model: model, attention: .standard, capacity: 65, maxTokens: 8, allLogits: false))
        XCTAssertThrowsError(try InferenceSession(model: model, attention: .streaming(qBlock: 0, kvBlock: 4), capacity: 8, maxTokens: 8, allLogits: false))
        let session = try InferenceSession(model: model, attention: .standard, capacity: 4, maxTokens: 4, allLogits: false)
        XCTAssertThrowsError(try session.forward([1, 40])) { XCTAssertTrue("\($0)".contains("outside the vocabulary")) }
        XCTAssertThrowsError(try session.forward([1, 2, 3, 4, 5]))
        try session.forward([1, 2, 3])
        XCTAssertThrowsError(try session.forward([1, 2])) { XCTAssertTrue("\($0)".contains("KV cache holds 4")) }
    }
}
